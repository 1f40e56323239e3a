/**
 * The supervisor: runs every health check on an interval, aggregates them into the daemon's status,
 * turns lasting problems into alerts, and acts (recovery with bounded backoff, escalation to a
 * non-zero exit when a restart is the only fix left). /health and `kasa-monitor status` show its
 * report.
 */
import type { HealthConfig } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { ExecutionPolicy, RetryStatistics } from '../resilience/index.js';
import type { PoolStats } from '../storage/sqlite/index.js';
import { type AlertStats, Alerts } from './alerts.js';
import type { CheckedStatus } from './checks.js';
import { type CheckLimits, createChecks, type HealthInputs } from './checks.js';
import { EventLoopLag } from './event-loop.js';
import { type DatabaseIncident, DatabaseIncidents } from './incidents.js';
import { type Quarantined, quarantineDatabase } from './quarantine.js';
import { Recovery, type RecoveryExhaustedError, type RecoveryState } from './recovery.js';
import {
  type CheckReport,
  type CheckResult,
  type CheckStatus,
  degraded,
  type HealthCheck,
  type RecoveryName,
  worstStatus,
} from './types.js';

export interface SupervisorOptions extends CheckLimits {
  readonly intervalMs: number;
  readonly alertAfter: number;
  readonly webhookUrl: string | null;
  readonly recoveryAttempts: number;
  readonly recoveryBackoffMs: number;
  readonly recoveryBackoffMaxMs: number;
}

export function supervisorOptions(health: HealthConfig): SupervisorOptions {
  return {
    intervalMs: health.interval,
    alertAfter: health.alert_after,
    webhookUrl: health.webhook_url,
    quickCheckIntervalMs: health.quick_check_interval,
    minFreeDiskMb: health.min_free_disk_mb,
    maxWalMb: health.max_wal_mb,
    maxEventLoopLagMs: health.max_event_loop_lag,
    maxMemoryMb: health.max_memory_mb,
    maxPollErrorRate: health.max_poll_error_rate,
    maxInfluxLagMs: health.max_influx_lag,
    recoveryAttempts: health.recovery_attempts,
    recoveryBackoffMs: health.recovery_backoff,
    recoveryBackoffMaxMs: health.recovery_backoff_max,
  };
}

/** The parts the supervisor can act on. */
export interface SupervisorTargets {
  readonly store: { readonly state: string; reopen(): Promise<void>; stop(): Promise<void> };
  readonly readers: {
    ping(): Promise<{ readonly channels: number; readonly ms: number }>;
    quickCheck(): Promise<string[]>;
    stats(): PoolStats;
    reopen(): Promise<void>;
    suspend(): Promise<void>;
    resume(): Promise<void>;
  };
  readonly discovery: { stop(): Promise<void>; start(): void };
  readonly poller: { stop(): Promise<void>; start(): void };
  /** The InfluxDB forwarder's client; absent without InfluxDB. */
  readonly influx?: { recreateClient(): void };
}

export interface SupervisorDeps {
  /** The daemon's status (without the health report). */
  readonly status: () => CheckedStatus | null;
  readonly databasePath: string;
  readonly influxUrl: () => string | null;
  readonly pollIntervalMs: () => number;
  readonly discoveryIntervalMs: () => number;
  readonly targets: SupervisorTargets;
  readonly options: SupervisorOptions;
  readonly logger: Logger;
  /** The network policy for webhook deliveries. */
  readonly webhookPolicy?: ExecutionPolicy;
  /** Called when recovery is exhausted for a problem a restart could fix: the daemon must exit non-zero. */
  readonly onExhausted: (error: RecoveryExhaustedError) => void;
  /** Test hooks. */
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** Replaces the standard checks (tests of the supervisor's own logic). */
  readonly checks?: readonly HealthCheck[];
}

export interface PerformanceReport {
  readonly event_loop_lag_ms: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly poll_duration_ms: {
    readonly p50: number | null;
    readonly p99: number | null;
    readonly max: number;
  };
  readonly commit_latency_ms: {
    readonly p50: number | null;
    readonly p99: number | null;
    readonly max: number;
  };
  /** Readings committed to SQLite per second over the last check interval. */
  readonly readings_per_second: number;
  /** CPU used over the last check interval, in % of one core. */
  readonly cpu_percent: number;
  readonly rss_bytes: number;
  readonly heap_used_bytes: number;
}

export interface HealthReport {
  readonly status: CheckStatus;
  /** One line: the worst problems, or "all checks ok". */
  readonly summary: string;
  readonly checked_at: string | null;
  readonly started_at: string;
  readonly uptime_s: number;
  readonly checks: Readonly<Record<string, CheckReport>>;
  readonly database: {
    readonly path: string;
    /** The writer's connection: open, failed (worker died), stopped, ... */
    readonly writer: string;
    /** Reader connections: pool (workers), single (fallback on the main thread), unavailable. */
    readonly readers: string;
    readonly readers_fallback_reason: string | null;
    readonly quarantined: readonly {
      readonly moved_to: string;
      readonly at: string;
      readonly reason: string;
    }[];
    /** Incidents (a database moved aside or removed) not yet acknowledged: the `database` check. */
    readonly incidents: readonly DatabaseIncident[];
  };
  readonly pool: Readonly<Record<string, unknown>>;
  readonly retries: RetryStatistics | null;
  readonly performance: PerformanceReport;
  readonly alerts: AlertStats;
  readonly recovery: Partial<Record<RecoveryName, RecoveryState>>;
}

function poolReport(s: PoolStats): Record<string, unknown> {
  return {
    mode: s.mode,
    fallback_reason: s.fallbackReason,
    size: s.size,
    max_overflow: s.maxOverflow,
    timeout_ms: s.timeoutMs,
    recycle_ms: s.recycleMs,
    in_use: s.inUse,
    idle: s.idle,
    waiting: s.waiting,
    open: s.open,
    utilisation: Math.round((s.inUse / (s.mode === 'single' ? 1 : s.size + s.maxOverflow)) * 1000) / 1000,
    peak_in_use: s.peakInUse,
    acquisitions: s.acquisitions,
    opened: s.opened,
    closed: s.closed,
    recycled: s.recycled,
    timeouts: s.timeouts,
    failed_opens: s.failedOpens,
    max_wait_ms: s.maxWaitMs,
  };
}

/** A check that does not answer within this long counts as degraded for that run. */
const CHECK_TIMEOUT_MS = 15_000;

export class Supervisor {
  readonly name = 'supervisor';
  #options: SupervisorOptions;
  readonly #deps: SupervisorDeps;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #lag = new EventLoopLag();
  readonly #checks: readonly HealthCheck[];
  readonly alerts: Alerts;
  readonly recovery: Recovery;
  readonly #startedMs: number;
  #timer: NodeJS.Timeout | null = null;
  #cycle: Promise<void> | null = null;
  #reports: Record<string, CheckReport> = {};
  #status: CheckStatus = 'ok';
  #checkedAtMs: number | null = null;
  #stopped = false;
  readonly #quarantined: { moved_to: string; at: string; reason: string }[] = [];
  readonly #incidents = new DatabaseIncidents();
  #previousCycle: { atMs: number; written: number; cpu: NodeJS.CpuUsage } | null = null;
  #rate = { readingsPerSecond: 0, cpuPercent: 0 };

  constructor(deps: SupervisorDeps) {
    this.#deps = deps;
    this.#options = deps.options;
    this.#logger = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.#startedMs = this.#now();
    this.alerts = new Alerts(
      { alertAfter: deps.options.alertAfter, webhookUrl: deps.options.webhookUrl },
      deps.logger.child({ part: 'alerts' }),
      deps.webhookPolicy,
    );
    const t = deps.targets;
    this.recovery = new Recovery(
      {
        'reopen-sqlite': async () => {
          await t.store.reopen();
          await t.readers.reopen();
        },
        'quarantine-database': () => this.#quarantine('quick_check or a query found the database corrupt'),
        'reopen-readers': () => t.readers.reopen(),
        'restart-discovery': async () => {
          await t.discovery.stop();
          t.discovery.start();
        },
        'restart-scheduler': async () => {
          await t.poller.stop();
          t.poller.start();
        },
        ...(t.influx === undefined
          ? {}
          : { 'recreate-influx-client': async () => t.influx?.recreateClient() }),
      },
      this.#recoveryOptions(deps.options),
      deps.logger.child({ part: 'recovery' }),
      deps.onExhausted,
    );
    const inputs: HealthInputs = {
      status: deps.status,
      databasePath: deps.databasePath,
      storeState: () => t.store.state,
      readers: t.readers,
      influxUrl: deps.influxUrl,
      pollIntervalMs: deps.pollIntervalMs,
      discoveryIntervalMs: deps.discoveryIntervalMs,
      lag: this.#lag,
      limits: () => this.#options,
    };
    this.#checks = deps.checks ?? [...createChecks(inputs, deps.fetch ?? fetch), this.#incidents.check()];
  }

  /** Runs the first round of checks now, then every interval. */
  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    void this.refresh();
    this.#arm();
  }

  /** The overall result of the latest round of checks (report() has the details). */
  stats(): { readonly status: CheckStatus; readonly checkedAtMs: number | null } {
    return { status: this.#status, checkedAtMs: this.#checkedAtMs };
  }

  /** Runs every check now (or joins the run in progress) and returns the report. */
  async refresh(): Promise<HealthReport> {
    this.#cycle ??= this.#runCycle().finally(() => {
      this.#cycle = null;
    });
    await this.#cycle;
    return this.report();
  }

  /** The latest results with the current pool, retry and performance figures. */
  report(): HealthReport {
    const status = this.#deps.status();
    const pool = this.#deps.targets.readers.stats();
    const lag = this.#lag.last;
    const memory = process.memoryUsage();
    const bad = Object.entries(this.#reports).filter(([, r]) => r.status !== 'ok');
    bad.sort(([, a], [, b]) => (a.status === b.status ? 0 : a.status === 'failed' ? -1 : 1));
    return {
      status: this.#status,
      summary:
        this.#checkedAtMs === null
          ? 'starting: no checks have run yet'
          : bad.length === 0
            ? 'all checks ok'
            : bad.map(([name, r]) => `${name}: ${r.reason}`).join('; '),
      checked_at: this.#checkedAtMs === null ? null : new Date(this.#checkedAtMs).toISOString(),
      started_at: new Date(this.#startedMs).toISOString(),
      uptime_s: Math.round((this.#now() - this.#startedMs) / 1000),
      checks: this.#reports,
      database: {
        path: this.#deps.databasePath,
        writer: this.#deps.targets.store.state,
        readers: pool.mode,
        readers_fallback_reason: pool.fallbackReason,
        quarantined: [...this.#quarantined],
        incidents: [...this.#incidents.open],
      },
      pool: poolReport(pool),
      retries: status?.retries ?? null,
      performance: {
        event_loop_lag_ms: { p50: lag.p50Ms, p99: lag.p99Ms, max: lag.maxMs },
        poll_duration_ms: {
          p50: status?.poller?.pollDuration.p50Ms ?? null,
          p99: status?.poller?.pollDuration.p99Ms ?? null,
          max: status?.poller?.pollDuration.maxMs ?? 0,
        },
        commit_latency_ms: {
          p50: status?.writer?.commitLatency.p50Ms ?? null,
          p99: status?.writer?.commitLatency.p99Ms ?? null,
          max: status?.writer?.commitLatency.maxMs ?? 0,
        },
        readings_per_second: this.#rate.readingsPerSecond,
        cpu_percent: this.#rate.cpuPercent,
        rss_bytes: memory.rss,
        heap_used_bytes: memory.heapUsed,
      },
      alerts: this.alerts.stats(),
      recovery: this.recovery.stats(),
    };
  }

  /** Records a database moved aside at start (before the supervisor existed) and raises its alert. */
  quarantinedAtStart(quarantined: Quarantined, reason: string): void {
    this.#recordQuarantine(quarantined, reason);
  }

  /**
   * The database file was removed while open and the store continued in a new one: an incident that
   * stays on /health (the `database` check, degraded, with its alert open) until acknowledged.
   */
  databaseReplaced(path: string, reason: string): void {
    const atMs = this.#now();
    this.#incidents.add({ kind: 'removed', file: path, at: new Date(atMs).toISOString(), reason });
    this.alerts.incident(
      'database',
      'degraded',
      `the database file ${path} was removed while the daemon was running (${reason}); readings continue in a new database at ${path}`,
      { path },
    );
  }

  /**
   * The operator saw the database incidents (`kasa-monitor ack`, POST /api/ack): the `database`
   * check is ok again and its alert resolved. Returns what was acknowledged and the fresh report.
   */
  async acknowledge(): Promise<{ acknowledged: readonly DatabaseIncident[]; report: HealthReport }> {
    const acknowledged = this.#incidents.acknowledge();
    if (acknowledged.length > 0) {
      this.#logger.info(
        { incidents: acknowledged.map((i) => i.file) },
        `database incidents acknowledged: ${acknowledged.map((i) => i.file).join(', ')}`,
      );
    }
    const report = await this.refresh();
    return { acknowledged, report };
  }

  reconfigure(options: SupervisorOptions): void {
    const intervalChanged = options.intervalMs !== this.#options.intervalMs;
    this.#options = options;
    this.alerts.setOptions({ alertAfter: options.alertAfter, webhookUrl: options.webhookUrl });
    this.recovery.setOptions(this.#recoveryOptions(options));
    if (intervalChanged && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
      this.#arm();
    }
  }

  /** Stops checking; waits for the run, recovery actions and webhook deliveries in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#cycle;
    await this.recovery.settle();
    await this.alerts.flush();
    this.#lag.stop();
  }

  #arm(): void {
    this.#timer = setInterval(() => {
      void this.refresh();
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  #recoveryOptions(options: SupervisorOptions) {
    return {
      attempts: options.recoveryAttempts,
      backoffMs: options.recoveryBackoffMs,
      backoffMaxMs: options.recoveryBackoffMaxMs,
    };
  }

  async #runCycle(): Promise<void> {
    if (this.#stopped) return;
    const nowMs = this.#now();
    const results = await Promise.all(
      this.#checks.map(async (check): Promise<[string, CheckResult, number]> => {
        const started = performance.now();
        let result: CheckResult;
        try {
          result = await withTimeout(Promise.resolve(check.run(nowMs)), CHECK_TIMEOUT_MS);
        } catch (error) {
          result = degraded(
            `the check itself failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        return [check.name, result, performance.now() - started];
      }),
    );
    if (this.#stopped) return;
    const requested = new Set<RecoveryName>();
    const reports: Record<string, CheckReport> = {};
    for (const [name, result, durationMs] of results) {
      const tracked = this.alerts.observe(name, result, nowMs);
      reports[name] = {
        status: result.status,
        reason: result.reason,
        details: result.details ?? {},
        since: new Date(tracked.since).toISOString(),
        consecutive_bad: tracked.bad,
        alerting: tracked.alerting,
        recovery: result.status === 'ok' ? null : (result.recovery ?? null),
        checked_at: new Date(nowMs).toISOString(),
        duration_ms: Math.round(durationMs * 10) / 10,
      };
      if (result.status !== 'ok' && result.recovery !== undefined && this.recovery.has(result.recovery)) {
        if (!requested.has(result.recovery)) {
          requested.add(result.recovery);
          void this.recovery.request(result.recovery, name, result.reason, result.escalate === true, nowMs);
        }
      }
    }
    for (const action of [
      'reopen-sqlite',
      'quarantine-database',
      'reopen-readers',
      'restart-discovery',
      'restart-scheduler',
      'recreate-influx-client',
    ] as const) {
      if (!requested.has(action)) this.recovery.clear(action);
    }
    const status = worstStatus(results.map(([, r]) => r.status));
    if (status !== this.#status || this.#checkedAtMs === null) {
      const bad = results.filter(([, r]) => r.status !== 'ok').map(([name, r]) => `${name}: ${r.reason}`);
      if (status === 'ok') this.#logger.info({ status }, 'health: all checks ok');
      else this.#logger.warn({ status, problems: bad }, `health: ${status}: ${bad.join('; ')}`);
    }
    this.#status = status;
    this.#reports = reports;
    this.#checkedAtMs = nowMs;
    this.#measureRates(nowMs);
  }

  #measureRates(nowMs: number): void {
    const written = this.#deps.status()?.writer?.written ?? 0;
    const cpu = process.cpuUsage();
    const previous = this.#previousCycle;
    if (previous !== null && nowMs > previous.atMs) {
      const seconds = (nowMs - previous.atMs) / 1000;
      const used = process.cpuUsage(previous.cpu);
      this.#rate = {
        readingsPerSecond: Math.round(((written - previous.written) / seconds) * 10) / 10,
        cpuPercent: Math.round(((used.user + used.system) / 1e6 / seconds) * 1000) / 10,
      };
    }
    this.#previousCycle = { atMs: nowMs, written, cpu };
  }

  /** Moves the corrupt database aside and opens a fresh one; the alert says where the old one went. */
  async #quarantine(reason: string): Promise<void> {
    const t = this.#deps.targets;
    // Every connection closed first: SQLite finds -wal/-shm by name, so a connection left open on
    // the renamed file would later touch the fresh file's.
    await t.readers.suspend();
    await t.store.stop();
    let quarantined: Quarantined;
    try {
      quarantined = quarantineDatabase(this.#deps.databasePath, this.#now());
    } finally {
      // Whatever happened, the writer gets a connection again (to the fresh file, or the old one).
      await t.store.reopen();
      await t.readers.resume();
    }
    this.#recordQuarantine(quarantined, reason);
  }

  #recordQuarantine(quarantined: Quarantined, reason: string): void {
    this.#quarantined.push({
      moved_to: quarantined.movedTo,
      at: new Date(quarantined.atMs).toISOString(),
      reason,
    });
    this.#incidents.add({
      kind: 'quarantined',
      file: quarantined.movedTo,
      at: new Date(quarantined.atMs).toISOString(),
      reason,
    });
    this.alerts.incident(
      'database',
      'failed',
      `the database was corrupt (${reason}): moved to ${quarantined.movedTo}; a fresh database was created`,
      { moved_to: quarantined.movedTo, files: quarantined.files.map(([from, to]) => ({ from, to })) },
    );
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
