/**
 * The daemon's data lifecycle on the main thread: runs retention (in small steps, in the writer
 * worker, so batch writes interleave) every `maintenanceIntervalMs`, and scheduled online backups
 * (cron), keeping the last N. It only schedules and reports; the database work happens in the
 * writer worker (see sqlite/lifecycle-worker.ts), the check of a fresh backup in a thread of its own,
 * and every file operation under the `file` retry policy.
 */
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { ExecutionPolicy } from '../resilience/index.js';
import { type CronJob, scheduleCron } from '../shared/cron.js';
import { type FileOps, fileOps } from './file-ops.js';
import {
  type BackupReport,
  checkDatabaseFileInThread,
  type DatabaseFileCheck,
  finishBackupFile,
  type MaintenanceReport,
  type RetentionPolicy,
  SCHEDULED_BACKUP,
  type SqliteStore,
  type StorageInfo,
  scheduledBackupName,
} from './sqlite/index.js';

export interface DataLifecycleOptions {
  readonly retention: RetentionPolicy;
  /** How often retention and the budget are applied. */
  readonly maintenanceIntervalMs: number;
  /** node-cron expression of scheduled backups; null: none. */
  readonly backupSchedule: string | null;
  /** Scheduled backups kept. */
  readonly backupKeep: number;
  readonly backupDirectory: string;
  /** Zone of the backup schedule. */
  readonly timeZone: string;
}

/** Per step: rows deleted, pages vacuumed, pages copied by a backup. Small: writes wait one step at most. */
const STEP_ROWS = 5000;
const VACUUM_PAGES = 256;
const BACKUP_STEP_PAGES = 256;
/** A maintenance run stops after this many steps and goes on at the next interval. */
const MAX_STEPS = 10_000;
/** The first maintenance run, after start. */
const FIRST_RUN_DELAY_MS = 30_000;

export interface MaintenanceRun {
  readonly steps: number;
  readonly deleted: {
    readonly raw: number;
    readonly minute: number;
    readonly hour: number;
    readonly day: number;
  };
  readonly sealed: number;
  readonly vacuumedPages: number;
  readonly budgetUnreachable: boolean;
  readonly info: StorageInfo | null;
}

export interface BackupResult {
  readonly path: string;
  readonly bytes: number;
  readonly pages: number;
  readonly elapsedMs: number;
  readonly readings: number;
  /** Older scheduled backups deleted to keep `backupKeep`. */
  readonly rotated: readonly string[];
}

export interface LifecycleError {
  readonly message: string;
  readonly atMs: number;
}

export interface DataLifecycleStats {
  readonly maintenance: {
    readonly runs: number;
    readonly lastRunAtMs: number | null;
    readonly deleted: {
      readonly raw: number;
      readonly minute: number;
      readonly hour: number;
      readonly day: number;
    };
    readonly vacuumedPages: number;
    readonly budgetUnreachable: boolean;
    readonly lastError: LifecycleError | null;
    readonly storage: StorageInfo | null;
  };
  readonly backups: {
    readonly taken: number;
    readonly failed: number;
    readonly running: boolean;
    readonly lastPath: string | null;
    readonly lastAtMs: number | null;
    readonly lastError: LifecycleError | null;
    readonly nextAtMs: number | null;
  };
}

/** What the lifecycle needs from the store (SqliteStore). */
export type LifecycleStore = Pick<SqliteStore, 'lifecycle'>;

export interface DataLifecycleDeps {
  /** Checks a fresh backup (default: in a thread of its own). */
  readonly checkFile?: (path: string) => Promise<DatabaseFileCheck>;
  readonly now?: () => number;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class DataLifecycle {
  readonly name = 'lifecycle';
  #options: DataLifecycleOptions;
  readonly #files: FileOps;
  readonly #checkFile: (path: string) => Promise<DatabaseFileCheck>;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #cron: CronJob | null = null;
  #started = false;
  #stopping = false;
  #maintaining: Promise<MaintenanceRun> | null = null;
  #backingUp: Promise<BackupResult> | null = null;

  #runs = 0;
  #lastRunAtMs: number | null = null;
  readonly #deleted = { raw: 0, minute: 0, hour: 0, day: 0 };
  #vacuumedPages = 0;
  #budgetUnreachable = false;
  #maintenanceError: LifecycleError | null = null;
  #storage: StorageInfo | null = null;
  #backupsTaken = 0;
  #backupsFailed = 0;
  #lastBackupPath: string | null = null;
  #lastBackupAtMs: number | null = null;
  #backupError: LifecycleError | null = null;

  constructor(
    private readonly store: LifecycleStore,
    options: DataLifecycleOptions,
    private readonly logger: Logger,
    filePolicy: ExecutionPolicy,
    deps: DataLifecycleDeps = {},
  ) {
    this.#options = options;
    this.#files = fileOps(filePolicy);
    this.#checkFile = deps.checkFile ?? ((path) => checkDatabaseFileInThread(path, true));
    this.#now = deps.now ?? Date.now;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#stopping = false;
    this.#arm(FIRST_RUN_DELAY_MS);
    this.#schedule();
  }

  /** Applies reloaded retention and backup settings. */
  reconfigure(options: DataLifecycleOptions): void {
    const previous = this.#options;
    this.#options = options;
    if (!this.#started) return;
    if (previous.maintenanceIntervalMs !== options.maintenanceIntervalMs)
      this.#arm(options.maintenanceIntervalMs);
    if (previous.backupSchedule !== options.backupSchedule || previous.timeZone !== options.timeZone)
      this.#schedule();
  }

  /** Stops the timers and waits for a maintenance run to reach the end of its step. A backup is left to fail with the store. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#started = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#cron?.stop();
    this.#cron = null;
    await this.#maintaining?.catch(() => undefined);
  }

  /** Applies retention and the budget now, step by step until done (joins a run in progress). */
  runMaintenance(): Promise<MaintenanceRun> {
    this.#maintaining ??= this.#maintain().finally(() => {
      this.#maintaining = null;
    });
    return this.#maintaining;
  }

  /** Takes a backup into the backup directory now, checks it and rotates old ones. */
  backupNow(): Promise<BackupResult> {
    if (this.#backingUp !== null) return this.#backingUp;
    const run = this.#backup();
    this.#backingUp = run;
    const clear = () => {
      if (this.#backingUp === run) this.#backingUp = null;
    };
    run.then(clear, clear);
    return run;
  }

  stats(): DataLifecycleStats {
    return {
      maintenance: {
        runs: this.#runs,
        lastRunAtMs: this.#lastRunAtMs,
        deleted: { ...this.#deleted },
        vacuumedPages: this.#vacuumedPages,
        budgetUnreachable: this.#budgetUnreachable,
        lastError: this.#maintenanceError,
        storage: this.#storage,
      },
      backups: {
        taken: this.#backupsTaken,
        failed: this.#backupsFailed,
        running: this.#backingUp !== null,
        lastPath: this.#lastBackupPath,
        lastAtMs: this.#lastBackupAtMs,
        lastError: this.#backupError,
        nextAtMs: this.#cron?.nextRunMs() ?? null,
      },
    };
  }

  #arm(delayMs: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.runMaintenance()
        .catch(() => undefined)
        .finally(() => {
          if (this.#started && this.#timer === null) this.#arm(this.#options.maintenanceIntervalMs);
        });
    }, delayMs);
    this.#timer.unref();
  }

  #schedule(): void {
    this.#cron?.stop();
    this.#cron = null;
    const expression = this.#options.backupSchedule;
    if (expression === null) return;
    this.#cron = scheduleCron(
      expression,
      {
        onTick: () => {
          this.backupNow().catch(() => undefined);
        },
        onMissed: (scheduledMs) =>
          this.logger.warn(
            { slot: new Date(scheduledMs).toISOString() },
            'a scheduled backup slot was missed',
          ),
        onLog: (level, text) => this.logger[level]({ source: 'node-cron' }, text),
      },
      this.#options.timeZone,
    );
  }

  async #maintain(): Promise<MaintenanceRun> {
    const deleted = { raw: 0, minute: 0, hour: 0, day: 0 };
    let steps = 0;
    let sealed = 0;
    let vacuumedPages = 0;
    let budgetUnreachable = false;
    let report: MaintenanceReport | null = null;
    try {
      while (!this.#stopping && steps < MAX_STEPS) {
        report = await this.store.lifecycle({
          kind: 'maintain',
          policy: this.#options.retention,
          nowMs: this.#now(),
          stepRows: STEP_ROWS,
          vacuumPages: VACUUM_PAGES,
        });
        steps++;
        for (const table of ['raw', 'minute', 'hour', 'day'] as const)
          deleted[table] += report.deleted[table];
        sealed += report.sealed;
        vacuumedPages += report.vacuumedPages;
        budgetUnreachable ||= report.budgetUnreachable;
        if (report.done) break;
        // Let the writer's batches (queued in the worker behind this step) and everything else run.
        await yieldToLoop();
      }
      this.#maintenanceError = null;
    } catch (error) {
      this.#maintenanceError = { message: message(error), atMs: this.#now() };
      this.logger.warn({ err: error, steps }, 'retention step failed; trying again at the next interval');
    }
    this.#runs++;
    this.#lastRunAtMs = this.#now();
    for (const table of ['raw', 'minute', 'hour', 'day'] as const) this.#deleted[table] += deleted[table];
    this.#vacuumedPages += vacuumedPages;
    if (report !== null) this.#storage = report.info;
    if (budgetUnreachable && !this.#budgetUnreachable) {
      this.logger.warn(
        { maxBytes: this.#options.retention.maxBytes, usedBytes: report?.info.usedBytes },
        'the disk budget cannot be met: only data that must stay is left (rollups); raise storage.retention.max_size',
      );
    }
    this.#budgetUnreachable = budgetUnreachable;
    const total = deleted.raw + deleted.minute + deleted.hour + deleted.day;
    if (total > 0 || vacuumedPages > 0) {
      this.logger.info(
        {
          deleted,
          vacuumedPages,
          steps,
          fileBytes: report?.info.fileBytes,
          walBytes: report?.info.walBytes,
        },
        'retention applied',
      );
    }
    return { steps, deleted, sealed, vacuumedPages, budgetUnreachable, info: report?.info ?? null };
  }

  async #backup(): Promise<BackupResult> {
    const dir = this.#options.backupDirectory;
    const nowMs = this.#now();
    const dest = join(dir, scheduledBackupName(nowMs));
    const partial = `${dest}.partial`;
    try {
      await this.#files.mkdirp(dir);
      if ((await this.#files.size(dest)) !== null) throw new Error(`${dest} exists already`);
      await this.#files.remove(partial);
      let copied: BackupReport;
      try {
        copied = await this.store.lifecycle({ kind: 'backup', path: partial, stepPages: BACKUP_STEP_PAGES });
      } catch (error) {
        await this.#files.remove(partial).catch(() => undefined);
        throw error;
      }
      const check = await finishBackupFile(partial, dest, this.#files, this.#checkFile);
      const rotated = await this.#rotate(dir);
      this.#backupsTaken++;
      this.#lastBackupPath = dest;
      this.#lastBackupAtMs = this.#now();
      this.#backupError = null;
      const result: BackupResult = {
        path: dest,
        bytes: check.bytes,
        pages: copied.pages,
        elapsedMs: Math.round(copied.elapsedMs),
        readings: check.readings,
        rotated,
      };
      this.logger.info({ ...result, rotated: rotated.length }, 'backup taken and checked');
      return result;
    } catch (error) {
      this.#backupsFailed++;
      this.#backupError = { message: message(error), atMs: this.#now() };
      this.logger.error({ err: error, path: dest }, 'backup failed');
      throw error;
    }
  }

  /** Deletes the oldest scheduled backups beyond `backupKeep` (manual ones are never touched). */
  async #rotate(dir: string): Promise<string[]> {
    const names = (await this.#files.list(dir)).filter((name) => SCHEDULED_BACKUP.test(name)).sort();
    const excess = names.slice(0, Math.max(0, names.length - this.#options.backupKeep));
    for (const name of excess) await this.#files.remove(join(dir, name));
    return excess.map((name) => join(dir, name));
  }
}
