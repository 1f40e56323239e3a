/**
 * One health check per part of the daemon. Each reads the part's own statistics (and, for SQLite and
 * InfluxDB, asks the resource itself) and answers ok / degraded / failed with a reason. Counters
 * that only grow (missed ticks, drops, poll failures) are judged by what changed since the previous
 * run, so an old incident does not keep a check bad forever.
 */
import { stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DaemonStatus } from '../daemon-status.js';

/** What the health checks read of the daemon's status. */
export type CheckedStatus = Pick<
  DaemonStatus,
  'devices' | 'discovery' | 'poller' | 'queue' | 'writer' | 'influx' | 'retries' | 'mqtt'
>;

import { isStorageError } from '../storage/errors.js';
import type { PoolStats } from '../storage/sqlite/index.js';
import { displayUrl } from './alerts.js';
import type { EventLoopLag } from './event-loop.js';
import { isCorruptionError } from './quarantine.js';
import { type CheckResult, degraded, failed, type HealthCheck, ok } from './types.js';

const MiB = 1024 * 1024;

export interface CheckLimits {
  readonly minFreeDiskMb: number;
  readonly maxWalMb: number;
  readonly maxEventLoopLagMs: number;
  readonly maxMemoryMb: number;
  readonly maxPollErrorRate: number;
  readonly maxInfluxLagMs: number;
  /** 0: quick_check only at the first run. */
  readonly quickCheckIntervalMs: number;
}

/** What the checks read. Functions, so they always see the daemon's current parts. */
export interface HealthInputs {
  status(): CheckedStatus | null;
  readonly databasePath: string;
  /** The writer connection's state: new, starting, open, stopped, failed. */
  storeState(): string;
  readonly readers: {
    ping(): Promise<{ readonly channels: number; readonly ms: number }>;
    quickCheck(): Promise<string[]>;
    stats(): PoolStats;
  };
  /** InfluxDB base URL now (a reload may change it); null when not configured. */
  influxUrl(): string | null;
  pollIntervalMs(): number;
  discoveryIntervalMs(): number;
  readonly lag: EventLoopLag;
  limits(): CheckLimits;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): string | null {
  if (isStorageError(error)) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** SQLite: the writer's connection, a query through the reader pool, the writer's recent errors. */
function sqliteCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'sqlite',
    async run(nowMs) {
      const state = inputs.storeState();
      const status = inputs.status();
      const w = status?.writer ?? null;
      const details: Record<string, unknown> = {
        path: inputs.databasePath,
        writer: state,
        last_commit_ms_ago: w?.lastCommitAtMs == null ? null : nowMs - w.lastCommitAtMs,
        held_readings: w?.inFlight ?? 0,
        last_error: w?.lastError ?? null,
      };
      if (state === 'failed' || state === 'stopped' || state === 'new') {
        return failed(
          `the writer's connection is ${state === 'failed' ? 'lost (its worker died)' : state}; readings wait in the queue`,
          details,
          { recovery: 'reopen-sqlite', escalate: true },
        );
      }
      try {
        const ping = await inputs.readers.ping();
        details['query_ms'] = Math.round(ping.ms * 10) / 10;
        details['channels'] = ping.channels;
      } catch (error) {
        details['query_error'] = message(error);
        if (isCorruptionError(error)) {
          return failed(`the database is corrupt: ${message(error)}`, details, {
            recovery: 'quarantine-database',
            escalate: true,
          });
        }
        if (codeOf(error) === 'KASA_POOL_TIMEOUT') {
          return degraded(`no reader connection free: ${message(error)}`, details);
        }
        return failed(`a query failed: ${message(error)}`, details, {
          recovery: 'reopen-sqlite',
          escalate: true,
        });
      }
      const failing =
        w !== null &&
        w.lastError !== null &&
        w.inFlight > 0 &&
        (w.lastCommitAtMs === null || w.lastError.atMs > w.lastCommitAtMs);
      if (failing && w !== null && w.lastError !== null) {
        const code = w.lastError.code ?? '';
        const held = `${w.inFlight} readings held, ${status?.queue.size ?? 0} queued`;
        const breaker = status?.retries.operations['sqlite.write']?.breaker.state ?? 'closed';
        details['breaker'] = breaker;
        if (/^SQLITE_(BUSY|LOCKED)/.test(code)) {
          return degraded(
            `the database is locked by another connection: writes fail with ${code} and are retried (${held})`,
            details,
          );
        }
        if (/^SQLITE_FULL/.test(code)) {
          return degraded(`the disk is full: writes fail with ${code} (${held})`, details);
        }
        if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) {
          return failed(`the database is corrupt: writes fail with ${code}`, details, {
            recovery: 'quarantine-database',
            escalate: true,
          });
        }
        if (code === 'KASA_WORKER_EXITED' || code === 'KASA_NOT_OPEN') {
          return failed(`the writer's connection is gone: ${w.lastError.message}`, details, {
            recovery: 'reopen-sqlite',
            escalate: true,
          });
        }
        return degraded(
          `writes are failing (${code || 'error'}: ${w.lastError.message}); retrying (${held})`,
          details,
        );
      }
      return ok(
        `query answered in ${details['query_ms']} ms${w?.lastCommitAtMs == null ? '' : `; last commit ${seconds(nowMs - w.lastCommitAtMs)} ago`}`,
        details,
      );
    },
  };
}

/** Free space on the database's file system. A full disk is reported; a restart cannot fix it. */
function diskCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'disk',
    async run() {
      const dir = dirname(inputs.databasePath);
      try {
        const fs = await statfs(dir);
        const free = fs.bavail * fs.bsize;
        const details = { directory: dir, free_bytes: free, total_bytes: fs.blocks * fs.bsize };
        const min = inputs.limits().minFreeDiskMb;
        if (free < min * MiB) {
          return degraded(`only ${Math.floor(free / MiB)} MiB free on ${dir} (minimum ${min} MiB)`, details);
        }
        return ok(`${Math.floor(free / MiB)} MiB free`, details);
      } catch (error) {
        return degraded(`cannot read the free space of ${dir}: ${message(error)}`, { directory: dir });
      }
    },
  };
}

/** The size of the -wal file: it grows without bound when checkpoints are starved. */
function walCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'wal',
    async run() {
      const path = `${inputs.databasePath}-wal`;
      let size = 0;
      try {
        size = (await stat(path)).size;
      } catch {
        // No WAL file (DELETE journal, or just checkpointed): size 0.
      }
      const max = inputs.limits().maxWalMb;
      const details = { path, bytes: size };
      if (size > max * MiB) {
        return degraded(
          `the WAL is ${Math.round(size / MiB)} MiB (limit ${max} MiB): checkpoints cannot keep up, a long reader may be holding them back`,
          details,
        );
      }
      return ok(`WAL ${Math.round((size / MiB) * 10) / 10} MiB`, details);
    },
  };
}

/** `PRAGMA quick_check` at the first run and every quick_check_interval; the result is kept between. */
function integrityCheck(inputs: HealthInputs): HealthCheck {
  let lastRunMs: number | null = null;
  let last: CheckResult | null = null;
  return {
    name: 'integrity',
    async run(nowMs) {
      const interval = inputs.limits().quickCheckIntervalMs;
      const due =
        lastRunMs === null || last?.status !== 'ok' || (interval > 0 && nowMs - lastRunMs >= interval);
      if (!due && last !== null) return last;
      if (lastRunMs !== null && inputs.readers.stats().mode === 'single') {
        // The fallback runs on the main thread: a quick_check there would stall the daemon.
        return last ?? ok('quick_check skipped while the reader pool runs on one connection');
      }
      const started = performance.now();
      try {
        const problems = (await inputs.readers.quickCheck()).filter((line) => line !== 'ok');
        const details = {
          last_run: new Date(nowMs).toISOString(),
          duration_ms: Math.round(performance.now() - started),
          problems: problems.slice(0, 10),
        };
        last =
          problems.length === 0
            ? ok('quick_check ok', details)
            : failed(`quick_check found damage: ${problems.slice(0, 3).join('; ')}`, details, {
                recovery: 'quarantine-database',
                escalate: true,
              });
      } catch (error) {
        const details = { last_run: new Date(nowMs).toISOString(), error: message(error) };
        last = isCorruptionError(error)
          ? failed(`the database is corrupt: ${message(error)}`, details, {
              recovery: 'quarantine-database',
              escalate: true,
            })
          : degraded(`quick_check could not run: ${message(error)}`, details);
      }
      lastRunMs = nowMs;
      return last;
    },
  };
}

/** InfluxDB: can it be reached (GET /health), do writes go through, how far does it trail SQLite. */
function influxCheck(inputs: HealthInputs, fetchImpl: typeof fetch): HealthCheck {
  return {
    name: 'influx',
    async run() {
      const url = inputs.influxUrl();
      if (url === null) return ok('not configured', { configured: false });
      const f = inputs.status()?.influx ?? null;
      const breaker = inputs.status()?.retries.operations['influx.write']?.breaker.state ?? 'closed';
      const details: Record<string, unknown> = {
        url: displayUrl(url),
        lag_ms: f?.lagMs ?? null,
        queued: f?.queued ?? null,
        written: f?.written ?? null,
        last_write_ms: f?.lastWriteAtMs ?? null,
        last_error: f?.lastError ?? null,
        breaker,
      };
      const waiting = f === null ? '' : `; ${f.queued} readings wait in SQLite (lag ${seconds(f.lagMs)})`;
      let reachable = false;
      try {
        // Relative, so a base URL with a path (behind a proxy) keeps it.
        const healthUrl = new URL('health', url.endsWith('/') ? url : `${url}/`);
        const response = await fetchImpl(healthUrl, { signal: AbortSignal.timeout(3000) });
        await response.arrayBuffer().catch(() => undefined);
        details['http_status'] = response.status;
        reachable = response.status < 500;
        if (!reachable)
          return degraded(
            `InfluxDB at ${displayUrl(url)} is unhealthy (HTTP ${response.status})${waiting}`,
            details,
          );
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause;
        const code = codeOf(cause) ?? codeOf(error) ?? message(error);
        details['error'] = code;
        return degraded(`InfluxDB at ${displayUrl(url)} is unreachable (${code})${waiting}`, details);
      }
      // InfluxDB answers its health endpoint but writes fail or stopped: a fresh client (new
      // connections, e.g. after a proxy or load balancer dropped ours) is worth a try. Never
      // escalated: a restart would not fix InfluxDB.
      const recreate = { recovery: 'recreate-influx-client', escalate: false } as const;
      if (f !== null && !f.running) {
        return failed('the InfluxDB forwarder is not running', details, recreate);
      }
      if (breaker === 'open')
        return degraded(
          `InfluxDB writes are failing: the circuit breaker is open${waiting}`,
          details,
          recreate,
        );
      if (f !== null && f.lagMs > inputs.limits().maxInfluxLagMs) {
        return degraded(`InfluxDB trails SQLite by ${seconds(f.lagMs)}${waiting}`, details);
      }
      return ok(`reachable${f === null ? '' : `, lag ${seconds(f.lagMs)}, ${f.queued} queued`}`, details);
    },
  };
}

/** Discovery: still running, and a round succeeded recently. */
function discoveryCheck(inputs: HealthInputs): HealthCheck {
  let successes = -1;
  let lastSuccessMs: number | null = null;
  /** The same moment on the monotonic clock: the age is judged by it, so a clock step is no outage. */
  let lastSuccessMono: number | null = null;
  return {
    name: 'discovery',
    run(nowMs) {
      const d = inputs.status()?.discovery ?? null;
      if (d === null) return ok('not started');
      const now = d.rounds - d.failedRounds;
      if (now > successes) {
        if (successes >= 0 || now > 0) {
          lastSuccessMs = d.lastRoundAtMs ?? nowMs;
          // When this check saw it, at most one check interval late: good enough for an allowance of
          // three discovery intervals, and a clock step between the round and now cannot skew it.
          lastSuccessMono = performance.now();
        }
        successes = now;
      }
      const details = {
        rounds: d.rounds,
        failed_rounds: d.failedRounds,
        last_success: lastSuccessMs === null ? null : new Date(lastSuccessMs).toISOString(),
        last_round_found: d.lastRoundFound,
        running: d.running,
      };
      if (!d.running) {
        return failed('discovery is not running', details, { recovery: 'restart-discovery', escalate: true });
      }
      const allowed = 3 * inputs.discoveryIntervalMs() + 30_000;
      const since = lastSuccessMono;
      const age = since === null ? 0 : performance.now() - since;
      if (d.failedRounds > 0 && (since === null ? d.rounds >= 3 : age > allowed)) {
        return degraded(
          `no discovery round has succeeded ${since === null ? 'yet' : `for ${seconds(age)}`} (${d.failedRounds} failed rounds)`,
          details,
          { recovery: 'restart-discovery', escalate: false },
        );
      }
      return ok(
        lastSuccessMs === null
          ? 'no round finished yet'
          : `last round ${seconds(nowMs - lastSuccessMs)} ago found ${d.lastRoundFound}`,
        details,
      );
    },
  };
}

/** Plugs online and offline. Every plug gone is reported, never escalated. */
function plugsCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'plugs',
    run() {
      const status = inputs.status();
      if (status === null) return ok('not started');
      const c = status.devices;
      const details = { devices: c.devices, online: c.online, offline: c.offline, channels: c.channels };
      if (c.devices === 0) {
        return status.discovery.rounds === 0
          ? ok('discovery has not finished a round yet', details)
          : degraded('no plugs found', details);
      }
      if (c.online === 0) return degraded(`every plug is offline (${c.devices} known)`, details);
      return ok(`${c.online} of ${c.devices} plugs online`, details);
    },
  };
}

/** Identities claimed twice (a spoofed deviceId, a strip child id equal to a plug's): reported, not obeyed. */
function identityCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'identity',
    run() {
      const conflicts = inputs.status()?.discovery.identityConflicts ?? [];
      if (conflicts.length === 0) return ok('every device identity is claimed once');
      const details = {
        conflicts: conflicts.map((c) => ({
          kind: c.kind,
          id: c.id,
          kept: `${c.kept.host}:${c.kept.port}`,
          kept_device: c.kept.deviceId,
          other: `${c.other.host}:${c.other.port}`,
          other_device: c.other.deviceId,
          since: new Date(c.sinceMs).toISOString(),
        })),
      };
      return degraded(
        conflicts
          .map(
            (c) =>
              `${c.id} claimed at ${c.kept.host}:${c.kept.port} (kept) and at ${c.other.host}:${c.other.port}`,
          )
          .join('; '),
        details,
      );
    },
  };
}

/**
 * Newer plugs (port 20002) that answer discovery but are not polled: wrong or missing TP-Link
 * account, Third-Party Compatibility off, a protocol not supported yet. Each says what to do.
 */
function smartPlugsCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'smart_plugs',
    run() {
      const plugs = inputs.status()?.discovery.smartPlugs ?? [];
      const problems = plugs.filter((p) => p.problem !== null);
      if (problems.length === 0) {
        return ok(
          plugs.length === 0 ? 'no newer (KLAP/AES) plugs seen' : `${plugs.length} newer plugs polled`,
        );
      }
      const details = {
        plugs: problems.map((p) => ({
          host: p.host,
          mac: p.mac,
          model: p.model,
          state: p.problem,
          advice: p.advice,
          since: new Date(p.sinceMs).toISOString(),
        })),
      };
      return degraded(
        problems.map((p) => `${p.model} at ${p.host}: ${p.problem} (${p.advice})`).join('; '),
        details,
      );
    },
  };
}

/** The poll scheduler: ticking on time, without missed or overlapping runs. */
function schedulerCheck(inputs: HealthInputs): HealthCheck {
  let previous: { missed: number; overlap: number } | null = null;
  return {
    name: 'scheduler',
    run(nowMs) {
      const p = inputs.status()?.poller ?? null;
      if (p === null) return ok('not started');
      const last = previous;
      previous = { missed: p.missedTicks, overlap: p.skippedOverlap };
      const missed = last === null ? p.missedTicks : p.missedTicks - last.missed;
      const overlap = last === null ? p.skippedOverlap : p.skippedOverlap - last.overlap;
      const details = {
        last_tick_age_ms: p.lastTickMs === null ? null : nowMs - p.lastTickMs,
        next_tick: p.nextTickMs === null ? null : new Date(p.nextTickMs).toISOString(),
        ticks: p.ticks,
        missed_ticks: p.missedTicks,
        overlapping_polls: p.skippedOverlap,
        late_ticks: p.lateTicks,
        max_tick_late_ms: p.maxTickLateMs,
      };
      if (p.nextTickMs === null) {
        return failed('the poll scheduler is stopped', details, {
          recovery: 'restart-scheduler',
          escalate: true,
        });
      }
      const grace = Math.max(3 * inputs.pollIntervalMs(), 30_000);
      // Judged on the monotonic clock: a wall clock stepped ahead is no stall, and one stepped back
      // cannot hide one.
      const overdue = performance.now() - (p.nextTickMonoMs ?? performance.now());
      if (overdue > grace) {
        return failed(`no poll tick for ${seconds(overdue)} past its time`, details, {
          recovery: 'restart-scheduler',
          escalate: true,
        });
      }
      if (missed > 0 || overlap > 0) {
        return degraded(
          `${missed} missed ticks and ${overlap} overlapping polls since the last check`,
          details,
        );
      }
      return ok(
        p.lastTickMs === null
          ? 'waiting for the first tick'
          : `last tick ${seconds(nowMs - p.lastTickMs)} ago`,
        details,
      );
    },
  };
}

/** Share of poll requests that gave no reading since the previous check. */
function pollsCheck(inputs: HealthInputs): HealthCheck {
  let previous: { ok: number; failed: number; byReason: Record<string, number> } | null = null;
  return {
    name: 'polls',
    run() {
      const p = inputs.status()?.poller ?? null;
      if (p === null) return ok('not started');
      const byReason: Record<string, number> = { ...p.rejected };
      const failedNow = Object.values(byReason).reduce((a, b) => a + b, 0);
      const last = previous ?? { ok: 0, failed: 0, byReason: {} };
      previous = { ok: p.pollsOk, failed: failedNow, byReason };
      const okDelta = p.pollsOk - last.ok;
      const failedDelta = failedNow - last.failed;
      const reasons = Object.fromEntries(
        Object.entries(byReason)
          .map(([reason, n]) => [reason, n - (last.byReason[reason] ?? 0)] as const)
          .filter(([, n]) => n > 0),
      );
      const total = okDelta + failedDelta;
      const rate = total === 0 ? 0 : failedDelta / total;
      const details = {
        polls: total,
        failed: failedDelta,
        error_rate: Math.round(rate * 1000) / 1000,
        failures_by_reason: reasons,
        poll_duration_p99_ms: p.pollDuration.p99Ms,
      };
      if (total > 0 && rate > inputs.limits().maxPollErrorRate) {
        return degraded(
          `${Math.round(rate * 100)}% of ${total} polls failed since the last check (${Object.entries(reasons)
            .map(([r, n]) => `${r} ${n}`)
            .join(', ')})`,
          details,
        );
      }
      return ok(
        total === 0 ? 'no polls since the last check' : `${failedDelta} of ${total} polls failed`,
        details,
      );
    },
  };
}

/** The queue between poller and writer: how full, and whether it dropped readings. */
function queueCheck(inputs: HealthInputs): HealthCheck {
  let previousDropped: number | null = null;
  return {
    name: 'queue',
    run() {
      const q = inputs.status()?.queue ?? null;
      if (q === null) return ok('not started');
      const dropped = previousDropped === null ? q.dropped : q.dropped - previousDropped;
      previousDropped = q.dropped;
      const fill = q.size / q.capacity;
      const details = {
        size: q.size,
        capacity: q.capacity,
        fill: Math.round(fill * 1000) / 1000,
        dropped_total: q.dropped,
        dropped,
      };
      if (dropped > 0)
        return degraded(`${dropped} readings dropped since the last check (queue full)`, details);
      if (fill >= 0.8)
        return degraded(`the queue is ${Math.round(fill * 100)}% full: storage is not keeping up`, details);
      return ok(`${q.size} of ${q.capacity} queued`, details);
    },
  };
}

function eventLoopCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'event_loop',
    run() {
      const lag = inputs.lag.sample();
      const details = { p50_ms: lag.p50Ms, p99_ms: lag.p99Ms, max_ms: lag.maxMs, samples: lag.samples };
      const max = inputs.limits().maxEventLoopLagMs;
      if (lag.p99Ms > max) return degraded(`event-loop delay p99 ${lag.p99Ms} ms (limit ${max} ms)`, details);
      return ok(`event-loop delay p99 ${lag.p99Ms} ms`, details);
    },
  };
}

function memoryCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'memory',
    run() {
      const m = process.memoryUsage();
      const details = {
        rss_bytes: m.rss,
        heap_used_bytes: m.heapUsed,
        heap_total_bytes: m.heapTotal,
        external_bytes: m.external,
      };
      const max = inputs.limits().maxMemoryMb;
      if (m.rss > max * MiB)
        return degraded(`resident memory ${Math.round(m.rss / MiB)} MiB (limit ${max} MiB)`, details);
      return ok(`resident memory ${Math.round(m.rss / MiB)} MiB`, details);
    },
  };
}

/** The reader pool: running on workers, and not turning requests away. */
function readerPoolCheck(inputs: HealthInputs): HealthCheck {
  let previousTimeouts: number | null = null;
  return {
    name: 'reader_pool',
    run() {
      const s = inputs.readers.stats();
      const timeouts = previousTimeouts === null ? s.timeouts : s.timeouts - previousTimeouts;
      previousTimeouts = s.timeouts;
      const details = {
        mode: s.mode,
        in_use: s.inUse,
        idle: s.idle,
        waiting: s.waiting,
        timeouts: s.timeouts,
      };
      if (s.mode === 'single') {
        return degraded(
          `the pool could not start; using one connection on the main thread (${s.fallbackReason})`,
          details,
          {
            recovery: 'reopen-readers',
            escalate: false,
          },
        );
      }
      if (s.mode === 'unavailable') {
        return degraded(`no reader connection can be opened (${s.fallbackReason})`, details, {
          recovery: 'reopen-readers',
          escalate: false,
        });
      }
      if (timeouts > 0) {
        return degraded(
          `${timeouts} requests timed out waiting for a reader connection (size ${s.size} + overflow ${s.maxOverflow} all busy)`,
          details,
        );
      }
      return ok(`${s.inUse} in use, ${s.idle} idle, ${s.waiting} waiting`, details);
    },
  };
}

/** Every check, in the order /health lists them. */
export function createChecks(inputs: HealthInputs, fetchImpl: typeof fetch = fetch): HealthCheck[] {
  return [
    sqliteCheck(inputs),
    diskCheck(inputs),
    walCheck(inputs),
    integrityCheck(inputs),
    influxCheck(inputs, fetchImpl),
    discoveryCheck(inputs),
    plugsCheck(inputs),
    identityCheck(inputs),
    smartPlugsCheck(inputs),
    schedulerCheck(inputs),
    pollsCheck(inputs),
    queueCheck(inputs),
    eventLoopCheck(inputs),
    memoryCheck(inputs),
    readerPoolCheck(inputs),
    mqttCheck(inputs),
  ];
}

/**
 * MQTT: connected, or why not. Degraded at worst and no recovery action: the publisher reconnects by
 * itself, and a restart would not bring a broker back or fix a password. Never shows the password.
 */
function mqttCheck(inputs: HealthInputs): HealthCheck {
  return {
    name: 'mqtt',
    async run() {
      const m = inputs.status()?.mqtt ?? null;
      if (m === null) return ok('not configured', { configured: false });
      const details: Record<string, unknown> = {
        url: m.url,
        connected: m.connected,
        breaker: m.breaker,
        published: m.published,
        states_published: m.statesPublished,
        dropped: m.dropped,
        pending: m.pending,
        failed_connects: m.failedConnects,
        last_connected_ms: m.lastConnectedAtMs,
        last_error: m.lastError,
      };
      if (m.connected) return ok(`connected to ${m.url}, ${m.published} messages published`, details);
      const why = m.lastError === null ? 'connecting' : m.lastError.message;
      if (m.authFailing) {
        return degraded(`the MQTT broker at ${m.url} refuses the credentials (${why})`, details);
      }
      return degraded(
        `not connected to the MQTT broker at ${m.url} (${why}); the latest state of ${m.pending} channels waits`,
        details,
      );
    },
  };
}
