/**
 * The supervisor's own logic, driven by checks whose result the test sets and a fake clock: status
 * aggregation, alerts after N consecutive bad checks (logged once at error, POSTed to a webhook on
 * a loopback HTTP server through the network policy, then resolved), recovery with bounded backoff,
 * escalation when exhausted, and no escalation for what a restart cannot fix. /health answers 503
 * when the aggregate is failed.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { HttpServer, LatestReadings } from '../src/http/index.js';
import { type PolicySettings, ResiliencePolicy } from '../src/resilience/index.js';
import type { PoolStats } from '../src/storage/sqlite/index.js';
import {
  type CheckResult,
  type HealthCheck,
  type HealthReport,
  type RecoveryExhaustedError,
  Supervisor,
  type SupervisorOptions,
  worstStatus,
} from '../src/supervisor/index.js';
import { captureLogger } from './helpers/capture-logger.js';
import { sleep } from './helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook.js';

const OPTIONS: SupervisorOptions = {
  intervalMs: 60_000,
  alertAfter: 3,
  webhookUrl: null,
  quickCheckIntervalMs: 0,
  minFreeDiskMb: 0,
  maxWalMb: 256,
  maxEventLoopLagMs: 1000,
  maxMemoryMb: 4096,
  maxPollErrorRate: 0.5,
  maxInfluxLagMs: 60_000,
  recoveryAttempts: 3,
  recoveryBackoffMs: 1000,
  recoveryBackoffMaxMs: 3000,
};

const POOL: PoolStats = {
  mode: 'pool',
  fallbackReason: null,
  size: 5,
  maxOverflow: 10,
  timeoutMs: 30_000,
  recycleMs: 3_600_000,
  inUse: 0,
  idle: 1,
  waiting: 0,
  open: 1,
  peakInUse: 1,
  acquisitions: 0,
  opened: 1,
  closed: 0,
  recycled: 0,
  idleClosed: 0,
  timeouts: 0,
  failedOpens: 0,
  maxWaitMs: 0,
};

/** A check whose next result the test sets. */
class Switch implements HealthCheck {
  result: CheckResult = { status: 'ok', reason: 'fine' };
  constructor(readonly name: string) {}
  run(): CheckResult {
    return this.result;
  }
}

function setup(
  checks: HealthCheck[],
  options: Partial<SupervisorOptions> = {},
  webhookPolicy?: ResiliencePolicy,
) {
  const clock = { now: 1_000_000 };
  const calls: string[] = [];
  const exhausted: RecoveryExhaustedError[] = [];
  const log = captureLogger('info');
  const supervisor = new Supervisor({
    status: () => null,
    databasePath: '/nonexistent/kasa.db',
    influxUrl: () => null,
    pollIntervalMs: () => 10_000,
    discoveryIntervalMs: () => 60_000,
    targets: {
      store: {
        state: 'open',
        reopen: async () => void calls.push('store.reopen'),
        stop: async () => undefined,
      },
      readers: {
        ping: async () => ({ channels: 0, ms: 0 }),
        quickCheck: async () => ['ok'],
        stats: () => POOL,
        reopen: async () => void calls.push('readers.reopen'),
        suspend: async () => void calls.push('readers.suspend'),
        resume: async () => void calls.push('readers.resume'),
      },
      discovery: {
        stop: async () => void calls.push('discovery.stop'),
        start: () => void calls.push('discovery.start'),
      },
      poller: {
        stop: async () => void calls.push('poller.stop'),
        start: () => void calls.push('poller.start'),
      },
    },
    options: { ...OPTIONS, ...options },
    logger: log.logger,
    ...(webhookPolicy === undefined ? {} : { webhookPolicy }),
    onExhausted: (error) => exhausted.push(error),
    now: () => clock.now,
    checks,
  });
  return { supervisor, clock, calls, exhausted, lines: log.lines };
}

const errorLines = (lines: () => { level: number; msg?: string }[]) => lines().filter((l) => l.level >= 50);

describe('status aggregation', () => {
  test('the daemon status is the worst of its checks', () => {
    assert.equal(worstStatus([]), 'ok');
    assert.equal(worstStatus(['ok', 'degraded', 'ok']), 'degraded');
    assert.equal(worstStatus(['degraded', 'failed', 'ok']), 'failed');
  });

  test('each check reports its status, reason, since and consecutive bad runs', async () => {
    const a = new Switch('a');
    const b = new Switch('b');
    const { supervisor, clock } = setup([a, b]);
    await supervisor.refresh();
    b.result = { status: 'degraded', reason: 'slow', details: { ms: 900 } };
    clock.now += 1000;
    await supervisor.refresh();
    clock.now += 1000;
    const report = await supervisor.refresh();
    assert.equal(report.status, 'degraded');
    assert.equal(report.summary, 'b: slow');
    assert.equal(report.checks['a']?.status, 'ok');
    assert.deepEqual(
      { ...report.checks['b'], checked_at: undefined, duration_ms: undefined },
      {
        status: 'degraded',
        reason: 'slow',
        details: { ms: 900 },
        since: new Date(1_001_000).toISOString(),
        consecutive_bad: 2,
        alerting: false,
        recovery: null,
        checked_at: undefined,
        duration_ms: undefined,
      },
    );
  });
});

describe('alerts', () => {
  let hook: WebhookReceiver;
  after(() => hook?.close());

  test('a problem becomes an alert after alert_after bad checks: logged once at error, POSTed, then resolved', async () => {
    hook = await startWebhookReceiver();
    const influx = new Switch('influx');
    const { supervisor, clock, lines } = setup([influx], { alertAfter: 3, webhookUrl: hook.url });
    await supervisor.refresh();
    influx.result = {
      status: 'degraded',
      reason: 'InfluxDB at http://127.0.0.1:8086/ is unreachable (ECONNREFUSED)',
    };
    const firstBad = clock.now + 1000;
    for (let i = 0; i < 2; i++) {
      clock.now += 1000;
      await supervisor.refresh();
    }
    await supervisor.alerts.flush();
    assert.equal(errorLines(lines).length, 0, 'two bad checks: no alert yet');
    assert.equal(hook.received.length, 0);
    for (let i = 0; i < 5; i++) {
      clock.now += 1000;
      await supervisor.refresh();
    }
    await supervisor.alerts.flush();
    const errors = errorLines(lines);
    assert.equal(errors.length, 1, 'logged once');
    assert.match(errors[0]?.msg ?? '', /^alert: influx degraded: InfluxDB at .* unreachable/);
    assert.equal(hook.received.length, 1, 'POSTed once');
    assert.deepEqual(
      { ...hook.received[0], host: undefined, at: undefined },
      {
        event: 'alert',
        check: 'influx',
        status: 'degraded',
        reason: 'InfluxDB at http://127.0.0.1:8086/ is unreachable (ECONNREFUSED)',
        since: new Date(firstBad).toISOString(),
        source: 'kasa-monitor',
        details: {},
        host: undefined,
        at: undefined,
      },
    );
    const report = supervisor.report();
    assert.equal(report.checks['influx']?.alerting, true);
    assert.deepEqual(report.alerts.active, ['influx']);

    influx.result = { status: 'ok', reason: 'reachable' };
    clock.now += 1000;
    await supervisor.refresh();
    await supervisor.alerts.flush();
    assert.equal(hook.received.length, 2);
    assert.equal(hook.received[1]?.event, 'resolved');
    assert.equal(hook.received[1]?.status, 'ok');
    assert.equal(hook.received[1]?.since, new Date(firstBad).toISOString(), 'names when the problem began');
    assert.ok(lines().some((l) => l.level === 30 && l.msg === 'resolved: influx is ok again'));
    assert.deepEqual(supervisor.report().alerts.active, []);
    assert.equal(supervisor.report().alerts.webhook.sent, 2);
  });

  test('webhook deliveries go through the network policy: a 503 is retried, and the alert still arrives', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const settings: PolicySettings = {
        strategy: 'fixed',
        baseDelayMs: 10,
        maxDelayMs: 10,
        jitter: false,
        maxAttempts: 5,
        timeoutMs: 5000,
        breakerThreshold: 10,
        breakerHalfOpenAfterMs: 1000,
      };
      const log = captureLogger('warn');
      const policy = new ResiliencePolicy('alert.webhook', 'network', settings, log.logger);
      const plugs = new Switch('plugs');
      const { supervisor } = setup([plugs], { alertAfter: 1, webhookUrl: receiver.url }, policy);
      receiver.status = 503;
      plugs.result = { status: 'degraded', reason: 'every plug is offline (2 known)' };
      const refreshed = supervisor.refresh();
      await refreshed;
      while (receiver.requests < 2) await sleep(5);
      receiver.status = 204;
      await supervisor.alerts.flush();
      assert.equal(receiver.received.length, 1);
      assert.equal(receiver.received[0]?.reason, 'every plug is offline (2 known)');
      assert.ok(policy.recorder.snapshot().retries >= 2, 'retried by the policy');
      assert.equal(supervisor.report().alerts.webhook.failed, 0);
    } finally {
      await receiver.close();
    }
  });
});

describe('recovery', () => {
  test('a failed check runs its recovery with bounded backoff; when exhausted the daemon is told to exit', async () => {
    const scheduler = new Switch('scheduler');
    const { supervisor, clock, calls, exhausted } = setup([scheduler], {
      recoveryAttempts: 3,
      recoveryBackoffMs: 1000,
      recoveryBackoffMaxMs: 1500,
    });
    scheduler.result = {
      status: 'failed',
      reason: 'no poll tick for 40 s past its time',
      recovery: 'restart-scheduler',
      escalate: true,
    };
    const restarts = () => calls.filter((c) => c === 'poller.start').length;
    const step = async (ms: number) => {
      clock.now += ms;
      await supervisor.refresh();
      await supervisor.recovery.settle();
    };
    await step(0);
    assert.equal(restarts(), 1, 'the first attempt runs at once');
    assert.deepEqual(calls, ['poller.stop', 'poller.start']);
    await step(999);
    assert.equal(restarts(), 1, 'not before the backoff');
    await step(1);
    assert.equal(restarts(), 2, 'after 1 s');
    await step(1499);
    assert.equal(restarts(), 2);
    await step(1);
    assert.equal(restarts(), 3, 'after 2 s, capped at 1.5 s');
    assert.equal(exhausted.length, 0);
    await step(10_000);
    assert.equal(restarts(), 3, 'no fourth attempt');
    assert.equal(exhausted.length, 1, 'the daemon is told to exit');
    assert.match(exhausted[0]?.message ?? '', /restart-scheduler tried 3 times and scheduler is still bad/);
    await step(10_000);
    assert.equal(exhausted.length, 1, 'once');
    assert.equal(supervisor.report().recovery['restart-scheduler']?.exhausted, true);
  });

  test('once the problem clears, the attempts start again from zero', async () => {
    const discovery = new Switch('discovery');
    const { supervisor, clock, calls, exhausted } = setup([discovery], { recoveryAttempts: 2 });
    const bad: CheckResult = {
      status: 'failed',
      reason: 'discovery is not running',
      recovery: 'restart-discovery',
      escalate: true,
    };
    const step = async () => {
      clock.now += 10_000;
      await supervisor.refresh();
      await supervisor.recovery.settle();
    };
    discovery.result = bad;
    await step();
    await step();
    discovery.result = { status: 'ok', reason: 'fine' };
    await step();
    discovery.result = bad;
    await step();
    await step();
    assert.equal(calls.filter((c) => c === 'discovery.start').length, 4);
    assert.equal(exhausted.length, 0);
  });

  test('what a restart cannot fix is reported and alerted, never escalated', async () => {
    const disk = new Switch('discovery');
    const { supervisor, clock, calls, exhausted, lines } = setup([disk], {
      recoveryAttempts: 2,
      alertAfter: 2,
    });
    disk.result = {
      status: 'degraded',
      reason: 'no discovery round has succeeded for 200 s',
      recovery: 'restart-discovery',
      escalate: false,
    };
    for (let i = 0; i < 8; i++) {
      clock.now += 60_000;
      await supervisor.refresh();
      await supervisor.recovery.settle();
    }
    assert.equal(calls.filter((c) => c === 'discovery.start').length, 2, 'tried within its bound');
    assert.equal(exhausted.length, 0, 'never escalated');
    const report = supervisor.report();
    assert.equal(report.status, 'degraded');
    assert.equal(report.checks['discovery']?.alerting, true);
    assert.equal(lines().filter((l) => /recovery gave up/.test(l.msg ?? '')).length, 1);
  });
});

describe('/health status codes', () => {
  test('/health answers 200 for ok and degraded, 503 for failed', async () => {
    const check = new Switch('sqlite');
    const { supervisor } = setup([check]);
    const http = new HttpServer(
      {
        status: () => null,
        health: () => supervisor.report(),
        refreshHealth: () => supervisor.refresh(),
        devices: () => [],
        latest: new LatestReadings(),
        pool: () => POOL,
        readers: {
          exportReadings: async () => ({ rows: 0 }),
          series: async () => ({
            from_ms: 0,
            to_ms: 0,
            resolution: 'raw',
            step_ms: 1000,
            start_ms: 0,
            channels: [],
          }),
          dailyEnergy: async () => ({ time_zone: 'UTC', channels: [] }),
        },
      },
      { host: '127.0.0.1', port: 0 },
      captureLogger('warn').logger,
    );
    await http.start();
    try {
      const url = `http://127.0.0.1:${http.address?.port}/health`;
      const fetchReport = async () => {
        const response = await fetch(url);
        return { code: response.status, body: (await response.json()) as HealthReport };
      };
      const first = await fetchReport();
      assert.equal(first.code, 200, 'runs the checks when none ran yet');
      assert.equal(first.body.status, 'ok');
      check.result = { status: 'degraded', reason: 'slow' };
      await supervisor.refresh();
      assert.equal((await fetchReport()).code, 200);
      check.result = { status: 'failed', reason: "the writer's connection is lost" };
      await supervisor.refresh();
      const failed = await fetchReport();
      assert.equal(failed.code, 503);
      assert.equal(failed.body.status, 'failed');
      assert.equal(failed.body.checks['sqlite']?.reason, "the writer's connection is lost");
    } finally {
      await http.stop();
    }
  });
});
