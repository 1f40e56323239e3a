/**
 * Helpers for tests and the benchmark that need a second, synchronous connection. They live here
 * because this folder is the only importer of better-sqlite3. Not for use by the daemon.
 */
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import type { ChannelInfo } from '../../domain/channel.js';
import type { Reading } from '../../domain/reading.js';
import { openWritable, type SqliteOptions } from './connection.js';

export interface WriteLock {
  /** Ends the transaction (rolls back) and closes the connection. */
  release(): void;
}

/** Takes the database's write lock from another connection (`BEGIN IMMEDIATE`) until released. */
export function holdWriteLock(path: string): WriteLock {
  // A plain connection: no pragmas (journal_mode would persist), no schema work.
  const writer = new BetterSqlite3(path, { fileMustExist: true, timeout: 0 });
  writer.exec('BEGIN IMMEDIATE');
  return {
    release(): void {
      if (writer.inTransaction) writer.exec('ROLLBACK');
      writer.close();
    },
  };
}

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

/** `PRAGMA integrity_check` of a database file, on a read-only connection: ['ok'] when sound. */
export function integrityCheckFile(path: string): string[] {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    return (db.pragma('integrity_check') as { integrity_check: string }[]).map((row) => row.integrity_check);
  } finally {
    db.close();
  }
}

export interface OutboxFileSummary {
  /** Outbox rows and the readings they hold. */
  readonly rows: number;
  readonly readings: number;
  /** Readings after each sink's saved cursor. */
  readonly pendingBySink: Readonly<Record<string, number>>;
}

/** What the outbox of a database file holds (read-only), for tests and the benchmark. */
export function outboxFileSummary(path: string): OutboxFileSummary {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const [rows, readings] = db
      .prepare('SELECT count(*), coalesce(sum(count), 0) FROM outbox')
      .raw()
      .get() as [number, number];
    const pendingBySink: Record<string, number> = {};
    const cursors = db.prepare('SELECT sink, seq, position FROM sink_cursors').raw().all() as [
      string,
      number,
      number,
    ][];
    const pending = db
      .prepare<[number, number, number, number, number]>(
        `SELECT coalesce(sum(CASE WHEN seq = ? THEN count - ? ELSE count END), 0) FROM outbox
         WHERE seq > ? OR (seq = ? AND count > ?)`,
      )
      .pluck();
    for (const [sink, seq, position] of cursors) {
      pendingBySink[sink] = pending.get(seq, position, seq, seq, position) as number;
    }
    return { rows, readings, pendingBySink };
  } finally {
    db.close();
  }
}
