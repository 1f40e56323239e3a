/**
 * Rollups of the readings: per channel, minute, hour and day buckets of energy (from the counter, see
 * src/energy) and power (count, sum, min, max), maintained by the writer worker as batches commit.
 *
 * Invariant: a stored rollup row is a closed, complete bucket. The open bucket of each tier lives in
 * memory and is written, in the batch's transaction, when time moves past it. At start (and after a
 * transaction rolled back) the open buckets are rebuilt from the raw readings after the last stored
 * row, so nothing depends on memory surviving a crash. Readers do the same on their own connection:
 * stored rows plus the raw tail (see rollup-reader.ts).
 */

import type { Statement } from 'better-sqlite3';
import {
  type Bucket,
  type BucketCalendar,
  bucketCalendar,
  ChannelAccumulator,
  type CounterReading,
  type FoldSink,
  type GapRecord,
  TIERS,
  type Tier,
} from '../../../energy/index.js';
import type { Db } from '../connection.js';

export interface RollupSettings {
  /** IANA zone of the day tier. */
  readonly timeZone: string;
  /** Readings further apart than this form a gap. */
  readonly gapLimitMs: number;
}

/** Rows per multi-row insert of rollup buckets. */
const MANY = 64;

function bucketArgs(channelId: number, b: Bucket): (number | null)[] {
  return [
    channelId,
    b.startMs,
    b.readings,
    b.powerSumMw,
    b.powerMinMw,
    b.powerMaxMw,
    Math.round(b.energyWh * 1000),
    b.coveredMs,
    b.resets,
  ];
}

/** Raw readings fetched per query while rebuilding open buckets. */
const READING_PAGE = 4096;

export const TIER_TABLES: Readonly<Record<Tier, string>> = {
  minute: 'rollup_minute',
  hour: 'rollup_hour',
  day: 'rollup_day',
};

/** [bucket_ms, readings, power_sum_mw, power_min_mw, power_max_mw, energy_mwh, covered_ms, resets] */
export type RollupRow = [number, number, number, number | null, number | null, number, number, number];

/** A stored row as a Bucket (energy back in Wh). */
export function bucketFromRow(calendar: BucketCalendar, row: RollupRow): Bucket {
  const [startMs, readings, powerSumMw, powerMinMw, powerMaxMw, energyMwh, coveredMs, resets] = row;
  return {
    tier: calendar.tier,
    startMs,
    endMs: calendar.end(startMs),
    readings,
    powerSumMw,
    powerMinMw,
    powerMaxMw,
    energyWh: energyMwh / 1000,
    coveredMs,
    resets,
  };
}

/** Prepared statements of the rollup tables on one connection (the writer's or a reader's). */
export class RollupQueries {
  readonly #latest: Record<Tier, Statement<unknown[]>>;
  readonly #rows: Record<Tier, Statement<unknown[]>>;
  readonly #upsert: Record<Tier, Statement<unknown[]>>;
  /** The same for MANY rows at once: one statement run instead of MANY. */
  readonly #upsertMany: Record<Tier, Statement<unknown[]>>;
  readonly #prev;
  readonly #from;
  readonly #gaps;
  readonly #insertGap;

  constructor(readonly db: Db) {
    const each = (sql: (table: string) => string) =>
      Object.fromEntries(TIERS.map((tier) => [tier, db.prepare(sql(TIER_TABLES[tier]))])) as Record<
        Tier,
        Statement<unknown[]>
      >;
    this.#latest = each(
      (t) => `SELECT bucket_ms FROM ${t} WHERE channel_id = ? ORDER BY bucket_ms DESC LIMIT 1`,
    );
    this.#rows = each(
      (
        t,
      ) => `SELECT bucket_ms, readings, power_sum_mw, power_min_mw, power_max_mw, energy_mwh, covered_ms, resets
              FROM ${t} WHERE channel_id = ? AND bucket_ms >= ? AND bucket_ms < ? ORDER BY bucket_ms`,
    );
    // Additive: a row normally does not exist yet; a late reading or a rebuilt tier may add to one.
    // SQLite's two-argument min()/max() return NULL if either is NULL, hence the coalesce.
    const upsert = (table: string, rows: number) => `INSERT INTO ${table} (channel_id, bucket_ms, readings,
                power_sum_mw, power_min_mw, power_max_mw, energy_mwh, covered_ms, resets)
              VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
              ON CONFLICT (channel_id, bucket_ms) DO UPDATE SET
                readings = readings + excluded.readings,
                power_sum_mw = power_sum_mw + excluded.power_sum_mw,
                power_min_mw = coalesce(min(power_min_mw, excluded.power_min_mw), power_min_mw, excluded.power_min_mw),
                power_max_mw = coalesce(max(power_max_mw, excluded.power_max_mw), power_max_mw, excluded.power_max_mw),
                energy_mwh = energy_mwh + excluded.energy_mwh,
                covered_ms = covered_ms + excluded.covered_ms,
                resets = resets + excluded.resets`;
    this.#upsert = each((t) => upsert(t, 1));
    this.#upsertMany = each((t) => upsert(t, MANY));
    for (const tier of TIERS) {
      this.#latest[tier].pluck();
      this.#rows[tier].raw();
    }
    this.#prev = db
      .prepare<[number, number]>(
        'SELECT ts_ms, power_mw, total_wh FROM readings WHERE channel_id = ? AND ts_ms < ? ORDER BY ts_ms DESC LIMIT 1',
      )
      .raw();
    this.#from = db
      .prepare<[number, number, number, number]>(
        `SELECT ts_ms, power_mw, total_wh FROM readings WHERE channel_id = ? AND ts_ms >= ? AND ts_ms < ?
         ORDER BY ts_ms LIMIT ?`,
      )
      .raw();
    this.#gaps = db
      .prepare<[number, number, number]>(
        `SELECT start_ms, end_ms, energy_mwh, reset FROM energy_gaps
         WHERE channel_id = ? AND end_ms > ? AND start_ms < ? ORDER BY start_ms`,
      )
      .raw();
    this.#insertGap = db.prepare<[number, number, number, number, number]>(
      `INSERT INTO energy_gaps (channel_id, start_ms, end_ms, energy_mwh, reset) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (channel_id, start_ms) DO UPDATE SET end_ms = excluded.end_ms,
         energy_mwh = excluded.energy_mwh, reset = excluded.reset`,
    );
  }

  /** Where each tier's stored rows end for a channel (-Infinity when it has none). */
  floors(channelId: number, calendars: readonly BucketCalendar[]): number[] {
    return calendars.map((calendar) => {
      const start = this.#latest[calendar.tier].get(channelId) as number | undefined;
      return start === undefined ? Number.NEGATIVE_INFINITY : calendar.end(start);
    });
  }

  /** The last reading before `beforeMs`. */
  prevReading(channelId: number, beforeMs: number): CounterReading | null {
    const row = this.#prev.get(channelId, beforeMs) as [number, number, number] | undefined;
    return row === undefined ? null : { tsMs: row[0], powerMw: row[1], totalWh: row[2] };
  }

  /**
   * Raw readings [ts_ms, power_mw, total_wh] in [fromMs, toMs), oldest first, in pages: the caller
   * may write between pages (better-sqlite3 allows no other statement while an iterator is open).
   */
  *readings(
    channelId: number,
    fromMs: number,
    toMs: number,
    page = READING_PAGE,
  ): Generator<[number, number, number]> {
    let from = fromMs;
    for (;;) {
      const rows = this.#from.all(channelId, from, toMs, page) as [number, number, number][];
      yield* rows;
      if (rows.length < page) return;
      from = (rows[rows.length - 1] as [number, number, number])[0] + 1;
    }
  }

  /** Stored rows of a tier with bucket start in [fromMs, toMs), oldest first (iterate: no writes meanwhile). */
  rows(tier: Tier, channelId: number, fromMs: number, toMs: number): IterableIterator<RollupRow> {
    return this.#rows[tier].iterate(channelId, fromMs, toMs) as IterableIterator<RollupRow>;
  }

  /** Like rows(), as an array. */
  allRows(tier: Tier, channelId: number, fromMs: number, toMs: number): RollupRow[] {
    return this.#rows[tier].all(channelId, fromMs, toMs) as RollupRow[];
  }

  /** Stored gaps overlapping [fromMs, toMs). */
  gaps(channelId: number, fromMs: number, toMs: number): GapRecord[] {
    return (this.#gaps.all(channelId, fromMs, toMs) as [number, number, number, number][]).map(
      ([start, end, mwh, reset]) => ({ fromMs: start, toMs: end, energyWh: mwh / 1000, reset: reset !== 0 }),
    );
  }

  /** Writes many buckets, MANY rows a statement where it can. */
  writeBuckets(rows: readonly { readonly channelId: number; readonly bucket: Bucket }[]): void {
    let i = 0;
    while (i < rows.length) {
      const tier = (rows[i] as { bucket: Bucket }).bucket.tier;
      let j = i;
      while (j < rows.length && (rows[j] as { bucket: Bucket }).bucket.tier === tier) j++;
      for (; i + MANY <= j; i += MANY) {
        const args: (number | null)[] = [];
        for (let k = i; k < i + MANY; k++) {
          const { channelId, bucket } = rows[k] as { channelId: number; bucket: Bucket };
          args.push(...bucketArgs(channelId, bucket));
        }
        this.#upsertMany[tier].run(args);
      }
      for (; i < j; i++) {
        const { channelId, bucket } = rows[i] as { channelId: number; bucket: Bucket };
        this.writeBucket(channelId, bucket);
      }
    }
  }

  writeBucket(channelId: number, b: Bucket): void {
    this.#upsert[b.tier].run(...bucketArgs(channelId, b));
  }

  writeGap(channelId: number, gap: GapRecord): void {
    this.#insertGap.run(channelId, gap.fromMs, gap.toMs, Math.round(gap.energyWh * 1000), gap.reset ? 1 : 0);
  }
}

/**
 * Rebuilds a channel's open buckets: from the raw readings after its stored rows, up to (excluding)
 * `toMs`. Buckets that close on the way go to `sink`; the open ones stay in the returned accumulator.
 */
export function foldTail(
  queries: RollupQueries,
  channelId: number,
  calendars: readonly BucketCalendar[],
  gapLimitMs: number,
  sink: FoldSink,
  toMs: number = Number.MAX_SAFE_INTEGER,
): ChannelAccumulator {
  const floors = queries.floors(channelId, calendars);
  const start = Math.min(...floors);
  const from = Number.isFinite(start) ? start : Number.MIN_SAFE_INTEGER;
  const prev = Number.isFinite(start) ? queries.prevReading(channelId, start) : null;
  const acc = new ChannelAccumulator(calendars, floors, gapLimitMs, prev);
  for (const [tsMs, powerMw, totalWh] of queries.readings(channelId, from, toMs)) {
    acc.add({ tsMs, powerMw, totalWh }, sink);
  }
  return acc;
}

interface ChannelState {
  readonly acc: ChannelAccumulator;
  readonly sink: FoldSink;
}

export interface RollupInitReport {
  readonly channels: number;
  /** Buckets written while catching up (rollups newly enabled, or a database from before them). */
  readonly bucketsWritten: number;
  /** The day tier was rebuilt from the hour tier because the time zone changed. */
  readonly dayZoneChangedFrom: string | null;
}

/**
 * Closed buckets wait in memory and are written together, in the transaction of the batch that
 * reaches this many, or that comes this long after the oldest of them: one write of many rows
 * touches far fewer pages than a few rows in every batch. A crash loses nothing: buckets not yet
 * written are rebuilt from raw readings like open ones.
 */
const PENDING_ROWS = 8192;
const PENDING_MS = 60_000;

/** The writer worker's rollups: call add() for every newly stored reading, inside the batch's transaction. */
export class Rollups {
  readonly #db: Db;
  readonly #settings: RollupSettings;
  readonly #calendars: readonly BucketCalendar[];
  readonly #queries: RollupQueries;
  readonly #states = new Map<number, ChannelState>();
  /** Channels changed in the current transaction: dropped (and rebuilt lazily) if it rolls back. */
  #touched: Set<number> | null = null;
  /** Closed buckets not written yet, oldest first per channel. */
  #pending: { readonly channelId: number; readonly bucket: Bucket }[] = [];
  #pendingSinceMs = 0;
  #written = 0;

  constructor(db: Db, settings: RollupSettings) {
    this.#db = db;
    this.#settings = settings;
    this.#calendars = TIERS.map((tier) => bucketCalendar(tier, settings.timeZone));
    this.#queries = new RollupQueries(db);
  }

  get settings(): RollupSettings {
    return this.#settings;
  }

  /** Rows written since start (closed buckets). */
  get bucketsWritten(): number {
    return this.#written;
  }

  /** Checks the day tier's zone (rebuilding it after a change) and rebuilds every channel's open buckets. */
  init(): RollupInitReport {
    const before = this.#written;
    const previousZone = this.#dayZone();
    let changedFrom: string | null = null;
    if (previousZone === null) {
      this.#setDayZone();
    } else if (previousZone !== this.#settings.timeZone) {
      changedFrom = previousZone;
      this.#db.transaction(() => {
        this.#rebuildDayTier();
        this.#setDayZone();
      })();
    }
    const ids = this.#db.prepare('SELECT id FROM channels ORDER BY id').pluck().all() as number[];
    for (const id of ids) {
      // One transaction per channel: catching up on a big database writes in bounded steps.
      this.#db.transaction(() => {
        this.#states.set(id, this.#recover(id));
        this.#writePending();
      })();
    }
    return { channels: ids.length, bucketsWritten: this.#written - before, dayZoneChangedFrom: changedFrom };
  }

  begin(): void {
    this.#touched = new Set();
  }

  commit(): void {
    this.#touched = null;
  }

  /**
   * The transaction rolled back: what it wrote is gone, so the channels it touched (or whose
   * buckets it wrote) are rebuilt from the database later; their unwritten buckets go too.
   */
  rollback(): void {
    const touched = this.#touched;
    this.#touched = null;
    if (touched === null) return;
    for (const id of touched) this.#states.delete(id);
    this.#pending = this.#pending.filter((p) => !touched.has(p.channelId));
  }

  /** A reading this transaction newly stored. */
  add(channelId: number, tsMs: number, powerMw: number, totalWh: number): void {
    let state = this.#states.get(channelId);
    this.#touched?.add(channelId);
    if (state === undefined) {
      // New channel, or rebuilt after a rollback: the raw readings (this one included, it is
      // already inserted in this transaction) are the truth.
      state = this.#recover(channelId);
      this.#states.set(channelId, state);
      const last = state.acc.last;
      if (last !== null && tsMs <= last.tsMs) return;
    }
    state.acc.add({ tsMs, powerMw, totalWh }, state.sink);
  }

  /** Writes the closed buckets waiting in memory (its own transaction unless inside one). */
  flush(): void {
    if (this.#pending.length > 0) this.#db.transaction(() => this.#writePending())();
  }

  /** Closes the open buckets of channels silent for longer than the gap limit (see ChannelAccumulator.seal). */
  seal(nowMs: number): number {
    let sealed = 0;
    this.#db.transaction(() => {
      for (const state of this.#states.values()) sealed += state.acc.seal(nowMs, state.sink);
      this.#writePending();
    })();
    return sealed;
  }

  /**
   * Raw readings of the channel before this instant are no longer needed to rebuild its buckets.
   * Call after flush(): buckets waiting to be written still need theirs.
   */
  prunableBeforeMs(channelId: number): number {
    const state = this.#states.get(channelId);
    if (state === undefined) return Number.NEGATIVE_INFINITY;
    let safe = state.acc.safeBeforeMs();
    for (const p of this.#pending) if (p.channelId === channelId) safe = Math.min(safe, p.bucket.startMs);
    // Keep the reading that links the counter chain into the first open bucket.
    return Number.isFinite(safe) ? safe - this.#settings.gapLimitMs : safe;
  }

  #recover(channelId: number): ChannelState {
    const sink = this.#sinkFor(channelId);
    const acc = foldTail(this.#queries, channelId, this.#calendars, this.#settings.gapLimitMs, sink);
    return { acc, sink };
  }

  #sinkFor(channelId: number): FoldSink {
    const queries = this.#queries;
    return {
      closed: (bucket) => {
        if (this.#pending.length === 0) this.#pendingSinceMs = Date.now();
        this.#pending.push({ channelId, bucket });
        if (this.#pending.length >= PENDING_ROWS || Date.now() - this.#pendingSinceMs >= PENDING_MS) {
          this.#writePending();
        }
      },
      gap: (gap) => queries.writeGap(channelId, gap),
      late: (tier, startMs, endMs, reading) => {
        // Written at once; what waits goes first, so no stored row ever lies beyond a missing one.
        this.#writePending();
        queries.writeBucket(channelId, {
          tier,
          startMs,
          endMs,
          readings: 1,
          powerSumMw: reading.powerMw,
          powerMinMw: reading.powerMw,
          powerMaxMw: reading.powerMw,
          energyWh: 0,
          coveredMs: 0,
          resets: 0,
        });
      },
    };
  }

  /** Writes the waiting buckets in key order (inside the caller's transaction). */
  #writePending(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    // Plain code-unit order for the (ASCII) tier names: localeCompare would load ICU's collation
    // data into the writer's process (measured +2.6 MiB RSS) for an order nobody reads.
    pending.sort(
      (a, b) =>
        compareText(a.bucket.tier, b.bucket.tier) ||
        a.channelId - b.channelId ||
        a.bucket.startMs - b.bucket.startMs,
    );
    // Marked first: if a write fails, the rollback rebuilds all of them.
    for (const { channelId } of pending) this.#touched?.add(channelId);
    this.#queries.writeBuckets(pending);
    // Cleared only once written: a failed flush of its own keeps them for the next one.
    this.#pending = [];
    this.#written += pending.length;
  }

  #dayZone(): string | null {
    const value = this.#db.prepare("SELECT value FROM lifecycle_meta WHERE key = 'day_zone'").pluck().get() as
      | string
      | undefined;
    return value ?? null;
  }

  #setDayZone(): void {
    this.#db
      .prepare(
        `INSERT INTO lifecycle_meta (key, value) VALUES ('day_zone', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      )
      .run(this.#settings.timeZone);
  }

  /**
   * The zone changed: local days are different instants now. Days are rebuilt from the hour tier
   * (exact for zones with whole-hour offsets), keeping only days the hour tier covers completely;
   * the rest is rebuilt from raw readings by the recovery that follows.
   */
  #rebuildDayTier(): void {
    const db = this.#db;
    db.exec('DELETE FROM rollup_day');
    const hour = this.#calendars[TIERS.indexOf('hour')] as BucketCalendar;
    const day = this.#calendars[TIERS.indexOf('day')] as BucketCalendar;
    const ids = db.prepare('SELECT id FROM channels').pluck().all() as number[];
    for (const id of ids) {
      const [hourFloor] = this.#queries.floors(id, [hour]);
      if (hourFloor === undefined || !Number.isFinite(hourFloor)) continue;
      let current: Bucket | null = null;
      const flush = () => {
        if (current !== null && current.endMs <= hourFloor) this.#queries.writeBucket(id, current);
      };
      for (const row of this.#queries.allRows('hour', id, Number.MIN_SAFE_INTEGER, hourFloor)) {
        const b = bucketFromRow(hour, row);
        const start = day.start(b.startMs);
        if (current === null || current.startMs !== start) {
          flush();
          current = {
            tier: 'day',
            startMs: start,
            endMs: day.end(start),
            readings: 0,
            powerSumMw: 0,
            powerMinMw: null,
            powerMaxMw: null,
            energyWh: 0,
            coveredMs: 0,
            resets: 0,
          };
        }
        const c: Bucket = current;
        c.readings += b.readings;
        c.powerSumMw += b.powerSumMw;
        if (b.powerMinMw !== null)
          c.powerMinMw = c.powerMinMw === null ? b.powerMinMw : Math.min(c.powerMinMw, b.powerMinMw);
        if (b.powerMaxMw !== null)
          c.powerMaxMw = c.powerMaxMw === null ? b.powerMaxMw : Math.max(c.powerMaxMw, b.powerMaxMw);
        c.energyWh += b.energyWh;
        c.coveredMs += b.coveredMs;
        c.resets += b.resets;
      }
      flush();
    }
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
