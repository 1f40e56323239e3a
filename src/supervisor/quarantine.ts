/**
 * A corrupt database is never deleted and never written to again: it is moved aside together with
 * its -wal and -shm files (renamed as a set, so SQLite tools can still open the copy and recover what
 * is readable), and a fresh database takes its place.
 */
import { closeSync, existsSync, openSync, readSync, renameSync } from 'node:fs';
import { isStorageError } from '../storage/errors.js';

/** SQLite says the file is damaged, or not a database at all. */
export function isCorruptionError(error: unknown): boolean {
  if (!isStorageError(error)) return false;
  return /^SQLITE_(CORRUPT|NOTADB)/.test(error.code);
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/** The file starts with SQLite's magic string: a database, whatever state the rest is in. */
export function hasSqliteHeader(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buffer = Buffer.alloc(SQLITE_MAGIC.length);
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    return read === buffer.length && buffer.toString('latin1') === SQLITE_MAGIC;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * A damaged database to move aside: SQLite reports corruption, or "not a database" for a file that
 * is one (its header survived). A file that never was a SQLite database (a wrong path in the
 * configuration) is not touched: the daemon refuses to start and says why.
 */
export function isDamagedDatabase(error: unknown, path: string): boolean {
  if (!isCorruptionError(error)) return false;
  return /^SQLITE_CORRUPT/.test((error as { code: string }).code) || hasSqliteHeader(path);
}

export interface Quarantined {
  /** Where the database file went. */
  readonly movedTo: string;
  /** Every file moved: [from, to] (the database, and its -wal and -shm when present). */
  readonly files: readonly (readonly [string, string])[];
  readonly atMs: number;
}

/** `2026-11-26T14-03-05Z`: a timestamp that is a valid file name everywhere. */
function stamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/:/g, '-');
}

/**
 * Renames `path` and its `-wal`, `-shm` and `-journal` files to `path.corrupt-<UTC time>` (+ the same
 * suffixes). Every connection to the database must be closed first. Throws when the database file cannot be moved.
 */
export function quarantineDatabase(path: string, nowMs: number = Date.now()): Quarantined {
  let target = `${path}.corrupt-${stamp(nowMs)}`;
  for (let n = 2; existsSync(target); n++) target = `${path}.corrupt-${stamp(nowMs)}-${n}`;
  const files: [string, string][] = [];
  // The main file last: while it is still in place, the -wal/-shm renames cannot confuse anyone.
  // -journal: a rollback journal left by a DELETE-mode database.
  for (const suffix of ['-wal', '-shm', '-journal', '']) {
    const from = path + suffix;
    if (!existsSync(from)) continue;
    const to = target + suffix;
    renameSync(from, to);
    files.push([from, to]);
  }
  return { movedTo: target, files: files.reverse(), atMs: nowMs };
}
