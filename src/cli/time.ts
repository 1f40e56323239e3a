import { UsageError } from './exit-codes.js';

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

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
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(trimmed)) {
    const ms = Date.parse(trimmed.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(
    `${flag}: cannot read '${text}' as a time; use ISO 8601 (2026-11-26T14:00:00Z), 'now', or a relative form like -24h, -30m, -7d`,
  );
}
