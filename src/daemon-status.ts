/**
 * The daemon's status types, in a module of their own so the parts that read them (health checks,
 * STATUS, /metrics) need not import the composition root that creates them. Each reader takes the
 * narrow view it needs (a Pick of DaemonStatus). Type-only imports: this module loads no code.
 */
import type { Discovery } from './discovery/discovery.js';
import type { DeviceRegistry } from './discovery/registry.js';
import type { Reading } from './domain/reading.js';
import type { Poller } from './poller/poller.js';
import type { BoundedQueue } from './queue/bounded-queue.js';
import type { RetryStatistics } from './resilience/index.js';
import type { InfluxForwarder } from './storage/influx/index.js';
import type { DataLifecycle } from './storage/lifecycle.js';
import type { MqttPublisher } from './storage/mqtt/index.js';
import type { Writer } from './storage/writer.js';

/**
 * A point-in-time view of every part, for logs, `status`, /health and /metrics: each component's
 * stats() under its name (src/daemon/component.ts; the fields below are those readers use), with
 * the queue, the retries and each sink's accounting.
 */
export interface DaemonStatus {
  readonly devices: ReturnType<DeviceRegistry['counts']>;
  readonly discovery: ReturnType<Discovery['stats']>;
  readonly poller: ReturnType<Poller['stats']>;
  readonly queue: ReturnType<BoundedQueue<Reading>['stats']>;
  readonly writer: ReturnType<Writer['stats']>;
  /** The InfluxDB forwarder (how far it lags behind SQLite); null without InfluxDB. */
  readonly influx: ReturnType<InfluxForwarder['stats']> | null;
  /** Retry statistics per operation (sqlite.write, influx.write) with breaker states. */
  readonly retries: RetryStatistics;
  /** Per sink, at any moment: added = written + dropped + rejected + queued. */
  readonly accounting: Readonly<Record<'sqlite' | 'influx', SinkAccounting | null>>;
  /** Retention, disk use and scheduled backups. */
  readonly lifecycle: ReturnType<DataLifecycle['stats']>;
  /** The MQTT publisher (connection, messages published, states dropped); null without MQTT. */
  readonly mqtt?: ReturnType<MqttPublisher['stats']> | null;
}

export interface SinkAccounting {
  readonly added: number;
  readonly written: number;
  readonly dropped: number;
  readonly rejected: number;
  readonly queued: number;
}
