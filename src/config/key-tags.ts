import type { Reload } from './schema.js';

/**
 * Every leaf key's reload tag and secrecy, in schema order, without the schema. The running daemon
 * diffs and redacts configurations with this table so it never loads zod (the schema is loaded only
 * while a configuration is read, in a short-lived child process). The schema stays the source of
 * truth: a test fails when this table and the keys the schema declares differ.
 */
export interface KeyTag {
  /** Dotted key path as in the YAML file, e.g. 'storage.sqlite.path'. */
  readonly path: string;
  readonly segments: readonly string[];
  readonly reload: Reload;
  readonly secret: boolean;
}

const SECRET = true;

const TAGS: readonly (readonly [path: string, reload: Reload, secret?: boolean])[] = [
  ['discovery.enabled', 'hot'],
  ['discovery.broadcast', 'hot'],
  ['discovery.port', 'restart'],
  ['discovery.interval', 'hot'],
  ['discovery.timeout', 'hot'],
  ['discovery.hosts', 'hot'],
  ['discovery.offline_tolerance', 'hot'],
  ['discovery.receive_buffer', 'restart'],
  ['discovery.smart_port', 'hot'],
  ['polling.interval', 'hot'],
  ['polling.schedule', 'hot'],
  ['polling.timeout', 'hot'],
  ['polling.concurrency', 'hot'],
  ['polling.transport', 'restart'],
  ['polling.backoff_after', 'hot'],
  ['polling.backoff_max', 'hot'],
  ['queue.capacity', 'hot'],
  ['queue.overflow', 'hot'],
  ['writer.batch_size', 'hot'],
  ['writer.flush_interval', 'hot'],
  ['storage.sqlite.path', 'restart'],
  ['storage.sqlite.journal_mode', 'restart'],
  ['storage.sqlite.synchronous', 'restart'],
  ['storage.sqlite.cache_size', 'restart'],
  ['storage.sqlite.temp_store', 'restart'],
  ['storage.sqlite.busy_timeout', 'restart'],
  ['storage.pool.size', 'restart'],
  ['storage.pool.max_overflow', 'restart'],
  ['storage.pool.timeout', 'restart'],
  ['storage.pool.recycle', 'restart'],
  ['storage.influx.url', 'hot'],
  ['storage.influx.token', 'hot', SECRET],
  ['storage.influx.token_file', 'hot'],
  ['storage.influx.org', 'hot'],
  ['storage.influx.bucket', 'hot'],
  ['storage.influx.tags', 'hot'],
  ['storage.influx.batch_size', 'hot'],
  ['storage.influx.flush_interval', 'hot'],
  ['storage.influx.gzip', 'hot'],
  ['storage.rollups.enabled', 'restart'],
  ['storage.rollups.gap_limit', 'restart'],
  ['storage.retention.raw', 'hot'],
  ['storage.retention.minute', 'hot'],
  ['storage.retention.hour', 'hot'],
  ['storage.retention.day', 'hot'],
  ['storage.retention.max_size', 'hot'],
  ['storage.retention.interval', 'hot'],
  ['storage.backup.schedule', 'hot'],
  ['storage.backup.keep', 'hot'],
  ['storage.backup.directory', 'hot'],
  ['retry.max_attempts', 'hot'],
  ['retry.base_delay', 'hot'],
  ['retry.max_delay', 'hot'],
  ['retry.database.strategy', 'hot'],
  ['retry.database.max_attempts', 'hot'],
  ['retry.database.base_delay', 'hot'],
  ['retry.database.max_delay', 'hot'],
  ['retry.database.jitter', 'hot'],
  ['retry.database.timeout', 'hot'],
  ['retry.database.breaker_threshold', 'hot'],
  ['retry.database.breaker_half_open_after', 'hot'],
  ['retry.network.strategy', 'hot'],
  ['retry.network.max_attempts', 'hot'],
  ['retry.network.base_delay', 'hot'],
  ['retry.network.max_delay', 'hot'],
  ['retry.network.jitter', 'hot'],
  ['retry.network.timeout', 'hot'],
  ['retry.network.breaker_threshold', 'hot'],
  ['retry.network.breaker_half_open_after', 'hot'],
  ['retry.file.strategy', 'hot'],
  ['retry.file.max_attempts', 'hot'],
  ['retry.file.base_delay', 'hot'],
  ['retry.file.max_delay', 'hot'],
  ['retry.file.jitter', 'hot'],
  ['retry.file.timeout', 'hot'],
  ['retry.file.breaker_threshold', 'hot'],
  ['retry.file.breaker_half_open_after', 'hot'],
  ['http.listen', 'restart'],
  ['http.auth.username', 'restart'],
  ['http.auth.password', 'restart', SECRET],
  ['http.auth.password_file', 'restart'],
  ['http.allow_unauthenticated', 'restart'],
  ['http.public_metrics', 'restart'],
  ['http.write_timeout', 'restart'],
  ['log.level', 'hot'],
  ['log.format', 'restart'],
  ['shutdown.timeout', 'hot'],
  ['health.interval', 'hot'],
  ['health.alert_after', 'hot'],
  ['health.webhook_url', 'hot'],
  ['health.quick_check_interval', 'hot'],
  ['health.min_free_disk_mb', 'hot'],
  ['health.max_wal_mb', 'hot'],
  ['health.max_event_loop_lag', 'hot'],
  ['health.max_memory_mb', 'hot'],
  ['health.max_poll_error_rate', 'hot'],
  ['health.max_influx_lag', 'hot'],
  ['health.recovery_attempts', 'hot'],
  ['health.recovery_backoff', 'hot'],
  ['health.recovery_backoff_max', 'hot'],
  ['time_zone', 'restart'],
  ['credentials.username', 'restart', SECRET],
  ['credentials.password', 'restart', SECRET],
  ['credentials.password_file', 'restart'],
  ['tariff.currency', 'hot'],
  ['tariff.periods', 'hot'],
  ['tariff.prices_file', 'hot'],
  ['backfill.enabled', 'restart'],
  ['backfill.interval', 'restart'],
  ['mqtt.url', 'hot'],
  ['mqtt.username', 'hot'],
  ['mqtt.password', 'hot', SECRET],
  ['mqtt.password_file', 'hot'],
  ['mqtt.ca_file', 'hot'],
  ['mqtt.topic_prefix', 'hot'],
  ['mqtt.homeassistant.discovery', 'hot'],
  ['mqtt.homeassistant.prefix', 'hot'],
  ['mqtt.homeassistant.expire_after', 'hot'],
];

export const KEY_TAGS: readonly KeyTag[] = TAGS.map(([path, reload, secret]) => ({
  path,
  segments: path.split('.'),
  reload,
  secret: secret === true,
}));

/** Reads the value at a leaf key's path (undefined when a section on the way is missing). */
export function valueAt(root: unknown, segments: readonly string[]): unknown {
  let current: unknown = root;
  for (const segment of segments) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}
