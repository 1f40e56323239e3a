/**
 * Retention, the disk budget, space reclamation and a bounded WAL, run by the writer worker in small
 * steps: each step deletes at most `stepRows` rows (each delete its own short transaction) and
 * returns at most `vacuumPages` pages to the filesystem, so batch writes queued meanwhile wait for
 * one step only. The main thread (DataLifecycle) repeats steps until one reports `done`.
 *
 * Order of deletion: raw readings past their age, then rollups past theirs; under the budget, the
 * oldest raw readings first, then the oldest minutes, then the oldest hours; days are never deleted
 * for space. Raw readings still needed to rebuild open rollup buckets are never deleted.
 */
import { statSync } from 'node:fs';
import type { Statement } from 'better-sqlite3';
import type { Db } from '../connection.js';
import type { MaintenanceReport, RetentionPolicy, StorageInfo } from './lifecycle-protocol.js';
import type { Rollups } from './rollups.js';

type Table = 'raw' | 'minute' | 'hour' | 'day';

const TABLE: Readonly<Record<Table, { readonly name: string; readonly time: string }>> = {
  raw: { name: 'readings', time: 'ts_ms' },
  minute: { name: 'rollup_minute', time: 'bucket_ms' },
  hour: { name: 'rollup_hour', time: 'bucket_ms' },
  day: { name: 'rollup_day', time: 'bucket_ms' },
};

/** Budget pruning starts above this share of the budget and goes on until usage is below LOW_WATER. */
const HIGH_WATER = 0.9;
const LOW_WATER = 0.8;

/** How much older data one budget slice removes from each table (oldest first). */
const BUDGET_SLICE_MS: Readonly<Record<Table, number>> = {
  raw: 6 * 3_600_000,
  minute: 7 * 86_400_000,
  hour: 90 * 86_400_000,
  day: 0,
};

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

const AUTO_VACUUM = ['none', 'full', 'incremental'] as const;

interface TableStatements {
  readonly oldest: Statement<unknown[]>;
  readonly nth: Statement<unknown[]>;
  readonly remove: Statement<unknown[]>;
}

export class Maintenance {
  readonly #db: Db;
  readonly #path: string;
  readonly #rollups: Rollups | null;
  readonly #walLimitBytes: number;
  readonly #tables: Record<Table, TableStatements>;
  readonly #pruneGaps;
  #budgetMode = false;

  constructor(db: Db, path: string, rollups: Rollups | null, walLimitBytes: number) {
    this.#db = db;
    this.#path = path;
    this.#rollups = rollups;
    this.#walLimitBytes = walLimitBytes;
    const statements = (table: Table): TableStatements => {
      const { name, time } = TABLE[table];
      return {
        oldest: db
          .prepare(`SELECT ${time} FROM ${name} WHERE channel_id = ? ORDER BY ${time} LIMIT 1`)
          .pluck(),
        nth: db
          .prepare(
            `SELECT ${time} FROM ${name} WHERE channel_id = ? AND ${time} < ? ORDER BY ${time} LIMIT 1 OFFSET ?`,
          )
          .pluck(),
        remove: db.prepare(`DELETE FROM ${name} WHERE channel_id = ? AND ${time} < ?`),
      };
    };
    this.#tables = {
      raw: statements('raw'),
      minute: statements('minute'),
      hour: statements('hour'),
      day: statements('day'),
    };
    this.#pruneGaps = db.prepare('DELETE FROM energy_gaps WHERE end_ms < ?');
  }

  info(): StorageInfo {
    const db = this.#db;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pageCount = db.pragma('page_count', { simple: true }) as number;
    const freelistCount = db.pragma('freelist_count', { simple: true }) as number;
    const autoVacuum = AUTO_VACUUM[db.pragma('auto_vacuum', { simple: true }) as number] ?? 'none';
    const memory = this.#path === ':memory:' || this.#path === '';
    return {
      fileBytes: memory ? pageCount * pageSize : fileSize(this.#path),
      walBytes: memory ? 0 : fileSize(`${this.#path}-wal`),
      pageSize,
      pageCount,
      freelistCount,
      usedBytes: (pageCount - freelistCount) * pageSize,
      autoVacuum,
      rollupBucketsWritten: this.#rollups?.bucketsWritten ?? 0,
      rollups: this.#rollups !== null,
    };
  }

  step(policy: RetentionPolicy, nowMs: number, stepRows: number, vacuumPages: number): MaintenanceReport {
    const deleted = { raw: 0, minute: 0, hour: 0, day: 0 };
    let left = Math.max(1, Math.floor(stepRows));
    const sealed = this.#rollups?.seal(nowMs) ?? 0;

    // 1. Age.
    const ages: readonly [Table, number | null][] = [
      ['raw', policy.rawMs],
      ['minute', policy.minuteMs],
      ['hour', policy.hourMs],
      ['day', policy.dayMs],
    ];
    for (const [table, age] of ages) {
      if (age === null || left <= 0) continue;
      const n = this.#deleteBefore(table, nowMs - age, left);
      deleted[table] += n;
      left -= n;
    }
    if (policy.hourMs !== null) this.#pruneGaps.run(nowMs - policy.hourMs);

    // 2. Budget: oldest raw first, then minutes, then hours.
    let budgetUnreachable = false;
    let info = this.info();
    if (policy.maxBytes === null) {
      this.#budgetMode = false;
    } else {
      const usage = info.usedBytes + info.walBytes;
      if (usage > policy.maxBytes * HIGH_WATER) this.#budgetMode = true;
      if (info.usedBytes <= policy.maxBytes * LOW_WATER) this.#budgetMode = false;
      if (this.#budgetMode && left > 0) {
        let freed = 0;
        for (const table of ['raw', 'minute', 'hour'] as const) {
          const n = this.#deleteOldestSlice(table, left);
          deleted[table] += n;
          left -= n;
          freed += n;
          if (n > 0 || left <= 0) break;
        }
        if (freed === 0) {
          budgetUnreachable = true;
          this.#budgetMode = false;
        }
      }
    }

    // 3. Give free pages back to the filesystem, a few at a time.
    let vacuumedPages = 0;
    info = this.info();
    if (info.autoVacuum === 'incremental' && info.freelistCount > 0) {
      this.#db.pragma(`incremental_vacuum(${Math.max(1, Math.floor(vacuumPages))})`);
      const after = this.#db.pragma('freelist_count', { simple: true }) as number;
      vacuumedPages = info.freelistCount - after;
    }

    // 4. Keep the WAL bounded: a long-lived reader can hold back automatic checkpoints.
    const totalDeleted = deleted.raw + deleted.minute + deleted.hour + deleted.day;
    let checkpointed = false;
    const walBytes = fileSize(`${this.#path}-wal`);
    // Under a budget the WAL counts too: keep it to a tenth of the budget.
    const walLimit =
      policy.maxBytes === null ? this.#walLimitBytes : Math.min(this.#walLimitBytes, policy.maxBytes / 10);
    if (walBytes > walLimit || totalDeleted > 0 || vacuumedPages > 0) {
      const mode = walBytes > walLimit ? 'TRUNCATE' : 'PASSIVE';
      const [result] = this.#db.pragma(`wal_checkpoint(${mode})`) as { busy: number }[];
      checkpointed = result !== undefined && result.busy === 0;
    }

    return {
      deleted,
      sealed,
      vacuumedPages,
      checkpointed,
      done: totalDeleted === 0 && vacuumedPages === 0 && !this.#budgetMode,
      budgetUnreachable,
      info: this.info(),
    };
  }

  #channels(): number[] {
    return this.#db.prepare('SELECT id FROM channels ORDER BY id').pluck().all() as number[];
  }

  /** The cutoff for one channel: raw readings still needed by open rollup buckets stay. */
  #cutoff(table: Table, channelId: number, cutoffMs: number): number {
    if (table !== 'raw' || this.#rollups === null) return cutoffMs;
    return Math.min(cutoffMs, this.#rollups.prunableBeforeMs(channelId));
  }

  /** Deletes rows older than `cutoffMs` (per channel, guarded), at most `limit`. */
  #deleteBefore(table: Table, cutoffMs: number, limit: number): number {
    let deleted = 0;
    for (const channelId of this.#channels()) {
      if (deleted >= limit) break;
      deleted += this.#deleteChannelBefore(
        table,
        channelId,
        this.#cutoff(table, channelId, cutoffMs),
        limit - deleted,
      );
    }
    return deleted;
  }

  #deleteChannelBefore(table: Table, channelId: number, cutoffMs: number, limit: number): number {
    if (!Number.isFinite(cutoffMs)) return 0;
    const s = this.#tables[table];
    const oldest = s.oldest.get(channelId) as number | undefined;
    if (oldest === undefined || oldest >= cutoffMs) return 0;
    // Rows at or after the limit-th oldest stay for the next step.
    const nth = s.nth.get(channelId, cutoffMs, limit) as number | undefined;
    const upTo = nth === undefined ? cutoffMs : Math.min(cutoffMs, nth);
    return s.remove.run(channelId, upTo).changes;
  }

  /** Budget: deletes the oldest slice of `table` across channels (at most `limit` rows). */
  #deleteOldestSlice(table: Table, limit: number): number {
    const channels = this.#channels();
    let oldest = Number.POSITIVE_INFINITY;
    for (const id of channels) {
      const t = this.#tables[table].oldest.get(id) as number | undefined;
      // Only rows this table may lose: for raw, those no open bucket still needs.
      if (t !== undefined && t < this.#cutoff(table, id, Number.POSITIVE_INFINITY))
        oldest = Math.min(oldest, t);
    }
    if (!Number.isFinite(oldest)) return 0;
    const sliceEnd = oldest + Math.max(1, BUDGET_SLICE_MS[table]);
    let deleted = 0;
    for (const id of channels) {
      if (deleted >= limit) break;
      deleted += this.#deleteChannelBefore(table, id, this.#cutoff(table, id, sliceEnd), limit - deleted);
    }
    return deleted;
  }
}
