/**
 * Backup and restore of the database file.
 *
 * - A backup is an online, consistent copy made with SQLite's backup API, a few pages per step. If
 *   another connection writes meanwhile SQLite restarts the copy; each restart makes the steps four
 *   times larger, so a copy always finishes (at worst in one step, which holds a read snapshot: in
 *   WAL mode that never blocks the writer). The daemon's scheduled backups run on the writer's own
 *   connection, whose writes SQLite carries into the copy: no restarts at all.
 * - Every copy is checked (PRAGMA integrity_check and a kasa-monitor schema this version reads),
 *   turned into a single self-contained file (journal_mode=DELETE), and only then given its name.
 * - Restore refuses while any other process has the database open (the daemon): it takes SQLite's
 *   exclusive lock, which no running daemon would give up. The replaced database stays beside it.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KasaStorageCode, StorageError } from '../../errors.js';
import type { FileOps } from '../../file-ops.js';
import { BetterSqlite3, type Db, openReadonly } from '../connection.js';
import { toStorageError } from '../errors.js';
import { assertReadableSchema, SCHEMA_VERSION, schemaVersionOf } from '../schema.js';
import { LifecycleCode } from './lifecycle-protocol.js';

export interface CopyProgress {
  readonly totalPages: number;
  readonly remainingPages: number;
  /** Times SQLite restarted the copy because another connection wrote. */
  readonly restarts: number;
}

export interface CopyOptions {
  /** Pages per step at first (default 256, i.e. 1 MiB of 4 KiB pages). */
  readonly stepPages?: number;
  readonly onProgress?: (progress: CopyProgress) => void;
}

/** Copies `source` into the new file `dest` with the backup API (see the module comment). */
export async function copyDatabase(
  source: Db,
  dest: string,
  options: CopyOptions = {},
): Promise<{ pages: number; restarts: number }> {
  let step = Math.max(1, Math.floor(options.stepPages ?? 256));
  let previous = Number.POSITIVE_INFINITY;
  let restarts = 0;
  const meta = await source.backup(dest, {
    progress: ({ totalPages, remainingPages }) => {
      if (remainingPages > previous) {
        restarts++;
        step = Math.min(step * 4, Math.max(totalPages, 1));
      }
      previous = remainingPages;
      options.onProgress?.({ totalPages, remainingPages, restarts });
      return step;
    },
  });
  return { pages: meta.totalPages, restarts };
}

export interface DatabaseFileCheck {
  /** Empty when the file is sound: integrity_check problems, or why it is not a usable database. */
  readonly problems: readonly string[];
  readonly schemaVersion: number | null;
  readonly channels: number;
  readonly readings: number;
  readonly bytes: number;
}

/**
 * Checks a database file: PRAGMA integrity_check, and a kasa-monitor schema this version can read.
 * `standalone` (only for our own copies) also switches it to journal_mode=DELETE, a single file.
 */
export function checkDatabaseFile(
  path: string,
  options: { readonly standalone: boolean },
): DatabaseFileCheck {
  const empty = { schemaVersion: null, channels: 0, readings: 0, bytes: 0 };
  if (!existsSync(path)) return { ...empty, problems: [`${path} does not exist`] };
  let db: Db | undefined;
  try {
    db = new BetterSqlite3(path, { fileMustExist: true, timeout: 5000, readonly: !options.standalone });
    if (options.standalone) db.pragma('journal_mode = DELETE');
    const problems = (db.pragma('integrity_check(20)') as { integrity_check: string }[])
      .flatMap((row) => row.integrity_check.split('\n'))
      .filter((line) => line !== 'ok');
    let schemaVersion: number | null = null;
    let channels = 0;
    let readings = 0;
    try {
      assertReadableSchema(db);
      schemaVersion = schemaVersionOf(db);
      channels = db.prepare('SELECT count(*) FROM channels').pluck().get() as number;
      readings = db.prepare('SELECT count(*) FROM readings').pluck().get() as number;
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      schemaVersion = schemaVersionOf(db);
    }
    db.close();
    db = undefined;
    return { problems, schemaVersion, channels, readings, bytes: statSync(path).size };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: unknown } | null)?.code;
    return {
      ...empty,
      problems: [code === 'SQLITE_NOTADB' ? 'not a SQLite database' : message],
    };
  } finally {
    db?.close();
  }
}

function badFile(what: string, check: DatabaseFileCheck): StorageError {
  const shown = check.problems.slice(0, 5).join('; ');
  return new StorageError(`${what}: ${shown}${check.problems.length > 5 ? '; ...' : ''}`, {
    code: LifecycleCode.badDatabaseFile,
    transient: false,
  });
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * Throws KASA_DB_IN_USE when another process has the database open: a connection in exclusive
 * locking mode cannot start while any other connection (the daemon's writer, an export) is open.
 * With `offline`, the file is then checkpointed and switched to journal_mode=DELETE (one file).
 */
export function assertNotInUse(path: string, options: { readonly offline?: boolean } = {}): void {
  if (!existsSync(path)) return;
  let db: Db | undefined;
  try {
    db = new BetterSqlite3(path, { fileMustExist: true, timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    if (options.offline === true) {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.pragma('journal_mode = DELETE');
    }
  } catch (error) {
    if (isBusy(error)) {
      throw new StorageError(
        `${path} is open in another process: is the daemon running? Stop it first (systemctl stop kasa-monitor)`,
        { code: LifecycleCode.inUse, transient: false },
      );
    }
    throw toStorageError(error, `cannot lock ${path}`);
  } finally {
    db?.close();
  }
}

/** '20261126T140305Z' */
export function fileStamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

export interface BackupFileResult {
  readonly path: string;
  readonly bytes: number;
  readonly pages: number;
  readonly restarts: number;
  readonly channels: number;
  readonly readings: number;
  readonly elapsedMs: number;
}

/**
 * Checks a fresh copy at `partial`, makes it a single file and moves it to `dest` (fsynced).
 * A copy that fails its check is deleted and reported.
 */
export async function finishBackupFile(
  partial: string,
  dest: string,
  files: FileOps,
  check: (path: string) => Promise<DatabaseFileCheck> | DatabaseFileCheck = (p) =>
    checkDatabaseFile(p, { standalone: true }),
): Promise<DatabaseFileCheck> {
  const result = await check(partial);
  if (result.problems.length > 0) {
    await files.remove(partial);
    throw badFile(`the backup copy failed its check and was deleted`, result);
  }
  await files.fsync(partial);
  await files.rename(partial, dest);
  await files.fsync(dirname(dest));
  return result;
}

/** `kasa-monitor backup`: an online copy of `source` (the daemon may be writing) to `dest`. */
export async function backupDatabaseFile(options: {
  readonly source: string;
  readonly dest: string;
  readonly files: FileOps;
  readonly stepPages?: number;
  readonly onProgress?: (progress: CopyProgress) => void;
}): Promise<BackupFileResult> {
  const { source, dest, files } = options;
  const started = performance.now();
  if (!existsSync(source)) {
    throw new StorageError(`database file ${source} does not exist`, {
      code: KasaStorageCode.notFound,
      transient: false,
    });
  }
  if (existsSync(dest)) {
    throw new StorageError(`${dest} exists already; choose another --to`, {
      code: LifecycleCode.exists,
      transient: false,
    });
  }
  await files.mkdirp(dirname(dest));
  const partial = `${dest}.partial`;
  await files.remove(partial);
  let copy: { pages: number; restarts: number };
  const db = openReadonly(source, 5000);
  try {
    assertReadableSchema(db);
    copy = await copyDatabase(db, partial, {
      ...(options.stepPages === undefined ? {} : { stepPages: options.stepPages }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
  } catch (error) {
    await files.remove(partial).catch(() => undefined);
    throw toStorageError(error, `backup of ${source}`);
  } finally {
    db.close();
  }
  const check = await finishBackupFile(partial, dest, files);
  return {
    path: dest,
    bytes: check.bytes,
    pages: copy.pages,
    restarts: copy.restarts,
    channels: check.channels,
    readings: check.readings,
    elapsedMs: performance.now() - started,
  };
}

/** Backup files of the schedule in `dir`, oldest first: kasa-monitor-<stamp>.db. */
export const SCHEDULED_BACKUP = /^kasa-monitor-\d{8}T\d{6}Z\.db$/;

export function scheduledBackupName(ms: number): string {
  return `kasa-monitor-${fileStamp(ms)}.db`;
}

export function manualBackupName(ms: number): string {
  return `kasa-monitor-${fileStamp(ms)}-manual.db`;
}

export interface RestoreResult {
  readonly target: string;
  /** Where the database that was replaced now is; null when there was none. */
  readonly replacedPath: string | null;
  readonly check: DatabaseFileCheck;
}

/**
 * `kasa-monitor restore`: refuses while the database is open elsewhere; copies `source` beside the
 * target and checks the copy (integrity, schema) before touching anything; then moves the current
 * database aside (`<db>.replaced-<stamp>`) and the copy into its place.
 */
export async function restoreDatabaseFile(options: {
  readonly source: string;
  readonly target: string;
  readonly files: FileOps;
  readonly nowMs: number;
}): Promise<RestoreResult> {
  const { files } = options;
  const source = resolve(options.source);
  const target = resolve(options.target);
  if (source === target) {
    throw new StorageError('the file to restore is the database itself', {
      code: KasaStorageCode.badOptions,
      transient: false,
    });
  }
  if (!existsSync(source)) {
    throw new StorageError(`${source} does not exist`, { code: KasaStorageCode.notFound, transient: false });
  }
  const sourceWal = await files.size(`${source}-wal`);
  if (sourceWal !== null && sourceWal > 0) {
    throw new StorageError(
      `${source} has a write-ahead log beside it (${basename(source)}-wal): it is open or was not closed cleanly; copy it with 'kasa-monitor backup' instead`,
      { code: LifecycleCode.badDatabaseFile, transient: false },
    );
  }
  assertNotInUse(target);
  await files.mkdirp(dirname(target));
  const stamp = fileStamp(options.nowMs);
  const incoming = `${target}.restore-${stamp}.tmp`;
  await files.remove(incoming);
  await files.copy(source, incoming);
  const check = checkDatabaseFile(incoming, { standalone: true });
  if (check.problems.length > 0 || (check.schemaVersion ?? 0) > SCHEMA_VERSION) {
    await files.remove(incoming);
    throw badFile(`${source} cannot be restored`, check);
  }
  await files.fsync(incoming);
  // Checked again right before the swap, and the current file made whole (WAL folded in).
  assertNotInUse(target, { offline: true });
  let replacedPath: string | null = null;
  if (existsSync(target)) {
    replacedPath = `${target}.replaced-${stamp}`;
    await files.rename(target, replacedPath);
    // The shared-memory index is only a cache; a WAL with content (if the switch to one file
    // failed) belongs to the replaced database.
    await files.remove(`${target}-shm`);
    const wal = await files.size(`${target}-wal`);
    if (wal !== null && wal > 0) await files.rename(`${target}-wal`, `${replacedPath}-wal`);
    else await files.remove(`${target}-wal`);
  }
  await files.rename(incoming, target);
  await files.fsync(dirname(target));
  return { target, replacedPath, check };
}
