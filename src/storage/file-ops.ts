/**
 * File operations of the data lifecycle (backups, restore), each run under a retry policy (the
 * `file` preset): a busy or briefly failing file system is retried with backoff, a missing file or a
 * full disk is not. Failures are FileOperationErrors that say whether a retry can help.
 */
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import type { ExecutionPolicy } from '../resilience/index.js';

/** errno codes after which the same operation may succeed a moment later. */
const TRANSIENT_CODES = new Set([
  'EBUSY',
  'EAGAIN',
  'EINTR',
  'EMFILE',
  'ENFILE',
  'ETXTBSY',
  'EIO',
  'ETIMEDOUT',
]);

export class FileOperationError extends Error {
  override readonly name = 'FileOperationError';
  readonly code: string;
  readonly transient: boolean;
  /** Declared for the policy: a busy file system is transient, anything else (a full disk too) permanent. */
  readonly failureKind: 'transient' | 'permanent';

  constructor(operation: string, path: string, cause: unknown) {
    const code = (cause as { code?: unknown } | null)?.code;
    const message = cause instanceof Error ? cause.message : String(cause);
    super(`${operation} ${path}: ${message}`, { cause });
    this.code = typeof code === 'string' ? code : 'EUNKNOWN';
    this.transient = TRANSIENT_CODES.has(this.code);
    this.failureKind = this.transient ? 'transient' : 'permanent';
  }
}

export interface FileOps {
  copy(from: string, to: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing one is fine. */
  remove(path: string): Promise<void>;
  mkdirp(dir: string): Promise<void>;
  /** Flushes a file, or a directory's entries (after a rename), to disk. */
  fsync(path: string): Promise<void>;
  list(dir: string): Promise<string[]>;
  size(path: string): Promise<number | null>;
}

/** File operations guarded by `policy` (the `file` retry preset). */
export function fileOps(policy: ExecutionPolicy): FileOps {
  const run = <T>(operation: string, path: string, fn: () => Promise<T>): Promise<T> =>
    policy.execute(async () => {
      try {
        return await fn();
      } catch (error) {
        throw new FileOperationError(operation, path, error);
      }
    });
  return {
    copy: (from, to) => run('copy', `${from} to ${to}`, () => copyFile(from, to)),
    rename: (from, to) => run('rename', `${from} to ${to}`, () => rename(from, to)),
    remove: (path) => run('remove', path, () => rm(path, { force: true })),
    mkdirp: (dir) => run('mkdir', dir, () => mkdir(dir, { recursive: true }).then(() => undefined)),
    fsync: (path) =>
      run('fsync', path, async () => {
        const handle = await open(path, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }),
    list: (dir) => run('list', dir, () => readdir(dir)),
    size: (path) =>
      run('stat', path, async () => {
        try {
          return (await stat(path)).size;
        } catch (error) {
          if ((error as { code?: unknown }).code === 'ENOENT') return null;
          throw error;
        }
      }),
  };
}
