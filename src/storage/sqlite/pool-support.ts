/**
 * Helpers for the reader-pool benchmark and tests that need a big database quickly, or the raw
 * better-sqlite3 baseline. They live here because this folder is the only importer of
 * better-sqlite3. Not for use by the daemon.
 */
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { openWritable, type SqliteOptions } from './connection.js';

export interface SyntheticDataset {
  /** Channels to create: ids (device ids) and aliases. */
  readonly channels: readonly { readonly id: string; readonly alias: string }[];
  /** First reading, UTC ms. */
  readonly startMs: number;
  /** Readings per channel. */
  readonly perChannel: number;
  /** Time between two readings of a channel. */
  readonly intervalMs: number;
}

/**
 * Fills a new database (the daemon's schema and pragmas) with `perChannel` readings per channel,
 * generated inside SQLite (a recursive CTE), so millions of rows take seconds, not minutes.
 * Returns the number of readings stored.
 */
export function createSyntheticDatabase(options: SqliteOptions, dataset: SyntheticDataset): number {
  const { db } = openWritable(options);
  try {
    const insertChannel = db
      .prepare<[string, string, number, number]>(
        `INSERT INTO channels (device_id, alias, model, first_seen_ms, last_seen_ms)
         VALUES (?, ?, 'HS110(EU)', ?, ?) RETURNING id`,
      )
      .pluck();
    const fill = db.prepare<[number, number, number, number, number]>(
      `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?)
       INSERT INTO readings (channel_id, ts_ms, power_mw, voltage_mv, current_ma, total_wh)
       SELECT ?, ? + i * ?, 5000 + (i * 131 + ?) % 200000, 228000 + (i * 97) % 4000,
              (5000 + (i * 131) % 200000) * 1000 / 230000, i / 60
       FROM s`,
    );
    let rows = 0;
    dataset.channels.forEach((channel, index) => {
      db.transaction(() => {
        const id = insertChannel.get(channel.id, channel.alias, dataset.startMs, dataset.startMs) as number;
        rows += fill.run(dataset.perChannel, id, dataset.startMs, dataset.intervalMs, index * 17).changes;
      })();
    });
    db.pragma('wal_checkpoint(TRUNCATE)');
    return rows;
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
