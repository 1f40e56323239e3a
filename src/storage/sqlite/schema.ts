import type { Database } from 'better-sqlite3';
import { KasaStorageCode, StorageError } from '../errors.js';

/**
 * Versioned schema. `PRAGMA user_version` holds how many migrations a database has had; migration
 * `i` (0-based) takes it from version `i` to `i + 1`. Append new migrations, never edit old ones.
 */
type Migration = (db: Database) => void;

const migrations: readonly Migration[] = [
  // 1: channels, and readings keyed by (channel, time) so a replayed reading cannot be stored twice.
  // WITHOUT ROWID keeps a reading at ~28-32 bytes on disk: no rowid, no second index; the export
  // orders across channels by merging per-channel primary-key scans, so no ts index is needed.
  (db) => {
    db.exec(`
      CREATE TABLE channels (
        id            INTEGER PRIMARY KEY,
        device_id     TEXT    NOT NULL UNIQUE,
        alias         TEXT    NOT NULL DEFAULT '',
        model         TEXT    NOT NULL DEFAULT '',
        parent_id     TEXT,
        parent_alias  TEXT,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms  INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE readings (
        channel_id INTEGER NOT NULL REFERENCES channels (id),
        ts_ms      INTEGER NOT NULL,
        power_mw   INTEGER NOT NULL,
        voltage_mv INTEGER NOT NULL,
        current_ma INTEGER NOT NULL,
        total_wh   INTEGER NOT NULL,
        PRIMARY KEY (channel_id, ts_ms)
      ) WITHOUT ROWID, STRICT;
    `);
  },
  // 2: the outbox that feeds other sinks (InfluxDB) from SQLite. Each row holds the readings one
  // batch newly stored, written in the same transaction as the readings, so a sink sees exactly what
  // was committed, in commit order. `data` is a float64 array (host byte order), 6 values a reading:
  // channel id, ts_ms, power_mw, voltage_mv, current_ma, total_wh. AUTOINCREMENT: a seq is never
  // reused after rows are pruned, so a cursor never skips a new row. A sink's cursor is the
  // (seq, position) of the next reading it has not delivered; rows every cursor passed are pruned.
  (db) => {
    db.exec(`
      CREATE TABLE outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        committed_ms INTEGER NOT NULL,
        count        INTEGER NOT NULL,
        data         BLOB    NOT NULL
      ) STRICT;
      CREATE TABLE sink_cursors (
        sink       TEXT    PRIMARY KEY,
        seq        INTEGER NOT NULL,
        position   INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
      ) STRICT;
    `);
  },
  // 3: the data lifecycle. Per channel, minute/hour/day rollups: a row is written once its bucket is
  // closed (time moved past it), so a stored row is complete; the open buckets are rebuilt from raw
  // readings at start. Minute and hour buckets are UTC-aligned; day buckets are local days of the
  // zone in lifecycle_meta 'day_zone'. Energy in mWh (integers are compact on disk), power in mW; a
  // bucket with no reading of its own (energy reached it from an interval) has no min/max power.
  // energy_gaps: readings further apart than the gap limit, with what the counter shows across them.
  (db) => {
    const columns = `
        channel_id   INTEGER NOT NULL REFERENCES channels (id),
        bucket_ms    INTEGER NOT NULL,
        readings     INTEGER NOT NULL,
        power_sum_mw INTEGER NOT NULL,
        power_min_mw INTEGER,
        power_max_mw INTEGER,
        energy_mwh   INTEGER NOT NULL,
        covered_ms   INTEGER NOT NULL,
        resets       INTEGER NOT NULL,
        PRIMARY KEY (channel_id, bucket_ms)`;
    db.exec(`
      CREATE TABLE rollup_minute (${columns}) WITHOUT ROWID, STRICT;
      CREATE TABLE rollup_hour (${columns}) WITHOUT ROWID, STRICT;
      CREATE TABLE rollup_day (${columns}) WITHOUT ROWID, STRICT;
      CREATE TABLE energy_gaps (
        channel_id INTEGER NOT NULL REFERENCES channels (id),
        start_ms   INTEGER NOT NULL,
        end_ms     INTEGER NOT NULL,
        energy_mwh INTEGER NOT NULL,
        reset      INTEGER NOT NULL,
        PRIMARY KEY (channel_id, start_ms)
      ) WITHOUT ROWID, STRICT;
      CREATE TABLE lifecycle_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    `);
  },
  // 4: voltage and current become optional (NULL: the plug does not measure them; many newer plugs
  // report power and energy only). SQLite cannot drop NOT NULL in place, so the table is rebuilt:
  // every row copied in key order, then renamed. Nothing references `readings`, and the rollups and
  // outbox do not hold voltage or current, so they stay as they are.
  (db) => {
    db.exec(`
      CREATE TABLE readings_v4 (
        channel_id INTEGER NOT NULL REFERENCES channels (id),
        ts_ms      INTEGER NOT NULL,
        power_mw   INTEGER NOT NULL,
        voltage_mv INTEGER,
        current_ma INTEGER,
        total_wh   INTEGER NOT NULL,
        PRIMARY KEY (channel_id, ts_ms)
      ) WITHOUT ROWID, STRICT;
      INSERT INTO readings_v4 (channel_id, ts_ms, power_mw, voltage_mv, current_ma, total_wh)
        SELECT channel_id, ts_ms, power_mw, voltage_mv, current_ma, total_wh FROM readings
        ORDER BY channel_id, ts_ms;
      DROP TABLE readings;
      ALTER TABLE readings_v4 RENAME TO readings;
    `);
  },
];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = migrations.length;

export function schemaVersionOf(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function tooNew(found: number): StorageError {
  return new StorageError(
    `database schema version ${found} is newer than this kasa-monitor understands (${SCHEMA_VERSION}); upgrade kasa-monitor or restore an older backup`,
    { code: KasaStorageCode.schemaTooNew, transient: false },
  );
}

/** Throws unless `db` holds a kasa-monitor schema this code can read. */
export function assertReadableSchema(db: Database): void {
  const found = schemaVersionOf(db);
  if (found > SCHEMA_VERSION) throw tooNew(found);
  if (found === 0) {
    throw new StorageError('database has no kasa-monitor schema (was it ever opened by the daemon?)', {
      code: KasaStorageCode.notKasaDatabase,
      transient: false,
    });
  }
}

/**
 * Brings the schema up to date, one transaction per migration. Returns the number applied
 * (0 when the database was already current). A database newer than the code is an error.
 */
export function migrate(db: Database): number {
  const found = schemaVersionOf(db);
  if (found > SCHEMA_VERSION) throw tooNew(found);
  if (found === 0) {
    // A fresh file must be empty: refuse to add our tables to someone else's database.
    const count = db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() as number;
    if (count > 0) {
      throw new StorageError('the file is a SQLite database that was not created by kasa-monitor', {
        code: KasaStorageCode.notKasaDatabase,
        transient: false,
      });
    }
  }
  for (let version = found; version < SCHEMA_VERSION; version++) {
    const migration = migrations[version] as Migration;
    db.transaction(() => {
      migration(db);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
  return SCHEMA_VERSION - found;
}
