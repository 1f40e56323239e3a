/**
 * The writer worker's side of the data lifecycle: rollups (fed by writeBatch), maintenance steps
 * (retention, budget, vacuum, WAL) and scheduled backups on the writer's own connection. Created when
 * the database opens; `handle` serves the `lifecycle` requests of the worker protocol.
 */
import { existsSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isValidTimeZone } from '../../../energy/index.js';
import { KasaStorageCode, StorageError } from '../../errors.js';
import type { Db, SqliteOptions } from '../connection.js';
import { copyDatabase } from './backup.js';
import {
  type BackupReport,
  type LifecycleAction,
  LifecycleCode,
  type LifecycleOpenOptions,
} from './lifecycle-protocol.js';
import { Maintenance } from './retention.js';
import { type RollupInitReport, Rollups } from './rollups.js';

const DEFAULT_WAL_LIMIT = 64 * 1024 * 1024;
const DEFAULT_CONVERT_UP_TO = 64 * 1024 * 1024;

function validate(options: LifecycleOpenOptions): void {
  const problems: string[] = [];
  if (typeof options.rollups !== 'boolean') problems.push(`rollups ${String(options.rollups)}`);
  if (typeof options.timeZone !== 'string' || !isValidTimeZone(options.timeZone))
    problems.push(`timeZone ${String(options.timeZone)}`);
  if (!(Number.isFinite(options.gapLimitMs) && options.gapLimitMs > 0))
    problems.push(`gapLimitMs ${String(options.gapLimitMs)}`);
  if (problems.length > 0) {
    throw new StorageError(`invalid lifecycle options: ${problems.join(', ')}`, {
      code: KasaStorageCode.badOptions,
      transient: false,
    });
  }
}

export class WorkerLifecycle {
  /** Null when the daemon keeps no rollups (options.lifecycle absent or rollups: false). */
  readonly rollups: Rollups | null;
  readonly initReport: RollupInitReport | null;
  readonly #db: Db;
  readonly #path: string;
  readonly #maintenance: Maintenance;
  #backup: Promise<BackupReport> | null = null;

  constructor(db: Db, options: SqliteOptions) {
    this.#db = db;
    this.#path = options.path;
    const lifecycle = options.lifecycle;
    const walLimit = lifecycle?.walLimitBytes ?? DEFAULT_WAL_LIMIT;
    if (lifecycle !== undefined) {
      validate(lifecycle);
      this.#prepareFile(walLimit, lifecycle.convertVacuumUpToBytes ?? DEFAULT_CONVERT_UP_TO);
    }
    this.rollups =
      lifecycle?.rollups === true
        ? new Rollups(db, { timeZone: lifecycle.timeZone, gapLimitMs: lifecycle.gapLimitMs })
        : null;
    this.initReport = this.rollups?.init() ?? null;
    this.#maintenance = new Maintenance(db, options.path, this.rollups, walLimit);
  }

  handle(action: LifecycleAction): unknown {
    switch (action.kind) {
      case 'maintain':
        return this.#maintenance.step(action.policy, action.nowMs, action.stepRows, action.vacuumPages);
      case 'info':
        return this.#maintenance.info();
      case 'backup':
        return this.#startBackup(action.path, action.stepPages);
    }
  }

  /** Writes the closed rollup buckets still in memory (they would be rebuilt at start otherwise). */
  close(): void {
    // An unfinished backup fails when the connection closes; its partial file is the caller's to remove.
    this.#backup = null;
    try {
      this.rollups?.flush();
    } catch {
      // Rebuilt from raw readings at the next start.
    }
  }

  /**
   * journal_size_limit keeps a checkpointed WAL from staying large; incremental auto-vacuum lets
   * maintenance give freed pages back to the filesystem. auto_vacuum can only change with a VACUUM:
   * done once, at open, for files small enough (every new database), so start-up stays quick.
   */
  #prepareFile(walLimit: number, convertUpTo: number): void {
    const db = this.#db;
    db.pragma(`journal_size_limit = ${Math.max(0, Math.floor(walLimit))}`);
    if (this.#path === ':memory:') return;
    const mode = db.pragma('auto_vacuum', { simple: true }) as number;
    if (mode === 2) return;
    const bytes =
      (db.pragma('page_count', { simple: true }) as number) *
      (db.pragma('page_size', { simple: true }) as number);
    if (bytes > convertUpTo) return;
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
    db.pragma('wal_checkpoint(TRUNCATE)');
  }

  #startBackup(path: string, stepPages: number): Promise<BackupReport> {
    if (this.#backup !== null) {
      throw new StorageError('a backup is running already', { code: LifecycleCode.busy, transient: true });
    }
    if (existsSync(path)) {
      throw new StorageError(`${path} exists already`, { code: LifecycleCode.exists, transient: false });
    }
    const started = performance.now();
    // The writer's own connection: its writes between steps go into the copy too (no restarts).
    const run = copyDatabase(this.#db, path, { stepPages }).then(({ pages }) => ({
      path,
      pages,
      bytes: statSync(path).size,
      elapsedMs: performance.now() - started,
    }));
    this.#backup = run;
    const clear = () => {
      if (this.#backup === run) this.#backup = null;
    };
    run.then(clear, clear);
    return run;
  }
}
