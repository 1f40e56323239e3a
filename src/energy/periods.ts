import type { GapRecord } from './accumulator.js';
import { zoneCalendar } from './zone.js';

/** Reporting periods of the `energy` command: local days or local months. */
export type PeriodKind = 'day' | 'month';

/** Local days or months of one zone. */
export class PeriodCalendar {
  readonly #calendar;

  constructor(
    readonly kind: PeriodKind,
    readonly zone: string,
  ) {
    this.#calendar = zoneCalendar(zone);
  }

  start(ms: number): number {
    return this.kind === 'day' ? this.#calendar.dayStart(ms) : this.#calendar.monthStart(ms);
  }

  end(startMs: number): number {
    return this.kind === 'day'
      ? this.#calendar.nextDayStart(startMs)
      : this.#calendar.nextMonthStart(startMs);
  }

  /** '2026-11-26' for a day, '2026-11' for a month. */
  label(startMs: number): string {
    return this.kind === 'day' ? this.#calendar.formatDay(startMs) : this.#calendar.formatMonth(startMs);
  }

  /** Period starts from the one containing `fromMs` up to (excluding) `toMs`. */
  starts(fromMs: number, toMs: number): number[] {
    const out: number[] = [];
    for (let s = this.start(fromMs); s < toMs; s = this.end(s)) out.push(s);
    return out;
  }
}

/** What a period needs from a rollup bucket. */
export interface BucketTotals {
  readonly startMs: number;
  readonly energyWh: number;
  readonly coveredMs: number;
  readonly readings: number;
  readonly resets: number;
}

export interface PeriodGap extends GapRecord {
  /**
   * The gap lies inside this one period: the counter says how much was used in it (only not when),
   * so that energy counts towards the period. A gap across a period boundary counts in neither.
   */
  readonly attributed: boolean;
}

export interface PeriodEnergy {
  readonly label: string;
  readonly startMs: number;
  readonly endMs: number;
  /** Counted intervals plus the gaps inside the period, Wh. */
  energyWh: number;
  /** Time covered by counted intervals, ms. */
  coveredMs: number;
  readings: number;
  resets: number;
  readonly gaps: PeriodGap[];
}

/**
 * Sums one channel's buckets into periods (a bucket belongs to the period its start falls in; the
 * caller picks a tier whose buckets do not straddle period boundaries) and places its gaps. Only
 * periods in [fromMs, toMs) that hold some data are returned, oldest first.
 */
export function summarisePeriods(
  buckets: Iterable<BucketTotals>,
  gaps: readonly GapRecord[],
  calendar: PeriodCalendar,
  fromMs: number,
  toMs: number,
): PeriodEnergy[] {
  const periods = new Map<number, PeriodEnergy>();
  const periodAt = (ms: number): PeriodEnergy => {
    const start = calendar.start(ms);
    let period = periods.get(start);
    if (period === undefined) {
      period = {
        label: calendar.label(start),
        startMs: start,
        endMs: calendar.end(start),
        energyWh: 0,
        coveredMs: 0,
        readings: 0,
        resets: 0,
        gaps: [],
      };
      periods.set(start, period);
    }
    return period;
  };
  for (const bucket of buckets) {
    if (bucket.startMs < fromMs || bucket.startMs >= toMs) continue;
    const period = periodAt(bucket.startMs);
    period.energyWh += bucket.energyWh;
    period.coveredMs += bucket.coveredMs;
    period.readings += bucket.readings;
    period.resets += bucket.resets;
  }
  for (const gap of gaps) {
    if (gap.toMs <= fromMs || gap.fromMs >= toMs) continue;
    const first = calendar.start(gap.fromMs);
    const inside = gap.toMs <= calendar.end(first);
    if (inside) {
      if (first < fromMs) continue;
      const period = periodAt(gap.fromMs);
      period.energyWh += gap.energyWh;
      period.gaps.push({ ...gap, attributed: true });
      continue;
    }
    for (let s = Math.max(first, calendar.start(fromMs)); s < gap.toMs && s < toMs; s = calendar.end(s)) {
      if (s < fromMs) continue;
      periodAt(s).gaps.push({ ...gap, attributed: false });
    }
  }
  return [...periods.values()].sort((a, b) => a.startMs - b.startMs);
}
