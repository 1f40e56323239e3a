import { isStorageError, KasaStorageCode, StorageError, type StorageFailureKind } from '../errors.js';

/**
 * SQLite result codes after which the same statement can succeed later without anyone repairing
 * the database: another connection holds a lock, the disk is full or briefly failing.
 * Everything else (CORRUPT, NOTADB, CANTOPEN, CONSTRAINT, MISUSE, ...) is permanent.
 */
const TRANSIENT_PRIMARY = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_FULL']);

/** `SQLITE_IOERR_WRITE` → `SQLITE_IOERR`; `SQLITE_BUSY` → `SQLITE_BUSY`. */
export function primaryCode(code: string): string {
  const match = /^SQLITE_[A-Z]+/.exec(code);
  return match ? match[0] : code;
}

export function isTransientSqliteCode(code: string): boolean {
  return TRANSIENT_PRIMARY.has(primaryCode(code));
}

/**
 * What a retry can do after a SQLite error: a full disk fails until space is freed (after-recovery;
 * still `transient`, as the writer holds its batch and tries again), the other transient codes may
 * pass soon, the rest never.
 */
export function sqliteFailureKind(code: string): StorageFailureKind {
  if (primaryCode(code) === 'SQLITE_FULL') return 'after-recovery';
  return isTransientSqliteCode(code) ? 'transient' : 'permanent';
}

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Wraps whatever better-sqlite3 (or our own code) threw into a StorageError. */
export function toStorageError(error: unknown, context: string): StorageError {
  if (isStorageError(error)) return error;
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code?.startsWith('SQLITE_')) {
    return new StorageError(`${context}: ${message} (${code})`, {
      code,
      transient: isTransientSqliteCode(code),
      failureKind: sqliteFailureKind(code),
      cause: error,
    });
  }
  return new StorageError(`${context}: ${message}`, {
    code: KasaStorageCode.internal,
    transient: false,
    cause: error,
  });
}

/** A StorageError flattened for postMessage (structured clone drops class identity and symbols). */
export interface SerializedStorageError {
  readonly message: string;
  readonly code: string;
  readonly transient: boolean;
  readonly failureKind: StorageFailureKind;
  readonly cause?: {
    readonly name: string;
    readonly message: string;
    readonly code?: string;
    readonly stack?: string;
  };
}

export function serializeStorageError(error: StorageError): SerializedStorageError {
  const cause = error.cause;
  const kind = {
    message: error.message,
    code: error.code,
    transient: error.transient,
    failureKind: error.failureKind,
  };
  if (!(cause instanceof Error)) return kind;
  const causeCode = codeOf(cause);
  return {
    ...kind,
    cause: {
      name: cause.name,
      message: cause.message,
      ...(causeCode === undefined ? {} : { code: causeCode }),
      ...(cause.stack === undefined ? {} : { stack: cause.stack }),
    },
  };
}

/** Rebuilds the StorageError on the main thread; the driver's error becomes its `cause`. */
export function deserializeStorageError(data: SerializedStorageError): StorageError {
  let cause: Error | undefined;
  if (data.cause !== undefined) {
    cause = new Error(data.cause.message);
    cause.name = data.cause.name;
    if (data.cause.code !== undefined) Object.assign(cause, { code: data.cause.code });
    if (data.cause.stack !== undefined) cause.stack = data.cause.stack;
  }
  return new StorageError(data.message, {
    code: data.code,
    transient: data.transient,
    failureKind: data.failureKind,
    ...(cause === undefined ? {} : { cause }),
  });
}
