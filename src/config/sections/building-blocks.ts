/**
 * What every section of the configuration schema is built from: keys with their reload tags,
 * numbers, durations, optional texts and paths, and the rules between keys.
 */

import { resolve } from 'node:path';
import * as z from 'zod';
import {
  DURATION_FORMS,
  DURATION_PATTERN,
  formatDuration,
  MAX_DURATION_MS,
  parseDuration,
} from '../duration.js';

/** `hot`: a SIGHUP reload applies the key. `restart`: the daemon must restart for a change to apply. */
export type Reload = 'hot' | 'restart';

export interface KeyInfo {
  readonly reload: Reload;
  /** Never logged, never echoed in errors; `redactConfig` replaces it. */
  readonly secret?: boolean;
}

/** Reload tags (and secrecy) of every leaf key, attached to the schema instance of that key. */
export const keyRegistry = z.registry<KeyInfo>();

export function key<T extends z.ZodType>(schema: T, description: string, info: KeyInfo): T {
  const described = schema.meta({ description });
  keyRegistry.add(described, info);
  return described;
}

export const HOT: KeyInfo = { reload: 'hot' };
export const RESTART: KeyInfo = { reload: 'restart' };

export function int(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return z.number().int().min(min).max(max);
}

function durationInput() {
  return z.union(
    [
      z.string().regex(DURATION_PATTERN, { message: `must be ${DURATION_FORMS}` }),
      z.number().nonnegative({ message: `must be ${DURATION_FORMS}` }),
    ],
    { error: `must be ${DURATION_FORMS}` },
  );
}

/** Milliseconds of a duration that passed `durationInput`, or an issue (zero when not allowed, too long). */
function durationMs(
  value: string | number,
  ctx: { readonly issues: z.core.$ZodRawIssue[] },
  options: { allowZero?: boolean },
): number {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.issues.push({ code: 'custom', input: value, message: `must be ${DURATION_FORMS}` });
    return z.NEVER;
  }
  if (ms === 0 && options.allowZero !== true) {
    ctx.issues.push({ code: 'custom', input: value, message: 'must be longer than 0' });
    return z.NEVER;
  }
  if (ms > MAX_DURATION_MS) {
    ctx.issues.push({
      code: 'custom',
      input: value,
      message: `must be at most ${formatDuration(MAX_DURATION_MS)}`,
    });
    return z.NEVER;
  }
  return ms;
}

export function duration(defaultValue: string, options: { allowZero?: boolean } = {}) {
  return durationInput()
    .transform((value, ctx) => durationMs(value, ctx, options))
    .prefault(defaultValue);
}

/** A duration that may be left unset (absent, null or empty): null then. */
export function optionalDuration(options: { allowZero?: boolean } = {}) {
  return durationInput()
    .nullable()
    .optional()
    .transform((value, ctx) =>
      value === null || value === undefined ? null : durationMs(value, ctx, options),
    );
}

/**
 * Runs a section's cross-key rule only when the keys it compares parsed cleanly (zod would otherwise
 * run it on the raw text of a key whose check failed without aborting).
 */
export function whenParsed(...fields: string[]) {
  return {
    when: (payload: z.core.ParsePayload): boolean =>
      !payload.issues.some((issue) => fields.includes(String(issue.path?.[0] ?? ''))),
  };
}

export function retryDelayProblem(
  baseDelay: number | null,
  maxDelay: number | null,
  maxKey = 'retry.max_delay',
): string | undefined {
  if (baseDelay === null || maxDelay === null || baseDelay <= maxDelay) return undefined;
  return `must not be longer than ${maxKey} (${formatDuration(maxDelay)}), got ${formatDuration(baseDelay)}`;
}

/** A rule between keys: `problem` gets the parsed values of `keys` (in order) and reports at `path`. */
export interface CrossCheck {
  readonly path: string;
  readonly keys: readonly string[];
  readonly problem: (values: readonly unknown[]) => string | undefined;
}

/** An optional setting: absent, null or (for strings where that makes sense) empty means "not set". */
export function nullWhenUnset<T>(value: T | null | undefined | ''): T | null {
  return value === undefined || value === '' ? null : value;
}

/** A text key that may be absent or empty (both mean unset: null). */
export function optionalText() {
  return z.string().nullable().optional().transform(nullWhenUnset);
}

/** A file path key that may be absent (null), made absolute against the working directory. */
export function optionalPath() {
  return z
    .string()
    .min(1)
    .nullable()
    .optional()
    .transform((path) => (path ? resolve(path) : null));
}

export function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** True when a URL carries user-info (`http://user:password@host`): secrets belong in their own keys. */
export function hasUrlCredentials(text: string): boolean {
  try {
    const url = new URL(text);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}
