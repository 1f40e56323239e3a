import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3Module from 'better-sqlite3';
import { requireCommonJs } from '../../shared/commonjs.js';
import { KasaStorageCode, StorageError } from '../errors.js';
import { toStorageError } from './errors.js';
import type { LifecycleOpenOptions } from './maintenance/lifecycle-protocol.js';
import { assertReadableSchema, migrate, SCHEMA_VERSION } from './schema.js';

/** The driver, loaded with require (see shared/commonjs.ts); this folder is its only user. */
export const BetterSqlite3 = requireCommonJs('better-sqlite3') as typeof BetterSqlite3Module;

export type Db = BetterSqlite3Module.Database;

export type JournalMode = 'WAL' | 'DELETE' | 'TRUNCATE' | 'PERSIST' | 'MEMORY' | 'OFF';
export type SynchronousMode = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';
export type TempStore = 'DEFAULT' | 'FILE' | 'MEMORY';

export interface SqliteOptions {
  readonly path: string;
  readonly journalMode: JournalMode;
  readonly synchronous: SynchronousMode;
  /** SQLite `cache_size`: pages when positive, KiB when negative. */
  readonly cacheSize: number;
  readonly tempStore: TempStore;
  /** How long a write waits for another connection's lock before SQLITE_BUSY. */
  readonly busyTimeoutMs: number;
  /**
   * Also record each batch's new readings in the outbox (same transaction), for a sink fed from
   * SQLite (InfluxDB). Off by default: nothing reads it then.
   */
  readonly outbox?: boolean;
  /**
   * The daemon's data lifecycle: rollups kept as batches commit, incremental auto-vacuum, a bounded
   * WAL (see maintenance/lifecycle-worker.ts). Absent: none of it (tests and benchmarks of the bare writer).
   */
  readonly lifecycle?: LifecycleOpenOptions | undefined;
}

const JOURNAL_MODES: readonly string[] = ['WAL', 'DELETE', 'TRUNCATE', 'PERSIST', 'MEMORY', 'OFF'];
const SYNCHRONOUS_MODES: readonly string[] = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];
const TEMP_STORES: readonly string[] = ['DEFAULT', 'FILE', 'MEMORY'];

/** Values are interpolated into PRAGMA statements, so they are checked against fixed lists first. */
export function validateSqliteOptions(options: SqliteOptions): void {
  const problems: string[] = [];
  if (typeof options.path !== 'string' || options.path.length === 0) problems.push('path must not be empty');
  if (!JOURNAL_MODES.includes(options.journalMode))
    problems.push(`journalMode ${String(options.journalMode)}`);
  if (!SYNCHRONOUS_MODES.includes(options.synchronous)) {
    problems.push(`synchronous ${String(options.synchronous)}`);
  }
  if (!TEMP_STORES.includes(options.tempStore)) problems.push(`tempStore ${String(options.tempStore)}`);
  if (!Number.isSafeInteger(options.cacheSize)) problems.push(`cacheSize ${String(options.cacheSize)}`);
  if (!Number.isSafeInteger(options.busyTimeoutMs) || options.busyTimeoutMs < 0) {
    problems.push(`busyTimeoutMs ${String(options.busyTimeoutMs)}`);
  }
  if (options.outbox !== undefined && typeof options.outbox !== 'boolean') {
    problems.push(`outbox ${String(options.outbox)}`);
  }
  if (problems.length > 0) {
    throw new StorageError(`invalid SQLite options: ${problems.join(', ')}`, {
      code: KasaStorageCode.badOptions,
      transient: false,
    });
  }
}

export interface OpenInfo {
  readonly sqliteVersion: string;
  readonly schemaVersion: number;
  readonly migrationsApplied: number;
  /** The journal mode SQLite actually uses (an in-memory database cannot use WAL, for instance). */
  readonly journalMode: string;
}

function notWritable(path: string, why: string, cause?: unknown): StorageError {
  return new StorageError(`the database ${path} cannot be written: ${why}`, {
    code: KasaStorageCode.notWritable,
    transient: false,
    ...(cause === undefined ? {} : { cause }),
  });
}

function reason(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}

/**
 * Refuses a path the daemon could only read. SQLite opens a file it may not write read-only without a
 * word, and every write then fails; the directory must be writable too, for the -wal, -shm and
 * -journal files SQLite creates beside it. access(2) answers for this process's user, and also says
 * EROFS for a read-only mount and EPERM for an immutable file (chattr +i), which root cannot write
 * either.
 */
export function assertWritablePath(path: string): void {
  if (path === ':memory:') return;
  const dir = dirname(path);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw notWritable(path, `its directory ${dir} is not writable (${reason(error)})`, error);
  }
  if (!existsSync(path)) return;
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (error) {
    throw notWritable(path, `the file is not writable (${reason(error)})`, error);
  }
}

/** Which file a path names now (device and inode), or null when there is none. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

export function fileIdentity(path: string): FileIdentity | null {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat === undefined ? null : { dev: stat.dev, ino: stat.ino };
}

/**
 * Opens the writing connection: creates the parent directory, applies the pragmas (synchronous is
 * always set explicitly: better-sqlite3 would otherwise leave WAL databases at NORMAL), migrates,
 * and runs `PRAGMA quick_check`. Every failure is a StorageError; the connection is closed on failure.
 */
export function openWritable(options: SqliteOptions): { db: Db; info: OpenInfo } {
  validateSqliteOptions(options);
  let db: Db | undefined;
  try {
    if (options.path !== ':memory:') {
      try {
        mkdirSync(dirname(options.path), { recursive: true });
      } catch (error) {
        throw notWritable(options.path, `its directory cannot be created (${reason(error)})`, error);
      }
    }
    assertWritablePath(options.path);
    db = new BetterSqlite3(options.path, { timeout: options.busyTimeoutMs });
    // The first statement reads the header: a non-database file fails here with SQLITE_NOTADB.
    const journalMode = String(db.pragma(`journal_mode = ${options.journalMode}`, { simple: true }));
    db.pragma(`synchronous = ${options.synchronous}`);
    db.pragma(`cache_size = ${options.cacheSize}`);
    db.pragma(`temp_store = ${options.tempStore}`);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
    const migrationsApplied = migrate(db);
    const problems = (db.pragma('quick_check(20)') as { quick_check: string }[])
      .flatMap((row) => row.quick_check.split('\n'))
      .filter((line) => line !== 'ok' && !line.startsWith('***'));
    if (problems.length > 0) {
      throw new StorageError(
        `${options.path} is corrupt (PRAGMA quick_check): ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? '; ...' : ''}`,
        { code: 'SQLITE_CORRUPT', transient: false },
      );
    }
    if (options.path !== ':memory:') {
      // The proof: a write. Rewriting user_version with its own value writes the header page, and
      // fails with SQLITE_READONLY when SQLite fell back to a read-only connection.
      // Another connection holding the write lock (a backup, a sqlite3 session) proves nothing either
      // way: then the probe is skipped, and the writer's retries deal with the lock as always.
      try {
        const version = Number(db.pragma('user_version', { simple: true }));
        db.pragma(`user_version = ${version}`);
      } catch (error) {
        const code = reason(error);
        if (code.startsWith('SQLITE_READONLY')) {
          throw notWritable(options.path, `SQLite opened it read-only (${code})`, error);
        }
        if (!code.startsWith('SQLITE_BUSY') && !code.startsWith('SQLITE_LOCKED')) throw error;
      }
    }
    const sqliteVersion = db.prepare('SELECT sqlite_version()').pluck().get() as string;
    return { db, info: { sqliteVersion, schemaVersion: SCHEMA_VERSION, migrationsApplied, journalMode } };
  } catch (error) {
    try {
      db?.close();
    } catch {
      // Already failing; the original error is the one worth reporting.
    }
    throw toStorageError(error, `cannot open ${options.path}`);
  }
}

/** The readonly connection of the export reader (a separate process, concurrent with the daemon). */
export function openReadonly(path: string, busyTimeoutMs: number): Db {
  return new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs });
}

/**
 * A read-only connection to an existing kasa-monitor database, handed to `use`: a missing file, a
 * file that is not ours, or whatever `use` throws closes the connection and becomes a StorageError
 * naming the file. The readers of readings and of rollups open their databases this way.
 */
export function withReadableDatabase<T>(path: string, busyTimeoutMs: number, use: (db: Db) => T): T {
  if (path !== ':memory:' && !existsSync(path)) {
    throw new StorageError(
      `database file ${path} does not exist (has the daemon run with this configuration?)`,
      {
        code: KasaStorageCode.notFound,
        transient: false,
      },
    );
  }
  let db: Db | undefined;
  try {
    db = openReadonly(path, busyTimeoutMs);
    assertReadableSchema(db);
    return use(db);
  } catch (error) {
    db?.close();
    throw toStorageError(error, `cannot read ${path}`);
  }
}

/** A short-lived read-write connection beside the daemon's writer (WAL: waits its turn for the lock). */
export function openSideWriter(path: string, busyTimeoutMs: number): Db {
  return new BetterSqlite3(path, { fileMustExist: true, timeout: busyTimeoutMs });
}
