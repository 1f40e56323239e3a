/**
 * The benchmark's baselines on plain better-sqlite3 in the calling thread (the raw insert and the
 * raw read the daemon's writer and export are measured against), and a look inside a database
 * file (bytes per table). Not part of the daemon.
 */
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import type { ChannelInfo } from '../../src/domain/channel.js';
import type { Reading } from '../../src/domain/reading.js';
import { openWritable, type SqliteOptions } from '../../src/storage/sqlite/connection.js';

export interface RawInsertResult {
  readonly rows: number;
  readonly inserted: number;
  /** Time spent inserting (channels are created before the clock starts). */
  readonly elapsedMs: number;
}

/**
 * The benchmark's baseline: plain better-sqlite3 on the calling thread, one prepared statement,
 * transactions of `transactionSize` rows, into the daemon's schema with the same pragmas.
 */
export function runRawInsertBaseline(
  options: SqliteOptions,
  channels: readonly ChannelInfo[],
  readings: Iterable<Reading>,
  transactionSize = 1000,
): RawInsertResult {
  const { db } = openWritable(options);
  try {
    const ids = new Map<string, number>();
    const upsert = db
      .prepare<[string, string, string, string | null, string | null, number, number]>(
        `INSERT INTO channels (device_id, alias, model, parent_id, parent_alias, first_seen_ms, last_seen_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET alias = excluded.alias RETURNING id`,
      )
      .pluck();
    const nowMs = Date.now();
    db.transaction(() => {
      for (const c of channels)
        ids.set(c.id, upsert.get(c.id, c.alias, c.model, c.parentId, c.parentAlias, nowMs, nowMs) as number);
    })();
    const insert = db.prepare<[number, number, number, number | null, number | null, number]>(
      `INSERT OR IGNORE INTO readings (channel_id, ts_ms, power_mw, voltage_mv, current_ma, total_wh)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    let inserted = 0;
    const writeRows = db.transaction((batch: readonly Reading[]) => {
      for (const r of batch) {
        const id = ids.get(r.channel);
        if (id === undefined) throw new Error(`runRawInsertBaseline: unknown channel ${r.channel}`);
        inserted += insert.run(id, r.tsMs, r.powerMw, r.voltageMv, r.currentMa, r.totalWh).changes;
      }
    });
    let rows = 0;
    let batch: Reading[] = [];
    const started = performance.now();
    for (const reading of readings) {
      batch.push(reading);
      if (batch.length === transactionSize) {
        writeRows(batch);
        rows += batch.length;
        batch = [];
      }
    }
    if (batch.length > 0) {
      writeRows(batch);
      rows += batch.length;
    }
    return { rows, inserted, elapsedMs: performance.now() - started };
  } finally {
    db.close();
  }
}

export interface RawReadResult {
  readonly rows: number;
  readonly elapsedMs: number;
}

/**
 * The export's baseline: every reading of the file read with plain better-sqlite3 on the calling
 * thread (one statement, raw rows, nothing formatted).
 */
export function rawReadAll(path: string): RawReadResult {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const statement = db
      .prepare('SELECT channel_id, ts_ms, power_mw, voltage_mv, current_ma, total_wh FROM readings')
      .raw();
    const started = performance.now();
    let rows = 0;
    let checksum = 0;
    for (const row of statement.iterate() as IterableIterator<number[]>) {
      rows++;
      checksum += row[2] ?? 0;
    }
    const elapsedMs = performance.now() - started;
    if (checksum < 0) throw new Error('unreachable');
    return { rows, elapsedMs };
  } finally {
    db.close();
  }
}

/** Bytes of pages each table (with its indexes) occupies in a database file, via the dbstat table. */
export function tableBytesOfFile(path: string): Record<string, number> {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const rows = db
      .prepare(
        `SELECT coalesce(m.tbl_name, s.name) AS name, sum(s.pgsize) AS bytes
         FROM dbstat AS s LEFT JOIN sqlite_schema AS m ON m.name = s.name GROUP BY 1`,
      )
      .all() as { name: string; bytes: number }[];
    return Object.fromEntries(rows.map((r) => [r.name, r.bytes]));
  } finally {
    db.close();
  }
}
