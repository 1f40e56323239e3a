/**
 * The typed error every storage sink throws. It says what went wrong (`code`) and whether trying the
 * same operation again later can help (`transient`), so retry policies never parse messages.
 *
 * For SQLite, `code` is SQLite's extended result code (`SQLITE_BUSY`, `SQLITE_FULL`,
 * `SQLITE_IOERR_WRITE`, ...). Conditions detected by kasa-monitor itself use `KASA_*` codes.
 */

const BRAND = Symbol.for('kasa-monitor.StorageError');

/**
 * What retrying can do for a failed storage call, decided where the error is made (the resilience
 * layer reads `failureKind` and knows no sink): `transient` (the same call may succeed soon),
 * `after-recovery` (it fails until something outside is repaired: a full disk), `permanent`.
 */
export type StorageFailureKind = 'transient' | 'after-recovery' | 'permanent';

/**
 * The kind of an error that does not declare one: `transient` decides. Sinks whose errors need more
 * (SQLite's full disk: sqlite/errors.ts) declare `failureKind` themselves; this module knows no sink.
 */
function defaultFailureKind(transient: boolean): StorageFailureKind {
  return transient ? 'transient' : 'permanent';
}

export interface StorageErrorOptions {
  readonly code: string;
  readonly transient: boolean;
  /** What a retry can do, as the sink that made the error decided; see defaultFailureKind. */
  readonly failureKind?: StorageFailureKind;
  /**
   * The peer refused the content of the request (a malformed point, too large a body), not the
   * request: the same content fails again, a part of it may succeed. False unless given.
   */
  readonly rejectsContent?: boolean;
  readonly cause?: unknown;
  /** How long the peer asked us to wait before trying again (HTTP Retry-After), in ms. */
  readonly retryAfterMs?: number | null;
}

export class StorageError extends Error {
  readonly [BRAND] = true;
  override readonly name = 'StorageError';
  readonly code: string;
  readonly transient: boolean;
  /** The peer's Retry-After in ms, when it sent one; retry policies wait at least that long. */
  readonly retryAfterMs: number | null;
  /** What a retry can do (see StorageFailureKind), decided by the sink that made the error. */
  readonly failureKind: StorageFailureKind;
  /** The peer refused the content itself (see StorageErrorOptions.rejectsContent). */
  readonly rejectsContent: boolean;

  constructor(message: string, options: StorageErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.transient = options.transient;
    this.retryAfterMs = options.retryAfterMs ?? null;
    this.failureKind = options.failureKind ?? defaultFailureKind(options.transient);
    this.rejectsContent = options.rejectsContent ?? false;
  }
}

/** True for a StorageError, including one built by another copy of this module. */
export function isStorageError(value: unknown): value is StorageError {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}

/** Codes raised by kasa-monitor rather than by a database driver. */
export const KasaStorageCode = {
  /** The writer worker died or exited; the store must be restarted. */
  workerExited: 'KASA_WORKER_EXITED',
  /** A call on a store that is not started, or already stopped. */
  notOpen: 'KASA_NOT_OPEN',
  /** The database file was written by a newer kasa-monitor. */
  schemaTooNew: 'KASA_SCHEMA_TOO_NEW',
  /** The file is a SQLite database but not a kasa-monitor one. */
  notKasaDatabase: 'KASA_NOT_KASA_DATABASE',
  /** The database file does not exist (reader). */
  notFound: 'KASA_DB_NOT_FOUND',
  /** `--device` names no known channel. */
  unknownDevice: 'KASA_UNKNOWN_DEVICE',
  /** `--device` is an alias shared by several channels. */
  ambiguousDevice: 'KASA_AMBIGUOUS_DEVICE',
  /** Invalid options (journal mode, cache size, ...). */
  badOptions: 'KASA_BAD_OPTIONS',
  /** The database path cannot be written (read-only file or directory, immutable, read-only mount). */
  notWritable: 'KASA_DB_NOT_WRITABLE',
  /** The open database file was removed or replaced at its path while the daemon ran. */
  removed: 'KASA_DB_REMOVED',
  /** An unexpected error without a driver code. */
  internal: 'KASA_INTERNAL',
} as const;
