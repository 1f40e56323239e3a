/**
 * Files that root writes for the service. The service runs as an unprivileged (dynamic) user, so a
 * backup folder or a restored database that root creates with root's owner is one the service cannot
 * write: its next scheduled backup fails, or it cannot open the database at all. Run as root, the
 * commands hand what they create to the owner of the database (or of its folder). Run as anyone
 * else, they change nothing: only root can give files away, and then they are the user's own.
 */
import { chmodSync, chownSync, existsSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
  /** Permission bits for files (never executable). */
  readonly fileMode: number;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The owner of `path` (its permission bits as a file's), or undefined when it does not exist. */
export function ownerOf(path: string): Owner | undefined {
  try {
    const stat = statSync(path);
    // A folder's x bits do not belong on a file; its r/w bits say who may read and write.
    return { uid: stat.uid, gid: stat.gid, fileMode: stat.mode & 0o666 };
  } catch {
    return undefined;
  }
}

/** The nearest folder of `dir` (itself or above) that exists: everything below it is created by us. */
export function firstMissingDirectory(dir: string): string | null {
  let missing: string | null = null;
  for (let current = resolve(dir); !existsSync(current); current = dirname(current)) {
    missing = current;
    if (dirname(current) === current) break;
  }
  return missing;
}

/**
 * As root, gives `owner` the folders from `createdFrom` down to `dir` (those this command created)
 * and the files, which also get the owner's mode. Anything that does not exist is skipped.
 */
export function handOver(
  owner: Owner | undefined,
  options: { files: readonly string[]; dir?: string; createdFrom?: string | null },
): void {
  if (owner === undefined || !isRoot()) return;
  const { dir, createdFrom } = options;
  if (dir !== undefined && createdFrom !== undefined && createdFrom !== null) {
    const steps = relative(createdFrom, dir)
      .split('/')
      .filter((part) => part !== '');
    let current = createdFrom;
    for (const step of ['', ...steps]) {
      current = step === '' ? current : resolve(current, step);
      if (existsSync(current)) chownSync(current, owner.uid, owner.gid);
    }
  }
  for (const file of options.files) {
    if (!existsSync(file)) continue;
    chownSync(file, owner.uid, owner.gid);
    chmodSync(file, owner.fileMode);
  }
}

/** As root, gives `owner` the folder `dir` when it belongs to someone else (root, after an older version). */
export function handOverDirectory(owner: Owner | undefined, dir: string): void {
  if (owner === undefined || !isRoot()) return;
  const current = ownerOf(dir);
  if (current !== undefined && (current.uid !== owner.uid || current.gid !== owner.gid)) {
    chownSync(dir, owner.uid, owner.gid);
  }
}

/**
 * As root, makes sure the database's -wal and -shm files are the owner's when the command ends:
 * SQLite creates them for a reader when they are missing (the service stopped), and root-owned
 * ones would keep the service from opening its own database.
 */
export function keepSidecarsOwned(database: string): void {
  const owner = ownerOf(database);
  if (owner === undefined || !isRoot() || owner.uid === 0) return;
  process.once('exit', () => {
    for (const file of [`${database}-wal`, `${database}-shm`]) {
      const current = ownerOf(file);
      if (current !== undefined && current.uid !== owner.uid) {
        try {
          chownSync(file, owner.uid, owner.gid);
        } catch {
          // Best effort at exit; the file may be gone already.
        }
      }
    }
  });
}
