/**
 * /metrics: Prometheus text through prom-client (this folder is its only importer). Every value is
 * read from the parts' own statistics when scraped (collect callbacks), so nothing is counted twice
 * and the daemon's hot paths never touch prom-client.
 *
 * Naming follows Prometheus: base units (seconds, watts, volts, amperes, joules), `_total` for
 * counters. Per-channel readings are `kasa_*` with `device_id` and `alias` labels; the daemon's own
 * metrics are `kasa_monitor_*` (the Node.js process metrics too).
 */
import {
  Counter,
  Gauge,
  type Metric,
  type MetricObjectWithValues,
  type MetricValueWithName,
  Registry,
} from 'prom-client';
import type { DaemonStatus } from '../daemon-status.js';
import type { DeviceSnapshot } from '../discovery/registry.js';

/** What /metrics reads of the daemon's status. */
export type MetricsStatus = Pick<
  DaemonStatus,
  'devices' | 'discovery' | 'poller' | 'queue' | 'writer' | 'influx' | 'retries' | 'accounting' | 'mqtt'
>;

import { milliToUnit, type Reading } from '../domain/reading.js';
import type { DurationSummary } from '../poller/histogram.js';
import type { PoolStats } from '../storage/sqlite/index.js';
import type { CheckStatus, HealthReport } from '../supervisor/index.js';
import type { ChannelCost } from './energy-cost.js';
import type { LatestReadings } from './latest.js';

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

type MqttStatus = NonNullable<DaemonStatus['mqtt']>;

const STATUSES: readonly CheckStatus[] = ['ok', 'degraded', 'failed'];
const BREAKER_STATES = ['closed', 'open', 'half-open', 'isolated'] as const;
const SINKS = ['sqlite', 'influx'] as const;

/** A histogram whose buckets come from a DurationSummary (ms) instead of observe() calls. */
function summaryHistogram(name: string, help: string, summary: () => DurationSummary | null): Metric<string> {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    collect: undefined,
    reset: () => undefined,
    get: async (): Promise<MetricObjectWithValues<MetricValueWithName<string>>> => {
      const s = summary();
      const values: MetricValueWithName<string>[] = [];
      if (s !== null) {
        for (const bucket of s.buckets) {
          values.push({
            metricName: `${name}_bucket`,
            labels: { le: Number.isFinite(bucket.leMs) ? bucket.leMs / 1000 : '+Inf' },
            value: bucket.count,
          });
        }
        values.push({ metricName: `${name}_sum`, labels: {}, value: s.sumMs / 1000 });
        values.push({ metricName: `${name}_count`, labels: {}, value: s.count });
      }
      return { name, help, type: 'histogram' as never, aggregator: 'sum', collect: () => undefined, values };
    },
  };
  return metric as unknown as Metric<string>;
}

/** Sets a counter to an absolute value read from a part's own counters. */
function setCounter<T extends string>(
  counter: Counter<T>,
  labels: Partial<Record<T, string>>,
  value: number,
): void {
  if (Number.isFinite(value) && value > 0) counter.inc(labels, value);
  else counter.inc(labels, 0);
}

/**
 * The process itself (prom-client's default collector is not used: some of its gauges end in
 * `_total`, which promtool rejects, and it would start a second event-loop monitor).
 */
function processMetrics(registers: Registry[]): void {
  const startSeconds = Math.round((Date.now() - performance.now()) / 1000);
  new Counter({
    name: 'kasa_monitor_process_cpu_seconds_total',
    help: 'CPU time used by the daemon (user + system).',
    registers,
    collect() {
      const cpu = process.cpuUsage();
      this.reset();
      this.inc((cpu.user + cpu.system) / 1e6);
    },
  });
  new Gauge({
    name: 'kasa_monitor_process_resident_memory_bytes',
    help: 'Resident memory of the daemon.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: 'kasa_monitor_process_heap_bytes',
    help: 'V8 heap of the daemon, used and total.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const m = process.memoryUsage();
      this.set({ state: 'used' }, m.heapUsed);
      this.set({ state: 'total' }, m.heapTotal);
    },
  });
  new Gauge({
    name: 'kasa_monitor_process_start_time_seconds',
    help: 'When the daemon started (Unix time).',
    registers,
    collect() {
      this.set(startSeconds);
    },
  });
}

export function createMetricsRegistry(source: MetricsSource): Registry {
  const registry = new Registry();
  const registers = [registry];
  processMetrics(registers);

  // Per channel: the latest reading of every channel of an online plug. Each gauge collects for
  // itself (prom-client reads a gauge right after its own collect callback).
  const channelLabels = ['device_id', 'alias'] as const;
  // A value the plug does not measure (null) has no series at all, rather than a 0.
  const perChannel = (name: string, help: string, value: (r: Reading) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: channelLabels,
      registers,
      collect() {
        this.reset();
        for (const device of source.devices()) {
          if (device.state.kind !== 'online') continue;
          for (const channel of device.channels) {
            const r = source.latest.get(channel.id);
            const v = r === undefined ? null : value(r);
            if (v !== null) this.set({ device_id: channel.id, alias: channel.alias }, v);
          }
        }
      },
    });
  perChannel('kasa_power_watts', 'Power drawn, latest reading.', (r) => r.powerMw / 1000);
  perChannel('kasa_voltage_volts', 'Voltage, latest reading.', (r) => milliToUnit(r.voltageMv));
  perChannel('kasa_current_amperes', 'Current, latest reading.', (r) => milliToUnit(r.currentMa));
  perChannel(
    'kasa_energy_joules',
    "The plug's own energy counter (its total_wh x 3600): it restarts when the plug reboots, and on newer plugs also at the start of the plug's month.",
    (r) => r.totalWh * 3600,
  );
  const energyCost = source.energyCost;
  if (energyCost !== undefined) {
    new Counter({
      name: 'kasa_energy_cost_total',
      help: 'What the energy of the channel has cost since its data begins, by the configured tariff (priced energy only), in the currency label. From stored data: survives restarts; a changed tariff reprices history.',
      labelNames: ['device_id', 'alias', 'currency'] as const,
      registers,
      async collect() {
        this.reset();
        for (const c of await energyCost.call(source)) {
          setCounter(this, { device_id: c.deviceId, alias: c.alias, currency: c.currency }, c.cost);
        }
      },
    });
  }
  perChannel(
    'kasa_reading_timestamp_seconds',
    'When the latest reading was taken (Unix time).',
    (r) => r.tsMs / 1000,
  );
  new Gauge({
    name: 'kasa_device_up',
    help: '1 while the plug answers (online), 0 while it is offline.',
    labelNames: ['device_id', 'alias', 'model'] as const,
    registers,
    collect() {
      this.reset();
      for (const d of source.devices()) {
        this.set({ device_id: d.id, alias: d.alias, model: d.model }, d.state.kind === 'online' ? 1 : 0);
      }
    },
  });

  // The daemon.
  new Gauge({
    name: 'kasa_monitor_health_status',
    help: 'The daemon status: 1 for the current one of ok, degraded, failed.',
    labelNames: ['status'] as const,
    registers,
    collect() {
      const status = source.health()?.status ?? 'ok';
      for (const s of STATUSES) this.set({ status: s }, s === status ? 1 : 0);
    },
  });
  new Gauge({
    name: 'kasa_monitor_health_check_status',
    help: 'Each health check: 1 for its current status.',
    labelNames: ['check', 'status'] as const,
    registers,
    collect() {
      this.reset();
      for (const [check, report] of Object.entries(source.health()?.checks ?? {})) {
        for (const s of STATUSES) this.set({ check, status: s }, s === report.status ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'kasa_monitor_alerts_active',
    help: 'Problems with an open alert.',
    registers,
    collect() {
      this.set(source.health()?.alerts.active.length ?? 0);
    },
  });
  new Gauge({
    name: 'kasa_monitor_queue_readings',
    help: 'Readings waiting in the queue between poller and writer.',
    registers,
    collect() {
      this.set(source.status()?.queue.size ?? 0);
    },
  });
  new Gauge({
    name: 'kasa_monitor_queue_capacity_readings',
    help: 'Readings the queue can hold.',
    registers,
    collect() {
      this.set(source.status()?.queue.capacity ?? 0);
    },
  });
  const perSink = (
    name: string,
    help: string,
    pick: (a: NonNullable<DaemonStatus['accounting']['sqlite']>) => number,
  ) =>
    new Counter({
      name,
      help,
      labelNames: ['sink'] as const,
      registers,
      collect() {
        this.reset();
        const accounting = source.status()?.accounting;
        for (const sink of SINKS) {
          const a = accounting?.[sink];
          if (a !== null && a !== undefined) setCounter(this, { sink }, pick(a));
        }
      },
    });
  perSink(
    'kasa_monitor_readings_written_total',
    'Readings stored, per sink (a replay included).',
    (a) => a.written,
  );
  perSink(
    'kasa_monitor_readings_dropped_total',
    'Readings lost, per sink (queue overflow, shutdown deadline).',
    (a) => a.dropped,
  );
  perSink(
    'kasa_monitor_readings_rejected_total',
    'Readings refused as malformed, per sink.',
    (a) => a.rejected,
  );
  new Gauge({
    name: 'kasa_monitor_readings_pending',
    help: 'Readings accepted and not yet stored, per sink.',
    labelNames: ['sink'] as const,
    registers,
    collect() {
      this.reset();
      const accounting = source.status()?.accounting;
      for (const sink of SINKS) {
        const a = accounting?.[sink];
        if (a !== null && a !== undefined) this.set({ sink }, a.queued);
      }
    },
  });
  new Gauge({
    name: 'kasa_monitor_mqtt_connected',
    help: '1 while connected to the MQTT broker, 0 while not (absent without MQTT).',
    registers,
    collect() {
      this.reset();
      const m = source.status()?.mqtt;
      if (m != null) this.set(m.connected ? 1 : 0);
    },
  });
  const mqttCounter = (name: string, help: string, pick: (m: MqttStatus) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const m = source.status()?.mqtt;
        if (m != null) setCounter(this, {}, pick(m));
      },
    });
  mqttCounter(
    'kasa_monitor_mqtt_messages_published_total',
    'MQTT messages handed to the broker connection (states, discovery configs, availability, status).',
    (m) => m.published,
  );
  mqttCounter(
    'kasa_monitor_mqtt_states_dropped_total',
    'Channel states never published to MQTT: a newer reading replaced them while the broker was away.',
    (m) => m.dropped,
  );
  mqttCounter(
    'kasa_monitor_mqtt_connect_failures_total',
    'Failed connection attempts to the MQTT broker (unreachable, refused, bad credentials).',
    (m) => m.failedConnects,
  );
  new Gauge({
    name: 'kasa_monitor_mqtt_last_error_timestamp_seconds',
    help: 'When the MQTT connection last failed, Unix time (0 when never).',
    registers,
    collect() {
      this.reset();
      const m = source.status()?.mqtt;
      if (m != null) this.set((m.lastError?.atMs ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'kasa_monitor_influx_lag_seconds',
    help: 'Age of the oldest reading committed to SQLite and not yet in InfluxDB (0 when caught up or without InfluxDB).',
    registers,
    collect() {
      this.set((source.status()?.influx?.lagMs ?? 0) / 1000);
    },
  });
  new Counter({
    name: 'kasa_monitor_polls_total',
    help: 'Poll requests by result: ok, or why no reading came of it.',
    labelNames: ['result'] as const,
    registers,
    collect() {
      this.reset();
      const p = source.status()?.poller;
      if (p === undefined) return;
      setCounter(this, { result: 'ok' }, p.pollsOk);
      for (const [result, n] of Object.entries(p.rejected)) setCounter(this, { result }, n);
    },
  });
  new Counter({
    name: 'kasa_monitor_poll_ticks_total',
    help: 'Scheduler ticks by outcome: run, missed (slot passed while the loop was blocked), late.',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      this.reset();
      const p = source.status()?.poller;
      if (p === undefined) return;
      setCounter(this, { outcome: 'run' }, p.ticks);
      setCounter(this, { outcome: 'missed' }, p.missedTicks);
      setCounter(this, { outcome: 'late' }, p.lateTicks);
    },
  });
  new Counter({
    name: 'kasa_monitor_polls_skipped_overlap_total',
    help: "Device polls not started because the device's previous poll was still running.",
    registers,
    collect() {
      this.reset();
      setCounter(this, {}, source.status()?.poller.skippedOverlap ?? 0);
    },
  });
  registry.registerMetric(
    summaryHistogram(
      'kasa_monitor_poll_duration_seconds',
      'Duration of single poll requests (send to answer or timeout).',
      () => source.status()?.poller.pollDuration ?? null,
    ),
  );
  registry.registerMetric(
    summaryHistogram(
      'kasa_monitor_commit_latency_seconds',
      'Time from a reading being polled to its SQLite commit.',
      () => source.status()?.writer.commitLatency ?? null,
    ),
  );
  new Counter({
    name: 'kasa_monitor_retries_total',
    help: 'Retries scheduled by the retry policy, per operation (sqlite.write, influx.write, alert.webhook).',
    labelNames: ['operation'] as const,
    registers,
    collect() {
      this.reset();
      for (const [operation, op] of Object.entries(source.status()?.retries.operations ?? {})) {
        setCounter(this, { operation }, op.retries);
      }
    },
  });
  new Counter({
    name: 'kasa_monitor_attempts_total',
    help: 'Attempts that reached the resource, per operation and result.',
    labelNames: ['operation', 'result'] as const,
    registers,
    collect() {
      this.reset();
      for (const [operation, op] of Object.entries(source.status()?.retries.operations ?? {})) {
        setCounter(this, { operation, result: 'success' }, op.successful_attempts);
        setCounter(this, { operation, result: 'failure' }, op.failed_attempts);
      }
    },
  });
  new Gauge({
    name: 'kasa_monitor_breaker_state',
    help: 'Circuit breaker of each operation: 1 for its current state.',
    labelNames: ['operation', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const [operation, op] of Object.entries(source.status()?.retries.operations ?? {})) {
        for (const state of BREAKER_STATES)
          this.set({ operation, state }, op.breaker.state === state ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'kasa_monitor_plugs',
    help: 'Known plugs by state.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const c = source.status()?.devices;
      this.set({ state: 'online' }, c?.online ?? 0);
      this.set({ state: 'offline' }, c?.offline ?? 0);
    },
  });
  new Gauge({
    name: 'kasa_monitor_channels',
    help: 'Meter channels polled (plugs, and strip outlets) of online plugs.',
    registers,
    collect() {
      this.set(source.status()?.devices.onlineChannels ?? 0);
    },
  });
  new Counter({
    name: 'kasa_monitor_discovery_rounds_total',
    help: 'Discovery rounds by result.',
    labelNames: ['result'] as const,
    registers,
    collect() {
      this.reset();
      const d = source.status()?.discovery;
      if (d === undefined) return;
      setCounter(this, { result: 'ok' }, d.rounds - d.failedRounds);
      setCounter(this, { result: 'failed' }, d.failedRounds);
    },
  });

  new Gauge({
    name: 'kasa_monitor_smart_plugs',
    help: 'Newer (KLAP/AES, port 20002) plugs seen, by state: ok, or why they are not polled.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, number>([['ok', 0]]);
      for (const p of source.status()?.discovery.smartPlugs ?? []) {
        const state = (p.problem ?? 'ok').replace(/ /g, '_');
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });

  // The reader pool.
  new Gauge({
    name: 'kasa_monitor_pool_connections',
    help: 'Reader connections by state.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const s = source.pool();
      this.set({ state: 'in_use' }, s.inUse);
      this.set({ state: 'idle' }, s.idle);
    },
  });
  new Gauge({
    name: 'kasa_monitor_pool_max_connections',
    help: 'Reader connections allowed at once (pool.size + pool.max_overflow; 1 in the fallback).',
    registers,
    collect() {
      const s = source.pool();
      this.set(s.mode === 'single' ? 1 : s.size + s.maxOverflow);
    },
  });
  new Gauge({
    name: 'kasa_monitor_pool_utilisation_ratio',
    help: 'Reader connections in use / allowed.',
    registers,
    collect() {
      const s = source.pool();
      this.set(s.inUse / (s.mode === 'single' ? 1 : s.size + s.maxOverflow));
    },
  });
  new Gauge({
    name: 'kasa_monitor_pool_waiting_requests',
    help: 'Requests waiting for a reader connection.',
    registers,
    collect() {
      this.set(source.pool().waiting);
    },
  });
  new Gauge({
    name: 'kasa_monitor_pool_fallback',
    help: '1 while the pool runs on one main-thread connection because no worker could start.',
    registers,
    collect() {
      this.set(source.pool().mode === 'pool' ? 0 : 1);
    },
  });
  for (const [name, help, pick] of [
    [
      'kasa_monitor_pool_timeouts_total',
      'Requests that gave up waiting for a reader connection.',
      (s: PoolStats) => s.timeouts,
    ],
    [
      'kasa_monitor_pool_recycled_total',
      'Reader connections reopened for being older than pool.recycle.',
      (s: PoolStats) => s.recycled,
    ],
    ['kasa_monitor_pool_acquisitions_total', 'Reader connections lent.', (s: PoolStats) => s.acquisitions],
  ] as const) {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        setCounter(this, {}, pick(source.pool()));
      },
    });
  }
  new Gauge({
    name: 'kasa_monitor_event_loop_lag_p99_seconds',
    help: 'p99 event-loop delay over the last health-check interval.',
    registers,
    collect() {
      this.set((source.health()?.performance.event_loop_lag_ms.p99 ?? 0) / 1000);
    },
  });
  return registry;
}
