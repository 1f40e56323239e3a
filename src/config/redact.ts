import { KEY_TAGS } from './key-tags.js';
import type { Config } from './schema.js';

export const REDACTED = '[redacted]';

/** Hides a password in a URL's user-info part (`http://user:secret@host` → `http://user:[redacted]@host`). */
function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password === '') return text;
    url.password = 'REDACTED';
    return url.toString().replace(':REDACTED@', `:${REDACTED}@`);
  } catch {
    return text;
  }
}

/**
 * A deep copy of the configuration that is safe to log or show in /health: every secret key
 * (the Influx token) is replaced by '[redacted]' when set, and a password in the Influx URL is hidden.
 */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  for (const key of KEY_TAGS) {
    if (!key.secret) continue;
    let parent: unknown = copy;
    for (const segment of key.segments.slice(0, -1)) parent = (parent as Record<string, unknown>)[segment];
    const last = key.segments[key.segments.length - 1];
    const holder = parent as Record<string, unknown> | undefined;
    if (holder && last !== undefined && holder[last] !== null && holder[last] !== undefined)
      holder[last] = REDACTED;
  }
  if (copy.storage.influx.url !== null) copy.storage.influx.url = redactUrl(copy.storage.influx.url);
  return copy;
}
