import { dirname, join } from 'node:path';
import { tplinkAccount } from './config/credentials.js';
import type { Config } from './config/index.js';
import type { InfluxSlice } from './daemon/influx-sink.js';
import type { DiscoveryOptions } from './discovery/discovery.js';
import type { HttpOptions } from './http/index.js';
import type { PollerOptions } from './poller/poller.js';
import type { BoundedQueueOptions } from './queue/bounded-queue.js';
import { presetSettings } from './resilience/index.js';
import type { ForwarderOptions, InfluxClientOptions } from './storage/influx/index.js';
import type { DataLifecycleOptions } from './storage/lifecycle.js';
import type { MqttOptions } from './storage/mqtt/index.js';
import type { ReaderPoolOptions, SqliteOptions } from './storage/sqlite/index.js';
import type { WriterOptions } from './storage/writer.js';

/**
 * Maps the configuration to each part's own options (its slice), so no component reads the config
 * object: a reload compares each part's slice before and after and calls reconfigure() on the parts
 * whose slice changed (see src/daemon/component.ts).
 */

export function discoveryOptions(config: Config): DiscoveryOptions {
  const d = config.discovery;
  return {
    // discovery.enabled: false keeps the static hosts and stops broadcasting.
    broadcast: d.enabled ? d.broadcast : [],
    port: d.port,
    intervalMs: d.interval,
    timeoutMs: d.timeout,
    hosts: d.hosts.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)),
    offlineTolerance: d.offline_tolerance,
    receiveBufferBytes: d.receive_buffer,
    smartPort: d.smart_port,
    account: tplinkAccount(config.credentials),
    smartRequestTimeoutMs: config.polling.timeout,
  };
}

export function pollerOptions(config: Config): PollerOptions {
  const p = config.polling;
  return {
    intervalMs: p.interval,
    schedule: p.schedule ?? undefined,
    timeoutMs: p.timeout,
    concurrency: p.concurrency,
    transport: p.transport,
    backoffAfter: p.backoff_after,
    backoffMaxMs: p.backoff_max,
  };
}

export function queueOptions(config: Config): BoundedQueueOptions {
  return { capacity: config.queue.capacity, overflow: config.queue.overflow };
}

export function writerOptions(config: Config): WriterOptions {
  return { batchSize: config.writer.batch_size, flushIntervalMs: config.writer.flush_interval };
}

export function sqliteOptions(config: Config): SqliteOptions {
  const s = config.storage.sqlite;
  return {
    path: s.path,
    journalMode: s.journal_mode,
    synchronous: s.synchronous,
    cacheSize: s.cache_size,
    tempStore: s.temp_store,
    busyTimeoutMs: s.busy_timeout,
    // The outbox feeds InfluxDB from SQLite; without InfluxDB nothing would read it.
    outbox: config.storage.influx.url !== null,
    lifecycle: {
      rollups: config.storage.rollups.enabled,
      timeZone: config.time_zone,
      gapLimitMs: config.storage.rollups.gap_limit,
    },
  };
}

/** Where backups go: storage.backup.directory, else `backups` beside the database. */
export function backupDirectory(config: Config): string {
  return config.storage.backup.directory ?? join(dirname(config.storage.sqlite.path), 'backups');
}

export function lifecycleOptions(config: Config): DataLifecycleOptions {
  const r = config.storage.retention;
  return {
    retention: { rawMs: r.raw, minuteMs: r.minute, hourMs: r.hour, dayMs: r.day, maxBytes: r.max_size },
    maintenanceIntervalMs: r.interval,
    backupSchedule: config.storage.backup.schedule,
    backupKeep: config.storage.backup.keep,
    backupDirectory: backupDirectory(config),
    timeZone: config.time_zone,
  };
}

export function forwarderOptions(config: Config): ForwarderOptions {
  const i = config.storage.influx;
  return { batchSize: i.batch_size, flushIntervalMs: i.flush_interval, tags: { ...i.tags } };
}

/** Null when no InfluxDB is configured. The client's own timeout trails the policy's by a second. */
export function influxClientOptions(config: Config): InfluxClientOptions | null {
  const i = config.storage.influx;
  if (i.url === null) return null;
  return {
    url: i.url,
    token: i.token,
    org: i.org,
    bucket: i.bucket,
    timeoutMs: config.retry.network.timeout + 1000,
    gzip: i.gzip,
  };
}

/** The MQTT sink's options; null when mqtt.url is not set. */
export function mqttOptions(config: Config): MqttOptions | null {
  const m = config.mqtt;
  if (m.url === null) return null;
  return {
    url: m.url,
    username: m.username,
    password: m.password,
    caFile: m.ca_file,
    topicPrefix: m.topic_prefix,
    discovery: m.homeassistant.discovery,
    haPrefix: m.homeassistant.prefix,
    expireAfterMs: m.homeassistant.expire_after,
    gapLimitMs: config.storage.rollups.gap_limit,
    energyFile: join(dirname(config.storage.sqlite.path), 'mqtt-energy.json'),
    currency: config.tariff.currency,
    // What prices energy, as the cost computation keys its cache (src/http/energy-cost.ts).
    costKey: JSON.stringify([config.time_zone, config.storage.rollups.gap_limit, config.tariff]),
  };
}

/**
 * The InfluxDB sink's slice; null when no InfluxDB is configured. It carries the network preset
 * too: the forwarder's policy uses it, and a change ends a pause after a failure at once.
 */
export function influxSlice(config: Config): InfluxSlice | null {
  const client = influxClientOptions(config);
  if (client === null) return null;
  return { forwarder: forwarderOptions(config), client, retry: presetSettings(config.retry).network };
}

export function readerPoolOptions(config: Config): ReaderPoolOptions {
  const pool = config.storage.pool;
  return {
    path: config.storage.sqlite.path,
    size: pool.size,
    maxOverflow: pool.max_overflow,
    timeoutMs: pool.timeout,
    recycleMs: pool.recycle,
  };
}

/** The HTTP endpoint's options; `energy` reads the settings in effect (a reload may change them). */
export function httpOptions(
  config: Config,
  energy: () => { readonly timeZone: string; readonly gapLimitMs: number },
): HttpOptions {
  const auth = config.http.auth;
  return {
    ...config.http.listen,
    writeTimeoutMs: config.http.write_timeout,
    auth:
      auth.username === null
        ? null
        : {
            username: auth.username,
            password: auth.password ?? '',
            publicPaths: config.http.public_metrics ? ['/health', '/metrics'] : [],
          },
    energy,
  };
}
