import { BackfillScheduler } from './backfill/scheduler.js';
import { diffConfig } from './config/diff.js';
import type { Config } from './config/index.js';
import { redactConfig } from './config/redact.js';
import { configSummary } from './config/summary.js';
import {
  discoveryOptions,
  forwarderOptions,
  influxClientOptions,
  lifecycleOptions,
  mqttOptions,
  pollerOptions,
  queueOptions,
  sqliteOptions,
  writerOptions,
} from './daemon-options.js';
import type { DaemonStatus, SinkAccounting } from './daemon-status.js';
import { Discovery } from './discovery/discovery.js';
import type { Reading } from './domain/reading.js';
import { EnergyCostTotals, type EnergySettingsNow, HttpServer, LatestReadings } from './http/index.js';
import { listenFailure } from './http/listen-error.js';
import type { Logger } from './log/logger.js';
import { Poller } from './poller/poller.js';
import { BoundedQueue } from './queue/bounded-queue.js';
import { presetSettings, Resilience } from './resilience/index.js';
import { InfluxForwarder, InfluxHttpWriter, safeUrl } from './storage/influx/index.js';
import { DataLifecycle } from './storage/lifecycle.js';
import { MqttPublisher, safeMqttUrl } from './storage/mqtt/index.js';
import { SqliteStore } from './storage/sqlite/index.js';
import { ReaderPool } from './storage/sqlite/reader-pool.js';
import { Writer } from './storage/writer.js';
import {
  type HealthReport,
  type StartedStore,
  Supervisor,
  startStore,
  supervisorOptions,
} from './supervisor/index.js';

/** Re-exported for callers of the composition root (tests, scripts); parts import ./daemon-status.js. */
export type { DaemonStatus, SinkAccounting } from './daemon-status.js';

export interface ReloadResult {
  /** Keys whose new value is now in effect. */
  readonly applied: readonly string[];
  /** Keys that changed in the file but take effect only after a restart. */
  readonly needRestart: readonly string[];
}

interface Parts {
  readonly store: SqliteStore;
  readonly queue: BoundedQueue<Reading>;
  readonly writer: Writer;
  readonly discovery: Discovery;
  readonly poller: Poller;
  readonly resilience: Resilience;
  readonly forwarder: InfluxForwarder | null;
  readonly lifecycle: DataLifecycle;
}

/** The supervisor's parts: started after the pipeline, stopped before it. */
interface Supervision {
  readonly readers: ReaderPool;
  readonly supervisor: Supervisor;
  readonly http: HttpServer;
  /** Scheduled gap fills from the plugs' statistics; null when backfill.enabled is false. */
  readonly backfill: BackfillScheduler | null;
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
 * assign; start() brings the parts up in dependency order (storage first, so nothing is polled that
 * could not be stored) and stop() takes them down in reverse, each step guarded so a failing stop
 * never prevents the others (above all, the queue still drains into SQLite).
 */
export class Daemon {
  #config: Config;
  #parts: Parts | null = null;
  #summaryTimer: NodeJS.Timeout | null = null;
  #stopping: Promise<DaemonStatus | null> | null = null;
  #supervision: Supervision | null = null;
  /** The MQTT sink; a reload may switch it on or off, so it is not one of the fixed parts. */
  #mqtt: MqttPublisher | null = null;
  /** Each channel's cost so far, shared by /metrics and MQTT; set once the readers run. */
  #energyCosts: EnergyCostTotals | null = null;

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
    if (this.#parts !== null) return;
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
    const writer = new Writer(
      queue,
      store,
      writerOptions(config),
      log.child({ component: 'writer' }),
      undefined,
      resilience.policy('sqlite.write', 'database'),
    );
    // Retention, the disk budget and scheduled backups (the work itself runs in the writer worker).
    const lifecycle = new DataLifecycle(
      store,
      lifecycleOptions(config),
      log.child({ component: 'lifecycle' }),
      resilience.policy('lifecycle.file', 'file'),
    );
    const influx = influxClientOptions(config);
    const forwarder =
      influx === null
        ? null
        : new InfluxForwarder(
            store,
            new InfluxHttpWriter(influx, log.child({ component: 'influx' })),
            resilience.policy('influx.write', 'network'),
            forwarderOptions(config),
            log.child({ component: 'influx' }),
          );
    const discovery = new Discovery(discoveryOptions(config), log.child({ component: 'discovery' }));
    const latest = new LatestReadings();
    const poller = new Poller(
      discovery.registry,
      latest.tee(queue),
      pollerOptions(config),
      log.child({ component: 'poller' }),
    );
    this.#parts = { store, queue, writer, discovery, poller, resilience, forwarder, lifecycle };

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
    writer.onCommit((batch) => this.#mqtt?.committed(batch));
    registry.on('added', (d) => this.#mqtt?.deviceChanged(d.id));
    registry.on('online', (d) => this.#mqtt?.deviceChanged(d.id));
    registry.on('offline', (d) => this.#mqtt?.deviceChanged(d.id));
    registry.on('channels', (channels) => {
      const first = channels[0];
      if (first !== undefined) this.#mqtt?.deviceChanged(first.parentId ?? first.id);
    });
    registry.on('online', (d) => {
      log.info({ deviceId: d.id, alias: d.alias, host: d.host }, 'plug back online');
      // Discovery heard it: a backed-off plug gets its trial poll on the next tick.
      poller.wake(d.id);
    });

    writer.start();
    lifecycle.start();
    await forwarder?.start();
    this.#startMqtt(config);
    poller.start();
    discovery.start();
    await this.#startSupervision(this.#parts, latest, quarantined);
    this.#summaryTimer = setInterval(() => this.#logSummary('running'), SUMMARY_INTERVAL_MS);
    this.#summaryTimer.unref();
    log.info(
      { database: config.storage.sqlite.path, broadcast: discoveryOptions(config).broadcast },
      'started: discovering plugs and polling',
    );
  }

  /** The supervisor's latest report (checks, pool, retries, performance); null before start. */
  health(): HealthReport | null {
    return this.#supervision?.supervisor.report() ?? null;
  }

  /** Runs every health check now and returns the report; null before start. */
  async refreshHealth(): Promise<HealthReport | null> {
    return (await this.#supervision?.supervisor.refresh()) ?? null;
  }

  /** Where /health, /metrics and /api listen; null when not listening. */
  get httpAddress(): { host: string; port: number } | null {
    return this.#supervision?.http.address ?? null;
  }

  /** Local days, the gap limit and the tariff as configured now (a reload applies a new tariff). */
  #energySettings(): EnergySettingsNow {
    return {
      timeZone: this.#config.time_zone,
      gapLimitMs: this.#config.storage.rollups.gap_limit,
      tariff: this.#config.tariff,
    };
  }

  /** The reader pool, the supervisor and the HTTP endpoint: started last, stopped first. */
  async #startSupervision(
    parts: Parts,
    latest: LatestReadings,
    quarantined: StartedStore<SqliteStore>['quarantined'],
  ): Promise<void> {
    const config = this.#config;
    const log = this.logger;
    const pool = config.storage.pool;
    const readers = new ReaderPool(
      {
        path: config.storage.sqlite.path,
        size: pool.size,
        maxOverflow: pool.max_overflow,
        timeoutMs: pool.timeout,
        recycleMs: pool.recycle,
      },
      log.child({ component: 'readers' }),
    );
    await readers.start();
    this.#energyCosts = new EnergyCostTotals({
      report: (query, settings) => readers.energyReport(query, settings),
      settings: () => this.#energySettings(),
    });
    const supervisor = new Supervisor({
      status: () => this.status(),
      databasePath: config.storage.sqlite.path,
      influxUrl: () => this.#config.storage.influx.url,
      pollIntervalMs: () => this.#config.polling.interval,
      discoveryIntervalMs: () => this.#config.discovery.interval,
      targets: {
        store: parts.store,
        readers,
        discovery: parts.discovery,
        poller: parts.poller,
        ...(parts.forwarder === null
          ? {}
          : { influx: { recreateClient: () => this.#recreateInfluxClient() } }),
      },
      options: supervisorOptions(config.health),
      logger: log.child({ component: 'supervisor' }),
      webhookPolicy: parts.resilience.policy('alert.webhook', 'network'),
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
    const http = new HttpServer(
      {
        status: () => this.status(),
        health: () => supervisor.report(),
        refreshHealth: () => supervisor.refresh(),
        acknowledge: () => supervisor.acknowledge(),
        devices: () => parts.discovery.registry.snapshot(),
        latest,
        pool: () => readers.stats(),
        readers,
        energyCosts: this.#energyCosts,
        energySettings: () => this.#energySettings(),
      },
      {
        ...config.http.listen,
        writeTimeoutMs: config.http.write_timeout,
        auth:
          config.http.auth.username === null
            ? null
            : {
                username: config.http.auth.username,
                password: config.http.auth.password ?? '',
                publicPaths: config.http.public_metrics ? ['/health', '/metrics'] : [],
              },
        energy: () => this.#energySettings(),
      },
      log.child({ component: 'http' }),
    );
    const backfill = config.backfill.enabled
      ? new BackfillScheduler(
          {
            dbPath: config.storage.sqlite.path,
            timeZone: config.time_zone,
            gapLimitMs: config.storage.rollups.gap_limit,
            intervalMs: config.backfill.interval,
            request: { transport: config.polling.transport, timeoutMs: config.polling.timeout },
          },
          parts.discovery.registry,
          log.child({ component: 'backfill' }),
        )
      : null;
    this.#supervision = { readers, supervisor, http, backfill };
    if (quarantined !== null) supervisor.quarantinedAtStart(quarantined.files, quarantined.reason);
    // The database file was removed while open and the store went on in a new one: the readers
    // follow it, the plugs' names are stored again, and /health keeps it visible until acknowledged.
    parts.store.onReplaced(({ path, reason }) => {
      supervisor.databaseReplaced(path, reason);
      readers.reopen().catch((error: unknown) => log.error({ err: error }, 'could not reopen the readers'));
      parts.store
        .upsertChannels(parts.discovery.registry.channels())
        .catch((error: unknown) => log.error({ err: error }, 'could not store device names again'));
    });
    if ((await http.start()) === null) {
      throw listenFailure(config.http.listen.host, config.http.listen.port, http.error);
    }
    supervisor.start();
    backfill?.start();
  }

  status(): DaemonStatus | null {
    const p = this.#parts;
    if (p === null) return null;
    return {
      devices: p.discovery.registry.counts(),
      discovery: p.discovery.stats(),
      poller: p.poller.stats(),
      queue: p.queue.stats(),
      writer: p.writer.stats(),
      influx: p.forwarder?.stats() ?? null,
      retries: p.resilience.stats(),
      accounting: sinkAccounting(p),
      lifecycle: p.lifecycle.stats(),
      mqtt: this.#mqtt?.stats() ?? null,
    };
  }

  /** Starts the MQTT publisher when mqtt.url is set (it connects, and reconnects, by itself). */
  #startMqtt(config: Config): void {
    const options = mqttOptions(config);
    const registry = this.#parts?.discovery.registry;
    if (options === null || registry === undefined || this.#mqtt !== null) return;
    this.#mqtt = new MqttPublisher(options, registry, this.logger.child({ component: 'mqtt' }), {
      totals: () =>
        this.#energyCosts?.totals() ?? Promise.reject(new Error('the readers are not started yet')),
    });
    this.#mqtt.start();
  }

  /** A reload: MQTT switched on or off, or its settings applied in place (see MqttPublisher.setOptions). */
  #reloadMqtt(config: Config): void {
    const options = mqttOptions(config);
    const running = this.#mqtt;
    if (running !== null && options === null) {
      this.#mqtt = null;
      void running
        .stop()
        .catch((error: unknown) => this.logger.error({ err: error }, 'stopping MQTT failed'));
      this.logger.info('MQTT switched off by a reload');
    } else if (running === null && options !== null) {
      this.#startMqtt(config);
      this.logger.info({ url: safeMqttUrl(options.url) }, 'MQTT switched on by a reload');
    } else if (running !== null && options !== null) {
      running.setOptions(options);
    }
  }

  /**
   * Applies a new, already validated configuration. Keys tagged `hot` take effect now; the others
   * are named so the user knows a restart is needed. Queued readings are kept.
   */
  reload(next: Config): ReloadResult {
    const current = this.#config;
    const diff = diffConfig(current, next);
    // Restart-only keys keep their running values, so the daemon's view stays truthful and the
    // parts below are given only what a reload may change.
    const effective = keepRunningValues(current, next, diff.restart);
    const p = this.#parts;
    if (p !== null) {
      const touched = (section: string) => diff.hot.some((k) => k.startsWith(`${section}.`));
      if (touched('discovery')) p.discovery.setOptions(discoveryOptions(effective));
      if (touched('polling')) p.poller.setOptions(pollerOptions(effective));
      if (touched('queue')) p.queue.resize(effective.queue.capacity, effective.queue.overflow);
      if (touched('writer')) p.writer.setOptions(writerOptions(effective));
      if (touched('retry')) this.#reloadRetry(p, effective);
      if (touched('storage.influx') || touched('retry')) this.#reloadInflux(p, current, effective, diff.hot);
      if (touched('mqtt') || touched('storage.rollups') || touched('tariff')) this.#reloadMqtt(effective);
      if (touched('health')) this.#supervision?.supervisor.setOptions(supervisorOptions(effective.health));
      if (touched('storage.retention') || touched('storage.backup'))
        p.lifecycle.setOptions(lifecycleOptions(effective));
    }
    if (diff.hot.includes('log.level')) this.logger.level = effective.log.level;
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
   * The supervisor's `recreate-influx-client` action: a fresh client (new HTTP connections) for the
   * running configuration, then a trial write at once. The outbox cursor stays where it is.
   */
  #recreateInfluxClient(): void {
    const p = this.#parts;
    const options = influxClientOptions(this.#config);
    if (p?.forwarder == null || options === null) return;
    const log = this.logger.child({ component: 'influx' });
    p.forwarder.setLineWriter(new InfluxHttpWriter(options, log));
    p.forwarder.resume();
    log.warn({ url: safeUrl(options.url) }, 'InfluxDB client recreated by the supervisor');
  }

  /** New retry and breaker settings for every operation, in place (see Resilience.reconfigure). */
  #reloadRetry(p: Parts, config: Config): void {
    const changed = p.resilience.reconfigure(presetSettings(config.retry));
    // A forwarder waiting out a failure or an open breaker asks the policy again at once.
    if (changed.includes('influx.write')) p.forwarder?.resume();
  }

  /**
   * Batch size, interval and tags go to the forwarder; a changed URL, token, org, bucket, gzip or
   * request timeout gives it a new writer. The outbox cursor is kept: nothing is lost or sent twice.
   * A new destination (URL, token, org, bucket) also starts with a closed breaker: the old one's
   * outage says nothing about it.
   */
  #reloadInflux(p: Parts, current: Config, config: Config, hot: readonly string[]): void {
    const forwarder = p.forwarder;
    if (forwarder === null) return;
    const { tags, ...options } = forwarderOptions(config);
    forwarder.setOptions(hot.includes('storage.influx.tags') ? { ...options, tags } : options);
    const before = influxClientOptions(current);
    const after = influxClientOptions(config);
    if (after === null || JSON.stringify(before) === JSON.stringify(after)) return;
    const destination = ['url', 'token', 'org', 'bucket'] as const;
    if (before === null || destination.some((key) => before[key] !== after[key])) {
      p.resilience.policy('influx.write', 'network').reset('a reload changed the InfluxDB destination');
    }
    const log = this.logger.child({ component: 'influx' });
    forwarder.setLineWriter(new InfluxHttpWriter(after, log));
    log.info(
      {
        url: safeUrl(after.url),
        org: after.org,
        bucket: after.bucket,
        gzip: after.gzip,
        cursor: forwarder.stats().cursor,
      },
      'InfluxDB writer replaced by a reload; forwarding goes on from the same outbox position',
    );
  }

  /**
   * Stops polling first (no new readings), then discovery, then drains the queue into SQLite within
   * `deadlineMs`, then closes the database. Idempotent: a second call returns the same promise.
   */
  stop(deadlineMs: number = this.#config.shutdown.timeout): Promise<DaemonStatus | null> {
    this.#stopping ??= this.#stop(deadlineMs);
    return this.#stopping;
  }

  async #stop(deadlineMs: number): Promise<DaemonStatus | null> {
    const p = this.#parts;
    if (this.#summaryTimer !== null) clearInterval(this.#summaryTimer);
    if (p === null) return null;
    const started = Date.now();
    const step = async (name: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (error) {
        this.logger.error({ err: error, part: name }, 'error while stopping; continuing with the rest');
      }
    };
    const s = this.#supervision;
    await step('backfill', () => s?.backfill?.stop());
    await step('http', () => s?.http.stop());
    await step('supervisor', () => s?.supervisor.stop());
    await step('poller', () => p.poller.stop());
    await step('discovery', () => p.discovery.stop());
    await step('lifecycle', () => p.lifecycle.stop());
    await step('writer', () => p.writer.stop(Math.max(0, deadlineMs - (Date.now() - started))));
    // What InfluxDB has not acknowledged stays in SQLite and is sent after the next start.
    await step('influx', () => p.forwarder?.stop());
    // After the writer: the last committed states go out, then `offline` on the status topic.
    await step('mqtt', () => this.#mqtt?.stop());
    const status = this.status();
    await step('readers', () => s?.readers.stop());
    await step('sqlite', () => p.store.stop());
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
function sinkAccounting(p: Parts): Record<'sqlite' | 'influx', SinkAccounting | null> {
  const q = p.queue.stats();
  const w = p.writer.stats();
  const f = p.forwarder?.stats() ?? null;
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
