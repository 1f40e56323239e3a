import { KEY_TAGS, valueAt } from './key-tags.js';
import type { Config } from './schema.js';

export interface ConfigDiff {
  /** Every leaf key path whose value differs, in schema order. */
  readonly changed: string[];
  /** The changed keys a SIGHUP reload applies. */
  readonly hot: string[];
  /** The changed keys that need a restart to apply. */
  readonly restart: string[];
}

/** JSON with object keys sorted, so maps compare by content rather than key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === 'object' && inner !== null && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

/**
 * Keys tagged `hot` that a reload applies only under a condition; otherwise they need a restart.
 * Switching InfluxDB on (no URL at start) or off adds or removes the forwarder and the SQLite
 * outbox: only a change from one URL to another is applied in place.
 */
const HOT_ONLY_WHEN: Readonly<Record<string, (old: Config, next: Config) => boolean>> = {
  'storage.influx.url': (old, next) => old.storage.influx.url !== null && next.storage.influx.url !== null,
};

/** Lists the leaf keys that differ between two parsed configurations, split by their reload tag. */
export function diffConfig(old: Config, next: Config): ConfigDiff {
  const diff: ConfigDiff = { changed: [], hot: [], restart: [] };
  for (const key of KEY_TAGS) {
    if (canonical(valueAt(old, key.segments)) === canonical(valueAt(next, key.segments))) continue;
    diff.changed.push(key.path);
    const hot = key.reload === 'hot' && (HOT_ONLY_WHEN[key.path]?.(old, next) ?? true);
    (hot ? diff.hot : diff.restart).push(key.path);
  }
  return diff;
}
