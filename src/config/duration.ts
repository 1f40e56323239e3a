/** Durations as users write them: '500ms', '10s', '5m', '1h', '1d', '1h30m', or a plain number of seconds. */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const COMPOUND = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const PLAIN_SECONDS = /^\d+(?:\.\d+)?$/;

/** The accepted text forms (also exported into the JSON Schema): seconds, or number+unit groups. */
export const DURATION_PATTERN = /^\s*(?:\d+(?:\.\d+)?|(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+)\s*$/;

/** What every duration error message says is allowed. */
export const DURATION_FORMS =
  "a duration such as '500ms', '10s', '5m', '1h', '1d' (or a plain number of seconds)";

/** 24 days: just under the longest timer Node can arm (2^31-1 ms, about 24.8 days). */
export const MAX_DURATION_MS = 24 * 86_400_000;

/**
 * Parses a duration into whole milliseconds (rounded). Numbers and numeric strings are seconds.
 * Returns undefined for anything else (negative numbers, garbage, NaN, Infinity).
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (PLAIN_SECONDS.test(text)) return Math.round(Number(text) * 1000);
  if (!COMPOUND.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(PART)) {
    const unit = UNIT_MS[match[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(match[1]) * unit;
  }
  return Math.round(total);
}

/** Formats milliseconds back into the shortest exact human form ('1500ms', '10s', '5m', '1h', '1d'). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
