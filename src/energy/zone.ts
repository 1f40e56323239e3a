/**
 * Calendar arithmetic in an IANA time zone, from the system's zone database (see tzdb.ts; Intl only
 * for a zone with no zoneinfo file). A local day runs from one local midnight to the next, so it lasts
 * 23 or 25 hours on a DST change; where a midnight does not exist (a zone that springs forward at
 * 00:00) the day starts at the first instant whose local date is that day.
 */
import { isValidTimeZone, systemTimeZone, zoneOffsets } from './tzdb.js';
import type { ZoneOffsets } from './zone-offsets.js';

export { isValidTimeZone, systemTimeZone };

interface LocalParts {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

const HOUR_MS = 3_600_000;

/** One zone's calendar: offsets and caches. Get one with `zoneCalendar(zone)`. */
export class ZoneCalendar {
  readonly zone: string;
  readonly #offsets: ZoneOffsets;
  /** yyyymmdd → the UTC ms that day starts at. */
  readonly #dayStarts = new Map<number, number>();

  constructor(zone: string) {
    const offsets = zone.trim() === '' ? null : zoneOffsets(zone);
    if (offsets === null) throw new RangeError(`unknown time zone '${zone}'`);
    this.zone = zone;
    this.#offsets = offsets;
  }

  /** Local calendar fields of an instant. */
  parts(ms: number): LocalParts {
    const local = new Date(ms + this.#offsets.offsetMs(ms));
    return {
      year: local.getUTCFullYear(),
      month: local.getUTCMonth() + 1,
      day: local.getUTCDate(),
      hour: local.getUTCHours(),
      minute: local.getUTCMinutes(),
      second: local.getUTCSeconds(),
    };
  }

  /** Local time minus UTC at `ms`, in ms (whole seconds). */
  offsetMs(ms: number): number {
    return this.#offsets.offsetMs(ms);
  }

  /** yyyymmdd of the local date at `ms`. */
  dayKey(ms: number): number {
    const p = this.parts(ms);
    return p.year * 10_000 + p.month * 100 + p.day;
  }

  /** The instant local day (year, month 1-12, day) begins. Month and day may overflow (Date.UTC rules). */
  midnight(year: number, month: number, day: number): number {
    const naive = Date.UTC(year, month - 1, day);
    const norm = new Date(naive);
    const key = norm.getUTCFullYear() * 10_000 + (norm.getUTCMonth() + 1) * 100 + norm.getUTCDate();
    const cached = this.#dayStarts.get(key);
    if (cached !== undefined) return cached;
    let t = naive - this.offsetMs(naive);
    t = naive - this.offsetMs(t);
    if (!(this.dayKey(t) === key && this.dayKey(t - 1) < key)) {
      // Midnight does not exist that day (or the guess fell on the wrong side of a change): the
      // first instant whose local date is `key`, by bisection over a window wide enough for any offset.
      let lo = naive - 30 * HOUR_MS;
      let hi = naive + 30 * HOUR_MS;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (this.dayKey(mid) >= key) hi = mid;
        else lo = mid;
      }
      t = hi;
    }
    this.#dayStarts.set(key, t);
    return t;
  }

  /** Start of the local day containing `ms`. */
  dayStart(ms: number): number {
    const p = this.parts(ms);
    const start = this.midnight(p.year, p.month, p.day);
    // A zone that falls back across midnight can give an instant two local dates; keep it monotone.
    return start <= ms ? start : this.midnight(p.year, p.month, p.day - 1);
  }

  /** Start of the local day after the one that starts at `dayStartMs`. */
  nextDayStart(dayStartMs: number): number {
    const p = this.parts(dayStartMs);
    return this.midnight(p.year, p.month, p.day + 1);
  }

  /** Start of the local month containing `ms`. */
  monthStart(ms: number): number {
    const p = this.parts(ms);
    return this.midnight(p.year, p.month, 1);
  }

  nextMonthStart(monthStartMs: number): number {
    const p = this.parts(monthStartMs);
    return this.midnight(p.year, p.month + 1, 1);
  }

  /** '2026-11-26': the local date at `ms`. */
  formatDay(ms: number): string {
    const p = this.parts(ms);
    return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
  }

  /** '2026-11': the local month at `ms`. */
  formatMonth(ms: number): string {
    const p = this.parts(ms);
    return `${p.year}-${pad(p.month)}`;
  }
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

const calendars = new Map<string, ZoneCalendar>();

/** A shared calendar for `zone` (throws RangeError for an unknown zone). */
export function zoneCalendar(zone: string): ZoneCalendar {
  let calendar = calendars.get(zone);
  if (calendar === undefined) {
    calendar = new ZoneCalendar(zone);
    calendars.set(zone, calendar);
  }
  return calendar;
}

/**
 * Reads a local date as users type it for a period: '2026-11-26' (that day's start) or '2026-11'
 * (that month's start), in `zone`. Returns null for anything else.
 */
export function parseLocalDate(text: string, zone: string): number | null {
  const match = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(text.trim());
  if (!match) return null;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = match[3] === undefined ? 1 : Number(match[3]);
  if (month < 1 || month > 12 || day < 1 || day > 31) return null;
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCMonth() !== month - 1) return null;
  return zoneCalendar(zone).midnight(year, month, day);
}
