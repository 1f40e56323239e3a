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
