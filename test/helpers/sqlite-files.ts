/**
 * Second, synchronous connections for tests (and the benchmark) that look at or into a database
 * file next to the daemon's own connections: a held write lock, integrity_check, what the outbox
 * holds, a big synthetic database made quickly. Not part of the daemon.
 */
import BetterSqlite3 from 'better-sqlite3';
import { openWritable, type SqliteOptions } from '../../src/storage/sqlite/connection.js';

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
