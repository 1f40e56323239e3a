import { zoneCalendar } from './zone.js';

/**
 * Rollup tiers. Minute and hour buckets are fixed UTC intervals (every zone in use today is offset
 * from UTC by a multiple of 15 minutes, so minute buckets fit any local period, and hour buckets fit
 * every zone with whole-hour offsets). Day buckets are local days in the configured zone: 23 or 25
 * hours long on a DST change.
 */
export type Tier = 'minute' | 'hour' | 'day';

export const TIERS: readonly Tier[] = ['minute', 'hour', 'day'];

/** How a tier cuts time into buckets. */
export interface BucketCalendar {
  readonly tier: Tier;
  /** Start (UTC ms) of the bucket containing `ms`. */
  start(ms: number): number;
  /** End (exclusive) of the bucket that starts at `startMs`. */
  end(startMs: number): number;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

function fixed(tier: Tier, size: number): BucketCalendar {
  return {
    tier,
    start: (ms) => Math.floor(ms / size) * size,
    end: (startMs) => startMs + size,
  };
}

const MINUTE = fixed('minute', MINUTE_MS);
const HOUR = fixed('hour', HOUR_MS);

/** The calendar of `tier`; `zone` (IANA) only matters for days. */
export function bucketCalendar(tier: Tier, zone: string): BucketCalendar {
  if (tier === 'minute') return MINUTE;
  if (tier === 'hour') return HOUR;
  const calendar = zoneCalendar(zone);
  return {
    tier,
    start: (ms) => calendar.dayStart(ms),
    end: (startMs) => calendar.nextDayStart(startMs),
  };
}
