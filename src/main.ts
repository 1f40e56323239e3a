import { BackfillScheduler, type BackfillSchedulerOptions } from './backfill/scheduler.js';
import { diffConfig } from './config/diff.js';
import type { Config } from './config/index.js';
import { redactConfig } from './config/redact.js';
import { configSummary } from './config/summary.js';
import { Components, reconfigureChanged, type Tunable, tunable } from './daemon/component.js';
import { HttpEndpoint } from './daemon/http-endpoint.js';
import { InfluxSink } from './daemon/influx-sink.js';
import { MqttSink } from './daemon/mqtt-sink.js';
import {
  discoveryOptions,
  httpOptions,
  influxSlice,
  lifecycleOptions,
  mqttOptions,
  pollerOptions,
  queueOptions,
  readerPoolOptions,
  sqliteOptions,
  writerOptions,
} from './daemon-options.js';
import type { DaemonStatus, SinkAccounting } from './daemon-status.js';
import { Discovery } from './discovery/discovery.js';
import type { Reading } from './domain/reading.js';
import { EnergyCostTotals, type EnergySettingsNow, HttpServer, LatestReadings } from './http/index.js';
import type { Logger } from './log/logger.js';
import { Poller } from './poller/poller.js';
import { BoundedQueue } from './queue/bounded-queue.js';
import { presetSettings, Resilience } from './resilience/index.js';
import { DataLifecycle } from './storage/lifecycle.js';
import { ReaderPool, SqliteStore } from './storage/sqlite/index.js';
import { Writer } from './storage/writer.js';
import { type HealthReport, Supervisor, startStore, supervisorOptions } from './supervisor/index.js';

/** Re-exported for callers of the composition root (tests, scripts); parts import ./daemon-status.js. */
export type { DaemonStatus, SinkAccounting } from './daemon-status.js';

export interface ReloadResult {
  /** Keys whose new value is now in effect. */
  readonly applied: readonly string[];
  /** Keys that changed in the file but take effect only after a restart. */
  readonly needRestart: readonly string[];
}

/**
 * The long-running parts, in start order; stopped in reverse. Storage comes first and the readers
 * with it (MQTT's costs read through them until MQTT has sent its last states); polling starts only
 * once everything it feeds runs; the supervisor, HTTP and backfill come last and go first.
 */
type Parts = {
  readonly readers: ReaderPool;
  /** After the writer: the last committed states go out, then `offline` on the status topic. */
  readonly mqtt: MqttSink;
  /** What InfluxDB has not acknowledged stays in SQLite and is sent after the next start. */
  readonly influx: InfluxSink;
  /** Stopped after polling and discovery, within the shutdown budget: the queue drains into SQLite. */
  readonly writer: Writer;
  /** Retention, the disk budget and scheduled backups (the work itself runs in the writer worker). */
  readonly lifecycle: DataLifecycle;
  readonly discovery: Discovery;
  readonly poller: Poller;
  readonly supervisor: Supervisor;
  readonly http: HttpEndpoint;
  /** Scheduled gap fills from the plugs' statistics; absent when backfill.enabled is false. */
  readonly backfill?: BackfillScheduler;
};

/** What a started daemon holds: the store (opened before, closed after every part), and the parts. */
interface Running {
  readonly store: SqliteStore;
  readonly queue: BoundedQueue<Reading>;
  readonly resilience: Resilience;
  readonly components: Components<Parts>;
  /** What a reload may retune, in order: shared settings first, then each part with its slice. */
  readonly tunables: readonly Tunable<Config>[];
}

export interface DaemonHooks {
  /**
   * Recovery is exhausted for a problem a restart could fix: the daemon must stop and exit
   * non-zero. Default: the error is thrown from a macrotask, so `run`'s uncaughtException handler
   * drains the queue and exits 1.
   */
  readonly onFatal?: (error: Error) => void;
}

/** How often a one-line summary goes to the log, so `journalctl` shows the daemon is alive. */
const SUMMARY_INTERVAL_MS = 5 * 60_000;

/**
 * The composition root: the only place that creates and wires concrete parts. Constructors only
 * assign; start() brings the parts up in order (storage first, so nothing is polled that could not
 * be stored) and stop() takes them down in reverse, each step guarded so a failing stop never
 * prevents the others (above all, the queue still drains into SQLite). Start, stop, status and
 * reload are loops over one ordered list (src/daemon/component.ts).
 */
export class Daemon {
  #config: Config;
  #running: Running | null = null;
  #summaryTimer: NodeJS.Timeout | null = null;
  #stopping: Promise<DaemonStatus | null> | null = null;
  /** Reloads run one after another, each against the configuration the previous one left. */
  #reloads: Promise<unknown> = Promise.resolve();

  constructor(
    config: Config,
    private readonly logger: Logger,
    private readonly hooks: DaemonHooks = {},
  ) {
    this.#config = config;
  }

  get config(): Config {
    return this.#config;
  }

  async start(): Promise<void> {
    if (this.#running !== null) return;
    const config = this.#config;
    const log = this.logger;
    log.info(`starting: ${configSummary(config)}`);
    log.debug({ config: redactConfig(config) }, 'configuration');

    const resilience = new Resilience(presetSettings(config.retry), log.child({ component: 'resilience' }));
    // A corrupt database is moved aside and a fresh one started; the supervisor alerts about it.
    const { store, quarantined } = await startStore(
      () => new SqliteStore(sqliteOptions(config), log.child({ component: 'sqlite' })),
      config.storage.sqlite.path,
      log.child({ component: 'supervisor' }),
    );
    const queue = new BoundedQueue<Reading>(queueOptions(config), log.child({ component: 'queue' }));
    const components = new Components(this.#createParts(config, store, queue, resilience));
    const { parts } = components;
    this.#running = {
      store,
      queue,
      resilience,
      components,
      tunables: [
        tunable(
          'retries',
          (c: Config) => presetSettings(c.retry),
          (s) => resilience.reconfigure(s),
        ),
        tunable('queue', queueOptions, (o) => queue.resize(o.capacity, o.overflow)),
        ...components.tunables<Config>({
          discovery: discoveryOptions,
          poller: pollerOptions,
          writer: writerOptions,
          influx: influxSlice,
          mqtt: mqttOptions,
          supervisor: (c) => supervisorOptions(c.health),
          lifecycle: lifecycleOptions,
        }),
      ],
    };
    this.#wire(parts, store);
    if (quarantined !== null) parts.supervisor.quarantinedAtStart(quarantined.files, quarantined.reason);
    await components.start();
    this.#summaryTimer = setInterval(() => this.#logSummary('running'), SUMMARY_INTERVAL_MS);
    this.#summaryTimer.unref();
    log.info(
      { database: config.storage.sqlite.path, broadcast: discoveryOptions(config).broadcast },
      'started: discovering plugs and polling',
    );
  }

  /** Creates every part (constructors only assign; nothing runs until started). */
  #createParts(
    config: Config,
    store: SqliteStore,
    queue: BoundedQueue<Reading>,
    resilience: Resilience,
  ): Parts {
    const log = this.logger;
    const readers = new ReaderPool(readerPoolOptions(config), log.child({ component: 'readers' }));
    const energyCosts = new EnergyCostTotals({
      report: (query, settings) => readers.energyReport(query, settings),
      settings: () => this.#energySettings(),
    });
    const writer = new Writer(
      queue,
      store,
      writerOptions(config),
      log.child({ component: 'writer' }),
      undefined,
      resilience.policy('sqlite.write', 'database'),
    );
    const lifecycle = new DataLifecycle(
      store,
      lifecycleOptions(config),
      log.child({ component: 'lifecycle' }),
      resilience.policy('lifecycle.file', 'file'),
    );
    const influxConfig = influxSlice(config);
    const influx = new InfluxSink(
      influxConfig,
      store,
      resilience.policy('influx.write', 'network'),
      log.child({ component: 'influx' }),
    );
    const discovery = new Discovery(discoveryOptions(config), log.child({ component: 'discovery' }));
    const mqtt = new MqttSink(
      mqttOptions(config),
      discovery.registry,
      { totals: () => energyCosts.totals() },
      log.child({ component: 'mqtt' }),
    );
    const latest = new LatestReadings();
    const poller = new Poller(
      discovery.registry,
      latest.tee(queue),
      pollerOptions(config),
      log.child({ component: 'poller' }),
    );
    const supervisor = new Supervisor({
      status: () => this.status(),
      databasePath: config.storage.sqlite.path,
      influxUrl: () => this.#config.storage.influx.url,
      pollIntervalMs: () => this.#config.polling.interval,
      discoveryIntervalMs: () => this.#config.discovery.interval,
      targets: {
        store,
        readers,
        discovery,
        poller,
        ...(influxConfig === null ? {} : { influx: { recreateClient: () => influx.recreateClient() } }),
      },
      options: supervisorOptions(config.health),
      logger: log.child({ component: 'supervisor' }),
      webhookPolicy: resilience.policy('alert.webhook', 'network'),
      onExhausted: (error) => {
        const fatal =
          this.hooks.onFatal ??
          ((e: Error) =>
            setImmediate(() => {
              throw e;
            }));
        fatal(error);
      },
    });
    const server = new HttpServer(
      {
        status: () => this.status(),
        health: () => supervisor.report(),
        refreshHealth: () => supervisor.refresh(),
        acknowledge: () => supervisor.acknowledge(),
        devices: () => discovery.registry.snapshot(),
        latest,
        pool: () => readers.stats(),
        readers,
        energyCosts,
        energySettings: () => this.#energySettings(),
      },
      httpOptions(config, () => this.#energySettings()),
      log.child({ component: 'http' }),
    );
    const http = new HttpEndpoint(server, config.http.listen);
    const backfill = backfillOptions(config);
    return {
      readers,
      mqtt,
      influx,
      writer,
      lifecycle,
      discovery,
      poller,
      supervisor,
      http,
      ...(backfill === null
        ? {}
        : {
            backfill: new BackfillScheduler(
              backfill,
              discovery.registry,
              log.child({ component: 'backfill' }),
            ),
          }),
    };
  }

  /** The events between parts: names to storage, states to MQTT, plugs coming and going to the log. */
  #wire(parts: Parts, store: SqliteStore): void {
    const log = this.logger;
    const { discovery, mqtt, poller, writer, readers, supervisor } = parts;
    const registry = discovery.registry;
    // Identity and names go to storage as soon as they are known; a reading that overtakes its
    // channel row is still stored (the store creates a minimal row), so this is never awaited.
    registry.on('channels', (channels) => {
      store.upsertChannels(channels).catch((error: unknown) => {
        log.error({ err: error }, 'could not store device names; readings are still recorded');
      });
    });
    // 'plug found' is logged by the registry itself, with the address, meter and outlets.
    registry.on('moved', (m) =>
      log.info(
        { deviceId: m.device.id, alias: m.device.alias, from: m.from, to: m.to },
        'plug moved to a new address',
      ),
    );
    registry.on('offline', (d) => log.warn({ deviceId: d.id, alias: d.alias, host: d.host }, 'plug offline'));
    // MQTT: states from what the writer committed (the latest per channel is all MQTT needs, and the
    // batch is at hand in memory); discovery configs and availability follow the registry.
    writer.onCommit((batch) => mqtt.committed(batch));
    registry.on('added', (d) => mqtt.deviceChanged(d.id));
    registry.on('online', (d) => mqtt.deviceChanged(d.id));
    registry.on('offline', (d) => mqtt.deviceChanged(d.id));
    registry.on('channels', (channels) => {
      const first = channels[0];
      if (first !== undefined) mqtt.deviceChanged(first.parentId ?? first.id);
    });
    registry.on('online', (d) => {
      log.info({ deviceId: d.id, alias: d.alias, host: d.host }, 'plug back online');
      // Discovery heard it: a backed-off plug gets its trial poll on the next tick.
      poller.wake(d.id);
    });
    // The database file was removed while open and the store went on in a new one: the readers
    // follow it, the plugs' names are stored again, and /health keeps it visible until acknowledged.
    store.onReplaced(({ path, reason }) => {
      supervisor.databaseReplaced(path, reason);
      readers.reopen().catch((error: unknown) => log.error({ err: error }, 'could not reopen the readers'));
      store
        .upsertChannels(registry.channels())
        .catch((error: unknown) => log.error({ err: error }, 'could not store device names again'));
    });
  }

  /** The supervisor's latest report (checks, pool, retries, performance); null before start. */
  health(): HealthReport | null {
    return this.#running?.components.parts.supervisor.report() ?? null;
  }

  /** Runs every health check now and returns the report; null before start. */
  async refreshHealth(): Promise<HealthReport | null> {
    return (await this.#running?.components.parts.supervisor.refresh()) ?? null;
  }

  /** Where /health, /metrics and /api listen; null when not listening. */
  get httpAddress(): { host: string; port: number } | null {
    return this.#running?.components.parts.http.server.address ?? null;
  }

  /** Local days, the gap limit and the tariff as configured now (a reload applies a new tariff). */
  #energySettings(): EnergySettingsNow {
    return {
      timeZone: this.#config.time_zone,
      gapLimitMs: this.#config.storage.rollups.gap_limit,
      tariff: this.#config.tariff,
    };
  }

  /** Every part's figures under its name, with the queue, the retries and each sink's accounting. */
  status(): DaemonStatus | null {
    const running = this.#running;
    if (running === null) return null;
    const { components, queue, resilience } = running;
    const parts = components.stats();
    const queued = queue.stats();
    return {
      ...parts,
      devices: components.parts.discovery.registry.counts(),
      queue: queued,
      retries: resilience.stats(),
      accounting: sinkAccounting(queued, parts.writer, parts.influx),
    };
  }

  /**
   * Applies a new, already validated configuration. Keys tagged `hot` take effect now; the others
   * are named so the user knows a restart is needed. Queued readings are kept. Exactly the parts
   * whose slice changed are reconfigured; reloads run one at a time.
   */
  reload(next: Config): Promise<ReloadResult> {
    const result = this.#reloads.then(() => this.#reload(next));
    this.#reloads = result.catch(() => undefined);
    return result;
  }

  async #reload(next: Config): Promise<ReloadResult> {
    const current = this.#config;
    const diff = diffConfig(current, next);
    // Restart-only keys keep their running values, so the daemon's view stays truthful and the
    // parts are given only what a reload may change.
    const effective = keepRunningValues(current, next, diff.restart);
    const tunables: Tunable<Config>[] = [
      tunable(
        'log',
        (c: Config) => c.log.level,
        (level) => {
          this.logger.level = level;
        },
      ),
      ...(this.#running?.tunables ?? []),
    ];
    await reconfigureChanged(tunables, current, effective, () => this.#stopping !== null);
    this.#config = effective;
    this.logger.info({ applied: diff.hot, needRestart: diff.restart }, 'configuration reloaded');
    if (diff.restart.includes('storage.influx.url')) {
      this.logger.warn(
        { running: current.storage.influx.url === null ? 'without InfluxDB' : 'with InfluxDB' },
        'switching InfluxDB on or off takes effect only after a restart (storage.influx.url)',
      );
    }
    if (diff.restart.length > 0) {
      this.logger.warn({ keys: diff.restart }, 'some changed keys take effect only after a restart');
    }
    return { applied: diff.hot, needRestart: diff.restart };
  }

  /**
   * Stops polling first (no new readings), then discovery, then drains the queue into SQLite within
   * `deadlineMs`, then the sinks, then closes the database. Idempotent: a second call returns the
   * same promise.
   */
  stop(deadlineMs: number = this.#config.shutdown.timeout): Promise<DaemonStatus | null> {
    this.#stopping ??= this.#stop(deadlineMs);
    return this.#stopping;
  }

  async #stop(deadlineMs: number): Promise<DaemonStatus | null> {
    const running = this.#running;
    if (this.#summaryTimer !== null) clearInterval(this.#summaryTimer);
    if (running === null) return null;
    const failed = (part: string, error: unknown) =>
      this.logger.error({ err: error, part }, 'error while stopping; continuing with the rest');
    await running.components.stop(deadlineMs, failed);
    const status = this.status();
    try {
      await running.store.stop();
    } catch (error) {
      failed('sqlite', error);
    }
    this.#logSummary('stopped', status);
    return status;
  }

  #logSummary(what: 'running' | 'stopped', status: DaemonStatus | null = this.status()): void {
    if (status === null) return;
    const { devices, queue, writer, poller, influx, retries } = status;
    this.logger.info(
      {
        plugsOnline: devices.online,
        plugsOffline: devices.offline,
        channels: devices.channels,
        pollsOk: poller.pollsOk,
        pollFailures: poller.rejected,
        queued: queue.size,
        readingsQueued: queue.offered,
        written: writer.written,
        duplicates: writer.duplicates,
        droppedOverflow: queue.dropped,
        droppedAtShutdown: writer.droppedAtShutdown,
        plugsBackedOff: poller.backoff.backingOff,
        retries: retries.retry_counts_by_operation,
        openBreakers: Object.entries(retries.operations)
          .filter(([, op]) => op.breaker.state !== 'closed')
          .map(([name]) => name),
        ...(influx === null
          ? {}
          : {
              influxWritten: influx.written,
              influxRejected: influx.rejected,
              influxQueued: influx.queued,
              influxLagMs: influx.lagMs,
            }),
      },
      what,
    );
  }
}

/**
 * Every reading accounted for, per sink. SQLite: what the poller offered to the queue is stored
 * (written, a replay included), dropped (queue overflow, shutdown deadline), rejected as malformed,
 * or still queued (in the queue or the batch being written). InfluxDB: see ForwarderStats.
 */
function sinkAccounting(
  q: DaemonStatus['queue'],
  w: DaemonStatus['writer'],
  f: DaemonStatus['influx'],
): Record<'sqlite' | 'influx', SinkAccounting | null> {
  return {
    sqlite: {
      added: q.offered,
      written: w.written + w.duplicates,
      dropped: q.dropped + w.droppedAtShutdown,
      rejected: w.invalid,
      queued: q.size + w.inFlight,
    },
    influx:
      f === null
        ? null
        : { added: f.added, written: f.written, dropped: f.dropped, rejected: f.rejected, queued: f.queued },
  };
}

/**
 * `next` with every restart-only key that changed put back to its running value, leaf by leaf, so
 * the daemon's view of its configuration stays truthful while hot keys in the same section apply.
 */
function keepRunningValues(current: Config, next: Config, restartKeys: readonly string[]): Config {
  const out = structuredClone(next) as unknown as Record<string, unknown>;
  for (const key of restartKeys) {
    const path = key.split('.');
    const leaf = path.pop();
    if (leaf === undefined) continue;
    let from: unknown = current;
    let to: unknown = out;
    for (const part of path) {
      from = (from as Record<string, unknown> | undefined)?.[part];
      to = (to as Record<string, unknown> | undefined)?.[part];
    }
    if (to !== null && typeof to === 'object') {
      (to as Record<string, unknown>)[leaf] = (from as Record<string, unknown> | undefined)?.[leaf];
    }
  }
  return out as unknown as Config;
}

/**
 * The scheduled backfill's options; null when backfill.enabled is false. Here rather than in
 * daemon-options.ts, which the backfill's targets import (that would be a cycle).
 */
function backfillOptions(config: Config): BackfillSchedulerOptions | null {
  if (!config.backfill.enabled) return null;
  return {
    dbPath: config.storage.sqlite.path,
    timeZone: config.time_zone,
    gapLimitMs: config.storage.rollups.gap_limit,
    intervalMs: config.backfill.interval,
    request: { transport: config.polling.transport, timeoutMs: config.polling.timeout },
  };
}
