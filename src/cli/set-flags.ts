import { UsageError } from './exit-codes.js';

/** Turns `--set key.path=value` flags into overrides. */
export function parseSetFlags(values: readonly string[]): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const item of values) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set expects key.path=value, got '${item}'`);
    overrides[item.slice(0, eq).trim()] = item.slice(eq + 1);
  }
  return overrides;
}
