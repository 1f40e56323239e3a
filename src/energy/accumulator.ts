import { type CounterInterval, type CounterReading, counterInterval } from './counter.js';
import type { BucketCalendar, Tier } from './tiers.js';

/** One rollup bucket of one channel: aggregates of the readings in it and of the energy it holds. */
export interface Bucket {
  readonly tier: Tier;
  /** UTC ms, inclusive. */
  readonly startMs: number;
  /** UTC ms, exclusive. */
  readonly endMs: number;
  /** Readings polled inside the bucket. */
  readings: number;
  powerSumMw: number;
  /** null when no reading fell inside (energy can reach a bucket from an interval passing through). */
  powerMinMw: number | null;
  powerMaxMw: number | null;
  /** Energy of the counted intervals, split over buckets by time, Wh. */
  energyWh: number;
  /** Time covered by counted intervals (not gaps), ms. */
  coveredMs: number;
  /** Counter restarts seen by readings in the bucket. */
  resets: number;
}

/** Readings further apart than the gap limit: what the counter says about the time in between. */
export interface GapRecord {
  /** The last reading before the gap, UTC ms. */
  readonly fromMs: number;
  /** The first reading after it. */
  readonly toMs: number;
  /** The counter's increase across the gap (its value when it restarted: a lower bound), Wh. */
  readonly energyWh: number;
  readonly reset: boolean;
}

/** Where the accumulator hands what it completes. */
export interface FoldSink {
  /** A bucket that no later reading can change any more. */
  closed(bucket: Bucket): void;
  gap(gap: GapRecord): void;
  /** A reading older than the channel's latest whose bucket is already closed: its power only. */
  late(tier: Tier, startMs: number, endMs: number, reading: CounterReading): void;
}

export function emptyBucket(tier: Tier, startMs: number, endMs: number): Bucket {
  return {
    tier,
    startMs,
    endMs,
    readings: 0,
    powerSumMw: 0,
    powerMinMw: null,
    powerMaxMw: null,
    energyWh: 0,
    coveredMs: 0,
    resets: 0,
  };
}

function addPower(bucket: Bucket, powerMw: number): void {
  bucket.readings++;
  bucket.powerSumMw += powerMw;
  bucket.powerMinMw = bucket.powerMinMw === null ? powerMw : Math.min(bucket.powerMinMw, powerMw);
  bucket.powerMaxMw = bucket.powerMaxMw === null ? powerMw : Math.max(bucket.powerMaxMw, powerMw);
}

export type AddOutcome = 'added' | 'duplicate' | 'late';

/**
 * Folds one channel's readings, in time order, into buckets of several tiers at once. Each tier has
 * one open bucket (the one the latest reading is in); a bucket closes when time moves past it, and is
 * then complete: later intervals start at a later reading, so they never reach back into it.
 *
 * `floors` say where each tier's stored rows end: readings and energy before a tier's floor are
 * already in its closed buckets and are skipped for that tier (they still link the counter chain).
 */
export class ChannelAccumulator {
  readonly #calendars: readonly BucketCalendar[];
  readonly #floors: number[];
  readonly #open: (Bucket | null)[];
  readonly #gapLimitMs: number;
  #last: CounterReading | null;

  constructor(
    calendars: readonly BucketCalendar[],
    floors: readonly number[],
    gapLimitMs: number,
    last: CounterReading | null = null,
  ) {
    this.#calendars = calendars;
    this.#floors = calendars.map((_, i) => floors[i] ?? Number.NEGATIVE_INFINITY);
    this.#open = calendars.map(() => null);
    this.#gapLimitMs = gapLimitMs;
    this.#last = last;
  }

  /** The latest reading folded in. */
  get last(): CounterReading | null {
    return this.#last;
  }

  /** The open (incomplete) bucket of tier number `index`, if any. */
  open(index: number): Bucket | null {
    return this.#open[index] ?? null;
  }

  /** Everything before this instant is in closed buckets of every tier. */
  safeBeforeMs(): number {
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.#calendars.length; i++) {
      const open = this.#open[i];
      min = Math.min(min, open === null || open === undefined ? (this.#floors[i] as number) : open.startMs);
    }
    return min;
  }

  add(reading: CounterReading, sink: FoldSink): AddOutcome {
    const last = this.#last;
    if (last !== null && reading.tsMs <= last.tsMs) {
      if (reading.tsMs === last.tsMs) return 'duplicate';
      this.#late(reading, sink);
      return 'late';
    }
    const interval = last === null ? null : counterInterval(last, reading, this.#gapLimitMs);
    if (interval?.gap === true) {
      sink.gap({
        fromMs: interval.fromMs,
        toMs: interval.toMs,
        energyWh: interval.energyWh,
        reset: interval.reset,
      });
    }
    for (let i = 0; i < this.#calendars.length; i++) {
      const floor = this.#floors[i] as number;
      if (reading.tsMs < floor) continue;
      if (interval !== null && !interval.gap)
        this.#spread(i, interval, Math.max(interval.fromMs, floor), sink);
      const bucket = this.#bucketAt(i, reading.tsMs, sink);
      addPower(bucket, reading.powerMw);
      if (interval?.reset === true) bucket.resets++;
    }
    this.#last = reading;
    return 'added';
  }

  /**
   * Closes the open buckets that end by `nowMs` when the channel has been silent for longer than the
   * gap limit: any later reading starts a gap, so nothing can reach them any more. Returns how many.
   */
  seal(nowMs: number, sink: FoldSink): number {
    const last = this.#last;
    if (last === null || nowMs - last.tsMs <= this.#gapLimitMs) return 0;
    let sealed = 0;
    for (let i = 0; i < this.#calendars.length; i++) {
      const open = this.#open[i];
      if (open === null || open === undefined || open.endMs > nowMs) continue;
      sink.closed(open);
      this.#open[i] = null;
      this.#floors[i] = open.endMs;
      sealed++;
    }
    return sealed;
  }

  /** Splits a counted interval's energy and time over the buckets it passes through, from `fromMs`. */
  #spread(index: number, interval: CounterInterval, fromMs: number, sink: FoldSink): void {
    const duration = interval.toMs - interval.fromMs;
    let t = fromMs;
    while (t < interval.toMs) {
      const bucket = this.#bucketAt(index, t, sink);
      const segmentEnd = Math.min(interval.toMs, bucket.endMs);
      const share = segmentEnd - t;
      bucket.energyWh += (interval.energyWh * share) / duration;
      bucket.coveredMs += share;
      t = segmentEnd;
    }
  }

  /** The bucket of tier `index` containing `ms` (time only moves forward here): opens it, closing the previous. */
  #bucketAt(index: number, ms: number, sink: FoldSink): Bucket {
    const open = this.#open[index];
    if (open !== null && open !== undefined) {
      if (ms >= open.startMs && ms < open.endMs) return open;
      sink.closed(open);
    }
    const calendar = this.#calendars[index] as BucketCalendar;
    const start = calendar.start(ms);
    const bucket = emptyBucket(calendar.tier, start, calendar.end(start));
    this.#open[index] = bucket;
    return bucket;
  }

  #late(reading: CounterReading, sink: FoldSink): void {
    for (let i = 0; i < this.#calendars.length; i++) {
      const calendar = this.#calendars[i] as BucketCalendar;
      const open = this.#open[i];
      if (open !== null && open !== undefined && reading.tsMs >= open.startMs && reading.tsMs < open.endMs) {
        addPower(open, reading.powerMw);
        continue;
      }
      const start = calendar.start(reading.tsMs);
      sink.late(calendar.tier, start, calendar.end(start), reading);
    }
  }
}
