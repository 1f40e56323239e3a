/**
 * Every series /metrics serves, as a table: name, help, type, label names and how one scrape reads
 * its samples from the daemon's status. The order of the table is the order of the output.
 * metrics.ts turns each row into a prom-client metric; this module does not know prom-client.
 *
 * Naming follows Prometheus: base units (seconds, watts, volts, amperes, joules), `_total` for
 * counters. Per-channel readings are `kasa_*` with `device_id` and `alias` labels; the daemon's own
 * metrics are `kasa_monitor_*` (the Node.js process metrics too).
 */
import type { DaemonStatus } from '../daemon-status.js';
import type { DeviceSnapshot } from '../discovery/registry.js';
import { milliToUnit, type Reading } from '../domain/reading.js';
import type { DurationSummary } from '../poller/histogram.js';
import type { PoolStats } from '../storage/sqlite/index.js';
import type { CheckStatus, HealthReport } from '../supervisor/index.js';
import type { ChannelCost } from './energy-cost.js';
import type { LatestReadings } from './latest.js';

/** What /metrics reads of the daemon's status. */
export type MetricsStatus = Pick<
  DaemonStatus,
  'devices' | 'discovery' | 'poller' | 'queue' | 'writer' | 'influx' | 'retries' | 'accounting' | 'mqtt'
>;

export interface MetricsSource {
  status(): MetricsStatus | null;
  /** The latest health report; null before the first. */
  health(): HealthReport | null;
  devices(): readonly DeviceSnapshot[];
  readonly latest: LatestReadings;
  pool(): PoolStats;
  /** What each channel's priced energy has cost, from stored data; absent: no cost metric. */
  energyCost?(): Promise<readonly ChannelCost[]>;
}

/** One series of a scrape: its label values and its value. */
export type Sample = readonly [labels: Readonly<Record<string, string>>, value: number];

/** A gauge or counter whose series are read afresh at every scrape. */
export interface SampledMetric {
  readonly type: 'gauge' | 'counter';
  readonly name: string;
  readonly help: string;
  readonly labels?: readonly string[];
  /** A counter's values are the parts' own running totals, set as they are (never added up here). */
  readonly samples: (source: MetricsSource) => Iterable<Sample> | Promise<Iterable<Sample>>;
  /** Registered only when this holds (default: always). */
  readonly when?: (source: MetricsSource) => boolean;
}

/** A histogram whose buckets come from a part's DurationSummary (ms) rather than observe() calls. */
export interface SummaryMetric {
  readonly type: 'histogram';
  readonly name: string;
  readonly help: string;
  readonly summary: (source: MetricsSource) => DurationSummary | null;
}

export type MetricRow = SampledMetric | SummaryMetric;

type MqttStatus = NonNullable<DaemonStatus['mqtt']>;
type SinkAccounting = NonNullable<DaemonStatus['accounting']['sqlite']>;

const STATUSES: readonly CheckStatus[] = ['ok', 'degraded', 'failed'];
const BREAKER_STATES = ['closed', 'open', 'half-open', 'isolated'] as const;
const SINKS = ['sqlite', 'influx'] as const;
const CHANNEL_LABELS = ['device_id', 'alias'] as const;

/** When the process started (Unix seconds): now minus the time since the process began. */
const START_SECONDS = Math.round((Date.now() - performance.now()) / 1000);

function one(value: number): Sample[] {
  return [[{}, value]];
}

/** The latest reading of every channel of an online plug; a value the plug does not measure (null) has no series at all, rather than a 0. */
function perChannel(name: string, help: string, value: (r: Reading) => number | null): SampledMetric {
  return {
    type: 'gauge',
    name,
    help,
    labels: CHANNEL_LABELS,
    *samples(source) {
      for (const device of source.devices()) {
        if (device.state.kind !== 'online') continue;
        for (const channel of device.channels) {
          const r = source.latest.get(channel.id);
          const v = r === undefined ? null : value(r);
          if (v !== null) yield [{ device_id: channel.id, alias: channel.alias }, v];
        }
      }
    },
  };
}

/** A series per sink that has accounting (InfluxDB only when configured). */
function perSink(
  type: 'gauge' | 'counter',
  name: string,
  help: string,
  pick: (a: SinkAccounting) => number,
): SampledMetric {
  return {
    type,
    name,
    help,
    labels: ['sink'],
    *samples(source) {
      const accounting = source.status()?.accounting;
      for (const sink of SINKS) {
        const a = accounting?.[sink];
        if (a !== null && a !== undefined) yield [{ sink }, pick(a)];
      }
    },
  };
}

/** An unlabelled MQTT metric; without MQTT it reads 0. */
function mqtt(
  type: 'gauge' | 'counter',
  name: string,
  help: string,
  pick: (m: MqttStatus) => number,
): SampledMetric {
  return {
    type,
    name,
    help,
    samples(source) {
      const m = source.status()?.mqtt;
      return m == null ? [] : one(pick(m));
    },
  };
}

function poolCounter(name: string, help: string, pick: (s: PoolStats) => number): SampledMetric {
  return { type: 'counter', name, help, samples: (source) => one(pick(source.pool())) };
}

function operations(source: MetricsSource): [string, MetricsStatus['retries']['operations'][string]][] {
  return Object.entries(source.status()?.retries.operations ?? {});
}

function poolLimit(s: PoolStats): number {
  return s.mode === 'single' ? 1 : s.size + s.maxOverflow;
}

export const METRIC_TABLE: readonly MetricRow[] = [
  // The process itself (prom-client's default collector is not used: some of its gauges end in
  // `_total`, which promtool rejects, and it would start a second event-loop monitor).
  {
    type: 'counter',
    name: 'kasa_monitor_process_cpu_seconds_total',
    help: 'CPU time used by the daemon (user + system).',
    samples: () => {
      const cpu = process.cpuUsage();
      return one((cpu.user + cpu.system) / 1e6);
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_process_resident_memory_bytes',
    help: 'Resident memory of the daemon.',
    samples: () => one(process.memoryUsage.rss()),
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_process_heap_bytes',
    help: 'V8 heap of the daemon, used and total.',
    labels: ['state'],
    samples: () => {
      const m = process.memoryUsage();
      return [
        [{ state: 'used' }, m.heapUsed],
        [{ state: 'total' }, m.heapTotal],
      ];
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_process_start_time_seconds',
    help: 'When the daemon started (Unix time).',
    samples: () => one(START_SECONDS),
  },

  // Per channel.
  perChannel('kasa_power_watts', 'Power drawn, latest reading.', (r) => r.powerMw / 1000),
  perChannel('kasa_voltage_volts', 'Voltage, latest reading.', (r) => milliToUnit(r.voltageMv)),
  perChannel('kasa_current_amperes', 'Current, latest reading.', (r) => milliToUnit(r.currentMa)),
  perChannel(
    'kasa_energy_joules',
    "The plug's own energy counter (its total_wh x 3600): it restarts when the plug reboots, and on newer plugs also at the start of the plug's month.",
    (r) => r.totalWh * 3600,
  ),
  {
    type: 'counter',
    name: 'kasa_energy_cost_total',
    help: 'What the energy of the channel has cost since its data begins, by the configured tariff (priced energy only), in the currency label. From stored data: survives restarts; a changed tariff reprices history.',
    labels: ['device_id', 'alias', 'currency'],
    when: (source) => source.energyCost !== undefined,
    samples: async (source) =>
      (await (source.energyCost?.() ?? [])).map(
        (c): Sample => [{ device_id: c.deviceId, alias: c.alias, currency: c.currency }, c.cost],
      ),
  },
  perChannel(
    'kasa_reading_timestamp_seconds',
    'When the latest reading was taken (Unix time).',
    (r) => r.tsMs / 1000,
  ),
  {
    type: 'gauge',
    name: 'kasa_device_up',
    help: '1 while the plug answers (online), 0 while it is offline.',
    labels: ['device_id', 'alias', 'model'],
    samples: (source) =>
      source
        .devices()
        .map(
          (d): Sample => [
            { device_id: d.id, alias: d.alias, model: d.model },
            d.state.kind === 'online' ? 1 : 0,
          ],
        ),
  },

  // The daemon.
  {
    type: 'gauge',
    name: 'kasa_monitor_health_status',
    help: 'The daemon status: 1 for the current one of ok, degraded, failed.',
    labels: ['status'],
    samples: (source) => {
      const status = source.health()?.status ?? 'ok';
      return STATUSES.map((s): Sample => [{ status: s }, s === status ? 1 : 0]);
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_health_check_status',
    help: 'Each health check: 1 for its current status.',
    labels: ['check', 'status'],
    *samples(source) {
      for (const [check, report] of Object.entries(source.health()?.checks ?? {})) {
        for (const s of STATUSES) yield [{ check, status: s }, s === report.status ? 1 : 0];
      }
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_alerts_active',
    help: 'Problems with an open alert.',
    samples: (source) => one(source.health()?.alerts.active.length ?? 0),
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_queue_readings',
    help: 'Readings waiting in the queue between poller and writer.',
    samples: (source) => one(source.status()?.queue.size ?? 0),
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_queue_capacity_readings',
    help: 'Readings the queue can hold.',
    samples: (source) => one(source.status()?.queue.capacity ?? 0),
  },
  perSink(
    'counter',
    'kasa_monitor_readings_written_total',
    'Readings stored, per sink (a replay included).',
    (a) => a.written,
  ),
  perSink(
    'counter',
    'kasa_monitor_readings_dropped_total',
    'Readings lost, per sink (queue overflow, shutdown deadline).',
    (a) => a.dropped,
  ),
  perSink(
    'counter',
    'kasa_monitor_readings_rejected_total',
    'Readings refused as malformed, per sink.',
    (a) => a.rejected,
  ),
  perSink(
    'gauge',
    'kasa_monitor_readings_pending',
    'Readings accepted and not yet stored, per sink.',
    (a) => a.queued,
  ),
  mqtt(
    'gauge',
    'kasa_monitor_mqtt_connected',
    '1 while connected to the MQTT broker, 0 while not (absent without MQTT).',
    (m) => (m.connected ? 1 : 0),
  ),
  mqtt(
    'counter',
    'kasa_monitor_mqtt_messages_published_total',
    'MQTT messages handed to the broker connection (states, discovery configs, availability, status).',
    (m) => m.published,
  ),
  mqtt(
    'counter',
    'kasa_monitor_mqtt_states_dropped_total',
    'Channel states never published to MQTT: a newer reading replaced them while the broker was away.',
    (m) => m.dropped,
  ),
  mqtt(
    'counter',
    'kasa_monitor_mqtt_connect_failures_total',
    'Failed connection attempts to the MQTT broker (unreachable, refused, bad credentials).',
    (m) => m.failedConnects,
  ),
  mqtt(
    'gauge',
    'kasa_monitor_mqtt_last_error_timestamp_seconds',
    'When the MQTT connection last failed, Unix time (0 when never).',
    (m) => (m.lastError?.atMs ?? 0) / 1000,
  ),
  {
    type: 'gauge',
    name: 'kasa_monitor_influx_lag_seconds',
    help: 'Age of the oldest reading committed to SQLite and not yet in InfluxDB (0 when caught up or without InfluxDB).',
    samples: (source) => one((source.status()?.influx?.lagMs ?? 0) / 1000),
  },
  {
    type: 'counter',
    name: 'kasa_monitor_polls_total',
    help: 'Poll requests by result: ok, or why no reading came of it.',
    labels: ['result'],
    *samples(source) {
      const p = source.status()?.poller;
      if (p === undefined) return;
      yield [{ result: 'ok' }, p.pollsOk];
      for (const [result, n] of Object.entries(p.rejected)) yield [{ result }, n];
    },
  },
  {
    type: 'counter',
    name: 'kasa_monitor_poll_ticks_total',
    help: 'Scheduler ticks by outcome: run, missed (slot passed while the loop was blocked), late.',
    labels: ['outcome'],
    samples: (source) => {
      const p = source.status()?.poller;
      if (p === undefined) return [];
      return [
        [{ outcome: 'run' }, p.ticks],
        [{ outcome: 'missed' }, p.missedTicks],
        [{ outcome: 'late' }, p.lateTicks],
      ];
    },
  },
  {
    type: 'counter',
    name: 'kasa_monitor_polls_skipped_overlap_total',
    help: "Device polls not started because the device's previous poll was still running.",
    samples: (source) => one(source.status()?.poller.skippedOverlap ?? 0),
  },
  {
    type: 'histogram',
    name: 'kasa_monitor_poll_duration_seconds',
    help: 'Duration of single poll requests (send to answer or timeout).',
    summary: (source) => source.status()?.poller.pollDuration ?? null,
  },
  {
    type: 'histogram',
    name: 'kasa_monitor_commit_latency_seconds',
    help: 'Time from a reading being polled to its SQLite commit.',
    summary: (source) => source.status()?.writer.commitLatency ?? null,
  },
  {
    type: 'counter',
    name: 'kasa_monitor_retries_total',
    help: 'Retries scheduled by the retry policy, per operation (sqlite.write, influx.write, alert.webhook).',
    labels: ['operation'],
    samples: (source) => operations(source).map(([operation, op]): Sample => [{ operation }, op.retries]),
  },
  {
    type: 'counter',
    name: 'kasa_monitor_attempts_total',
    help: 'Attempts that reached the resource, per operation and result.',
    labels: ['operation', 'result'],
    *samples(source) {
      for (const [operation, op] of operations(source)) {
        yield [{ operation, result: 'success' }, op.successful_attempts];
        yield [{ operation, result: 'failure' }, op.failed_attempts];
      }
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_breaker_state',
    help: 'Circuit breaker of each operation: 1 for its current state.',
    labels: ['operation', 'state'],
    *samples(source) {
      for (const [operation, op] of operations(source)) {
        for (const state of BREAKER_STATES) yield [{ operation, state }, op.breaker.state === state ? 1 : 0];
      }
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_plugs',
    help: 'Known plugs by state.',
    labels: ['state'],
    samples: (source) => {
      const c = source.status()?.devices;
      return [
        [{ state: 'online' }, c?.online ?? 0],
        [{ state: 'offline' }, c?.offline ?? 0],
      ];
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_channels',
    help: 'Meter channels polled (plugs, and strip outlets) of online plugs.',
    samples: (source) => one(source.status()?.devices.onlineChannels ?? 0),
  },
  {
    type: 'counter',
    name: 'kasa_monitor_discovery_rounds_total',
    help: 'Discovery rounds by result.',
    labels: ['result'],
    samples: (source) => {
      const d = source.status()?.discovery;
      if (d === undefined) return [];
      return [
        [{ result: 'ok' }, d.rounds - d.failedRounds],
        [{ result: 'failed' }, d.failedRounds],
      ];
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_smart_plugs',
    help: 'Newer (KLAP/AES, port 20002) plugs seen, by state: ok, or why they are not polled.',
    labels: ['state'],
    samples: (source) => {
      const counts = new Map<string, number>([['ok', 0]]);
      for (const p of source.status()?.discovery.smartPlugs ?? []) {
        const state = (p.problem ?? 'ok').replace(/ /g, '_');
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      return [...counts].map(([state, n]): Sample => [{ state }, n]);
    },
  },

  // The reader pool.
  {
    type: 'gauge',
    name: 'kasa_monitor_pool_connections',
    help: 'Reader connections by state.',
    labels: ['state'],
    samples: (source) => {
      const s = source.pool();
      return [
        [{ state: 'in_use' }, s.inUse],
        [{ state: 'idle' }, s.idle],
      ];
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_pool_max_connections',
    help: 'Reader connections allowed at once (pool.size + pool.max_overflow; 1 in the fallback).',
    samples: (source) => one(poolLimit(source.pool())),
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_pool_utilisation_ratio',
    help: 'Reader connections in use / allowed.',
    samples: (source) => {
      const s = source.pool();
      return one(s.inUse / poolLimit(s));
    },
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_pool_waiting_requests',
    help: 'Requests waiting for a reader connection.',
    samples: (source) => one(source.pool().waiting),
  },
  {
    type: 'gauge',
    name: 'kasa_monitor_pool_fallback',
    help: '1 while the pool runs on one main-thread connection because no worker could start.',
    samples: (source) => one(source.pool().mode === 'pool' ? 0 : 1),
  },
  poolCounter(
    'kasa_monitor_pool_timeouts_total',
    'Requests that gave up waiting for a reader connection.',
    (s) => s.timeouts,
  ),
  poolCounter(
    'kasa_monitor_pool_recycled_total',
    'Reader connections reopened for being older than pool.recycle.',
    (s) => s.recycled,
  ),
  poolCounter('kasa_monitor_pool_acquisitions_total', 'Reader connections lent.', (s) => s.acquisitions),
  {
    type: 'gauge',
    name: 'kasa_monitor_event_loop_lag_p99_seconds',
    help: 'p99 event-loop delay over the last health-check interval.',
    samples: (source) => one((source.health()?.performance.event_loop_lag_ms.p99 ?? 0) / 1000),
  },
];
