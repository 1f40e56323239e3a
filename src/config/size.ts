/** Byte sizes and retention ages as users write them (the data-lifecycle keys). */

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1_000_000,
  mb: 1_000_000,
  mib: 1024 ** 2,
  g: 1_000_000_000,
  gb: 1_000_000_000,
  gib: 1024 ** 3,
  t: 1_000_000_000_000,
  tb: 1_000_000_000_000,
  tib: 1024 ** 4,
};

/** What every size error message says is allowed. */
export const SIZE_FORMS = "a size such as '500MB', '2GB', '1.5GiB' (or a plain number of bytes)";

export const SIZE_PATTERN = /^\s*\d+(?:\.\d+)?\s*(?:[kKmMgGtT](?:i?[bB])?|[bB])?\s*$/;

/** Parses a size into whole bytes; undefined for anything else. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!match) return undefined;
  const unit = SIZE_UNITS[(match[2] ?? '').toLowerCase() || 'b'];
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}

const AGE_UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/** What every retention-age error message says is allowed. */
export const AGE_FORMS = "a duration such as '30d', '52w', '1y' (365 days), or 'forever'";

export const AGE_PATTERN = /^\s*(?:forever|\d+(?:\.\d+)?|(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+)\s*$/;

/** The longest age accepted (longer is 'forever'). */
export const MAX_AGE_MS = 1000 * 365 * 86_400_000;

/**
 * A retention age in ms; null for 'forever'; undefined when unreadable. Plain numbers are seconds,
 * as for every duration.
 */
export function parseAge(value: unknown): number | null | undefined {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === 'forever') return null;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+$/.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g)) {
    const unit = AGE_UNIT_MS[match[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(match[1]) * unit;
  }
  return Math.round(total);
}
