/**
 * POSIX TZ strings as TZif footers carry them (RFC 8536 section 3.3): 'CET-1CEST,M3.5.0,M10.5.0/3',
 * '<+0330>-3:30', '<-04>4<-03>,M9.1.6/24,M4.1.6/24'. They give a zone's rule for every year after its
 * last listed transition. Written from POSIX and the RFC; no tz code was copied.
 */

/** A day of the year a DST change happens on. */
type DayRule =
  /** Jn: day 1..365, February 29 never counted. */
  | { readonly kind: 'julian'; readonly day: number }
  /** n: day 0..365, February 29 counted in leap years. */
  | { readonly kind: 'ordinal'; readonly day: number }
  /** Mm.w.d: weekday d (0 = Sunday) of week w (5 = the last) of month m. */
  | { readonly kind: 'month'; readonly month: number; readonly week: number; readonly weekday: number };

interface Change {
  readonly day: DayRule;
  /** Seconds after local midnight, in the time in force before the change; may be negative or > 24 h. */
  readonly time: number;
}

export interface PosixZone {
  /** Standard local time minus UTC, in seconds. */
  readonly stdOffset: number;
  readonly dst?: {
    readonly offset: number;
    readonly start: Change;
    readonly end: Change;
  };
}

export class PosixTzError extends Error {
  constructor(text: string, reason: string) {
    super(`bad POSIX TZ string '${text}': ${reason}`);
    this.name = 'PosixTzError';
  }
}

/** Used by POSIX when a DST zone names no rule; TZif footers always name one. */
const DEFAULT_RULES = 'M3.2.0,M11.1.0';

class Reader {
  #at = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.#at >= this.text.length;
  }

  peek(): string {
    return this.text[this.#at] ?? '';
  }

  take(c: string): boolean {
    if (this.peek() !== c) return false;
    this.#at++;
    return true;
  }

  fail(reason: string): never {
    throw new PosixTzError(this.text, reason);
  }

  /** A zone abbreviation: three or more letters, or anything but '>' between angle brackets. */
  name(): string {
    const start = this.#at;
    if (this.take('<')) {
      const close = this.text.indexOf('>', this.#at);
      if (close < 0) this.fail('unclosed <');
      this.#at = close + 1;
      return this.text.slice(start + 1, close);
    }
    while (/[A-Za-z]/.test(this.peek())) this.#at++;
    if (this.#at - start < 3) this.fail('zone name shorter than 3 letters');
    return this.text.slice(start, this.#at);
  }

  number(): number {
    const start = this.#at;
    while (/[0-9]/.test(this.peek())) this.#at++;
    if (start === this.#at) this.fail(`digit expected at ${start}`);
    return Number(this.text.slice(start, this.#at));
  }

  /** [+-]hh[:mm[:ss]] in seconds, sign as written. */
  hms(): number {
    const sign = this.take('-') ? -1 : 1;
    if (sign > 0) this.take('+');
    let seconds = this.number() * 3600;
    if (this.take(':')) {
      seconds += this.number() * 60;
      if (this.take(':')) seconds += this.number();
    }
    return sign * seconds;
  }

  day(): DayRule {
    if (this.take('J')) {
      const day = this.number();
      if (day < 1 || day > 365) this.fail('Jn day out of 1..365');
      return { kind: 'julian', day };
    }
    if (this.take('M')) {
      const month = this.number();
      if (!this.take('.')) this.fail('. expected');
      const week = this.number();
      if (!this.take('.')) this.fail('. expected');
      const weekday = this.number();
      if (month < 1 || month > 12 || week < 1 || week > 5 || weekday > 6) this.fail('Mm.w.d out of range');
      return { kind: 'month', month, week, weekday };
    }
    const day = this.number();
    if (day > 365) this.fail('n day out of 0..365');
    return { kind: 'ordinal', day };
  }

  change(): Change {
    const day = this.day();
    return { day, time: this.take('/') ? this.hms() : 7200 };
  }
}

export function parsePosixTz(text: string): PosixZone {
  const r = new Reader(text);
  r.name();
  // POSIX offsets count west of Greenwich ('CET-1' is UTC+1): flip them to local minus UTC.
  const stdOffset = westToEast(r.hms());
  if (r.done) return { stdOffset };
  r.name();
  const offset = r.done || r.peek() === ',' ? stdOffset + 3600 : westToEast(r.hms());
  const rules = r.done ? new Reader(`,${DEFAULT_RULES}`) : r;
  if (!rules.take(',')) rules.fail(', expected before the DST start');
  const start = rules.change();
  if (!rules.take(',')) rules.fail(', expected before the DST end');
  const end = rules.change();
  if (!rules.done) rules.fail('trailing characters');
  return { stdOffset, dst: { offset, start, end } };
}

function westToEast(seconds: number): number {
  return seconds === 0 ? 0 : -seconds;
}

const DAY_S = 86_400;

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** UTC seconds of local midnight of `rule`'s day in `year`, counted as if local time were UTC. */
function dayStartSeconds(rule: DayRule, year: number): number {
  const jan1 = Date.UTC(year, 0, 1) / 1000;
  switch (rule.kind) {
    case 'julian':
      return jan1 + (rule.day - 1 + (isLeap(year) && rule.day >= 60 ? 1 : 0)) * DAY_S;
    case 'ordinal':
      return jan1 + rule.day * DAY_S;
    case 'month': {
      const first = Date.UTC(year, rule.month - 1, 1);
      const firstWeekday = new Date(first).getUTCDay();
      let day = 1 + ((rule.weekday - firstWeekday + 7) % 7) + (rule.week - 1) * 7;
      const length = new Date(Date.UTC(year, rule.month, 0)).getUTCDate();
      while (day > length) day -= 7;
      return first / 1000 + (day - 1) * DAY_S;
    }
  }
}

/** Local time minus UTC, in seconds, at UTC second `t` under `zone`'s rule. */
export function posixOffsetAt(zone: PosixZone, t: number): number {
  const dst = zone.dst;
  if (dst === undefined) return zone.stdOffset;
  // The change nearest before `t`, looking at the neighbouring years too: a southern zone's DST
  // spans New Year, and a change written as 'J365/25' falls in the next year.
  const year = new Date((t + zone.stdOffset) * 1000).getUTCFullYear();
  let bestAt = Number.NEGATIVE_INFINITY;
  let offset = zone.stdOffset;
  for (let y = year - 1; y <= year + 1; y++) {
    // A start is written in standard time, an end in daylight time; at equal instants the later
    // year's change wins (year-round DST writes its end and the next start at the same instant).
    const startAt = dayStartSeconds(dst.start.day, y) + dst.start.time - zone.stdOffset;
    const endAt = dayStartSeconds(dst.end.day, y) + dst.end.time - dst.offset;
    for (const [at, next] of [
      [startAt, dst.offset],
      [endAt, zone.stdOffset],
    ] as const) {
      if (at <= t && at >= bestAt) {
        bestAt = at;
        offset = next;
      }
    }
  }
  return offset;
}
