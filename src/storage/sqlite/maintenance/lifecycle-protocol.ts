/**
 * The data-lifecycle requests the main thread sends the writer worker (one `lifecycle` op of the
 * worker protocol carries them all), their results, and the options the worker opens with.
 */

/** Lifecycle options of the writing connection (SqliteOptions.lifecycle). */
export interface LifecycleOpenOptions {
  /** Maintain minute/hour/day rollups as batches commit. */
  readonly rollups: boolean;
  /** IANA zone of the day tier. */
  readonly timeZone: string;
  /** Readings of a channel further apart than this form a gap. */
  readonly gapLimitMs: number;
  /**
   * The WAL is checkpointed with TRUNCATE by maintenance when it is larger than this, and SQLite's
   * journal_size_limit is set to it. Default 64 MiB.
   */
  readonly walLimitBytes?: number;
  /**
   * Databases without incremental auto-vacuum are converted at open (one VACUUM) when at most this
   * big; larger ones keep reusing freed pages but cannot return them. Default 64 MiB (the VACUUM
   * rewrites the whole file before the daemon is up, so it must stay quick on an SD card).
   */
  readonly convertVacuumUpToBytes?: number;
}

/** Age limits per tier (null: kept forever) and an optional size budget. */
export interface RetentionPolicy {
  readonly rawMs: number | null;
  readonly minuteMs: number | null;
  readonly hourMs: number | null;
  readonly dayMs: number | null;
  /** Database + WAL on disk; null: no budget. */
  readonly maxBytes: number | null;
}

export type LifecycleAction =
  | {
      readonly kind: 'maintain';
      readonly policy: RetentionPolicy;
      readonly nowMs: number;
      /** Rows deleted per step at most (each delete its own short transaction). */
      readonly stepRows: number;
      /** Pages returned to the filesystem per step at most (PRAGMA incremental_vacuum). */
      readonly vacuumPages: number;
    }
  | {
      readonly kind: 'backup';
      /** Destination file (must not exist). */
      readonly path: string;
      /** Pages copied per step; writes of the daemon run between steps. */
      readonly stepPages: number;
    }
  | { readonly kind: 'info' };

export type LifecycleKind = LifecycleAction['kind'];

export interface MaintenanceReport {
  /** Rows deleted in this step, per table. */
  readonly deleted: {
    readonly raw: number;
    readonly minute: number;
    readonly hour: number;
    readonly day: number;
  };
  /** Open buckets closed because their channel fell silent. */
  readonly sealed: number;
  readonly vacuumedPages: number;
  readonly checkpointed: boolean;
  /** Nothing left to do for now: no rows past their age, budget met or unreachable, no free pages. */
  readonly done: boolean;
  /** The budget cannot be met by deleting what may be deleted (only rollups that must stay are left). */
  readonly budgetUnreachable: boolean;
  readonly info: StorageInfo;
}

export interface BackupReport {
  readonly path: string;
  readonly pages: number;
  readonly bytes: number;
  readonly elapsedMs: number;
}

export interface StorageInfo {
  readonly fileBytes: number;
  readonly walBytes: number;
  readonly pageSize: number;
  readonly pageCount: number;
  readonly freelistCount: number;
  /** Bytes of pages in use: (pageCount - freelistCount) * pageSize. */
  readonly usedBytes: number;
  readonly autoVacuum: 'none' | 'full' | 'incremental';
  /** Rollup rows written (closed buckets) since the worker opened the database. */
  readonly rollupBucketsWritten: number;
  readonly rollups: boolean;
}

export interface LifecycleResultOf {
  maintain: MaintenanceReport;
  backup: BackupReport;
  info: StorageInfo;
}

/** Error codes of the lifecycle (StorageError.code). */
export const LifecycleCode = {
  /** Another process has the database open (the daemon): restore refuses. */
  inUse: 'KASA_DB_IN_USE',
  /** A backup or restore source failed its checks. */
  badDatabaseFile: 'KASA_BAD_DATABASE_FILE',
  /** The destination of a backup exists already. */
  exists: 'KASA_FILE_EXISTS',
  /** A backup is already running. */
  busy: 'KASA_BACKUP_RUNNING',
} as const;
