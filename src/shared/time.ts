import { UsageError } from './usage-error.js';

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Why year-month-day names no day of the calendar, or null when it is one. Date.parse rolls an
 * impossible day over into the next month (2026-02-30 becomes March 2): a typo must not silently
 * select other data.
 */
function impossibleDate(year: number, month: number, day: number): string | null {
  if (month < 1 || month > 12) return `month ${String(month).padStart(2, '0')} does not exist`;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (day < 1 || day > days) return `${year}-${String(month).padStart(2, '0')} has days 01 to ${days}`;
  return null;
}

/**
 * Rejects a range whose start is after its end (an empty range from equal bounds is allowed: from
 * is inclusive, to exclusive). `names` are how the caller calls the bounds (flags or parameters).
 */
export function checkTimeRange(
  fromMs: number | undefined,
  toMs: number | undefined,
  names: { readonly from: string; readonly to: string } = { from: '--from', to: '--to' },
): void {
  if (fromMs === undefined || toMs === undefined || fromMs <= toMs) return;
  throw new UsageError(
    `${names.from} (${new Date(fromMs).toISOString()}) is after ${names.to} (${new Date(toMs).toISOString()}); swap them`,
  );
}

/**
 * Parses a time given on the command line: ISO 8601 (`2026-11-26T14:00:00Z`, `2026-11-26` is UTC
 * midnight, as JavaScript reads a bare date), `now`, or a relative form such as `-24h`, `-30m`,
 * `-7d` (relative to `nowMs`). Returns UTC milliseconds.
 */
export function parseTime(text: string, nowMs: number, flag: string): number {
  const trimmed = text.trim();
  if (trimmed === 'now') return nowMs;
  const relative = /^([+-])(\d+(?:\.\d+)?)([smhdw])$/.exec(trimmed);
  if (relative) {
    const [, sign, amount, unit] = relative;
    const ms = Number(amount) * (UNIT_MS[unit ?? 's'] ?? 1000);
    return Math.round(sign === '-' ? nowMs - ms : nowMs + ms);
  }
  // Only strings that look like ISO 8601 dates: Date.parse accepts far more than users mean.
  const iso = /^(\d{4})-(\d{2})-(\d{2})([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.exec(trimmed);
  if (iso) {
    const impossible = impossibleDate(Number(iso[1]), Number(iso[2]), Number(iso[3]));
    if (impossible !== null) throw new UsageError(`${flag}: '${text}' is not a date: ${impossible}`);
    const ms = Date.parse(trimmed.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(
    `${flag}: cannot read '${text}' as a time; use ISO 8601 (2026-11-26T14:00:00Z), 'now', or a relative form like -24h, -30m, -7d`,
  );
}
