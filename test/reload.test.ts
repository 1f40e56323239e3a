/**
 * SIGHUP reload of retry/breaker and InfluxDB settings, without a restart.
 *
 * First the policy on its own (new settings from the next call, calls in flight finish under the old
 * ones, statistics and breaker state carried over), then an in-process Daemon (real SQLite file,
 * simulated plugs on 127.0.80.x, real VictoriaMetrics) reloaded with a new poll interval, new retry
 * settings, a new InfluxDB URL, and restart-only keys next to hot ones.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Config, diffConfig, loadConfig } from '../src/config/index.js';
import { createSilentLogger, type Logger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import {
  isOpenCircuitError,
  type OperationStats,
  type PolicySettings,
  presetSettings,
  Resilience,
  ResiliencePolicy,
} from '../src/resilience/index.js';
import { StorageError } from '../src/storage/errors.js';
import { captureLogger } from './helpers/capture-logger.js';
import { daemonStatus, simulatedFleetConfig } from './helpers/daemon-config.js';
import { type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { storedPerChannel } from './helpers/stored.js';
import {
  samplesPerDevice,
  startVictoria,
  timestampsPerDevice,
  type Victoria,
  victoriaSkip,
} from './helpers/victoria.js';
import { sleep, waitFor } from './helpers/wait.js';

const PORT = 26001;
const DEVICES = [
  { model: 'hs110', address: '127.0.80.1', alias: 'kettle' },
  { model: 'hs110v2', address: '127.0.80.2', alias: 'fridge' },
  { model: 'hs300', address: '127.0.80.3', alias: 'strip' },
] as const;

const root = mkdtempSync(join(tmpdir(), 'kasa-reload-'));
// The policies' retry and timeout timers are unref'd (they never hold a daemon up): keep the loop alive.
const keepAlive = setInterval(() => undefined, 60_000);
after(() => {
  clearInterval(keepAlive);
  rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// The policy on its own

const BASE: PolicySettings = {
  strategy: 'fixed',
  baseDelayMs: 0,
  maxDelayMs: 0,
  jitter: false,
  maxAttempts: 2,
  timeoutMs: 5000,
  breakerThreshold: 1000,
  breakerHalfOpenAfterMs: 3_600_000,
};

const unavailable = () => new StorageError('answered 503', { code: 'HTTP_503', transient: true });

function newPolicy(settings: Partial<PolicySettings> = {}): ResiliencePolicy {
  return new ResiliencePolicy('test.op', 'network', { ...BASE, ...settings }, createSilentLogger());
}

/** Runs a call that fails every attempt; returns how many attempts it made. */
async function failingCall(policy: ResiliencePolicy): Promise<number> {
  let calls = 0;
  await assert.rejects(
    policy.execute(() => {
      calls++;
      throw unavailable();
    }),
  );
  return calls;
}

describe('ResiliencePolicy.reconfigure', () => {
  test('applies the new max attempts from the next call and keeps the statistics', async () => {
    const policy = newPolicy({ maxAttempts: 2 });
    assert.equal(await failingCall(policy), 2);
    assert.equal(policy.reconfigure({ ...BASE, maxAttempts: 4 }), true);
    assert.equal(await failingCall(policy), 4);
    const stats = policy.recorder.snapshot();
    assert.equal(stats.total_attempts, 6, 'attempts before and after the reload');
    assert.equal(stats.retries, 1 + 3);
    assert.equal(stats.failed_calls, 2);
    assert.equal(policy.reconfigure({ ...BASE, maxAttempts: 4 }), false, 'same settings: nothing to do');
  });

  test('a call in flight finishes under the settings it started with', async () => {
    const policy = newPolicy({ maxAttempts: 3 });
    let calls = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let secondStarted: () => void = () => undefined;
    const second = new Promise<void>((resolve) => {
      secondStarted = resolve;
    });
    const call = policy.execute(async () => {
      calls++;
      if (calls === 2) {
        secondStarted();
        await gate;
      }
      throw unavailable();
    });
    await second;
    policy.reconfigure({ ...BASE, maxAttempts: 1 });
    release();
    await assert.rejects(call);
    assert.equal(calls, 3, 'the call in flight kept its three attempts');
    assert.equal(await failingCall(policy), 1, 'the next call has one');
  });

  test('an open breaker stays open across a reload until the new half-open wait has passed', async () => {
    const policy = newPolicy({ maxAttempts: 1, breakerThreshold: 1 });
    await failingCall(policy);
    assert.equal(policy.state, 'open');

    // Another setting changes: the breaker keeps refusing calls without touching the resource.
    policy.reconfigure({ ...BASE, maxAttempts: 3, breakerThreshold: 1 });
    assert.equal(policy.state, 'open');
    assert.ok(policy.msUntilTrial() > 0);
    let touched = 0;
    await assert.rejects(
      policy.execute(() => {
        touched++;
      }),
      (error: unknown) => isOpenCircuitError(error),
    );
    assert.equal(touched, 0, 'short-circuited');

    // A shorter half-open wait applies to the breaker that is already open: its trial is due now.
    policy.reconfigure({ ...BASE, maxAttempts: 3, breakerThreshold: 1, breakerHalfOpenAfterMs: 1 });
    assert.equal(policy.state, 'open');
    await waitFor(() => policy.msUntilTrial() === 0, 'trial due');
    assert.equal(await policy.execute(() => 'ok'), 'ok');
    assert.equal(policy.state, 'closed', 'the trial call closed it');
    const breaker = policy.recorder.snapshot().breaker;
    assert.deepEqual(breaker.transitions, { opened: 1, half_opened: 1, closed: 1 });
    assert.equal(policy.recorder.snapshot().short_circuited, 1);
  });

  test('a closed breaker keeps its count of consecutive failures, checked against the new threshold', async () => {
    const policy = newPolicy({ maxAttempts: 1, breakerThreshold: 5 });
    await failingCall(policy);
    await failingCall(policy);
    policy.reconfigure({ ...BASE, maxAttempts: 1, breakerThreshold: 3 });
    assert.equal(policy.state, 'closed');
    assert.equal(policy.recorder.snapshot().breaker.consecutive_failures, 2);
    await failingCall(policy);
    assert.equal(policy.state, 'open', 'the third consecutive failure reached the new threshold');
  });

  test('reset closes an open breaker and keeps the settings and the statistics', async () => {
    const policy = newPolicy({ maxAttempts: 1, breakerThreshold: 1 });
    await failingCall(policy);
    assert.equal(policy.state, 'open');
    policy.reset('new destination');
    assert.equal(policy.state, 'closed');
    assert.equal(policy.settings.breakerThreshold, 1);
    assert.equal(await policy.execute(() => 1), 1);
    const stats = policy.recorder.snapshot();
    assert.equal(stats.total_attempts, 2);
    assert.equal(stats.breaker.state, 'closed');
  });
});

describe('Resilience.reconfigure', () => {
  const retryConfig = (overrides: Record<string, string> = {}) =>
    loadConfig({ env: {}, defaultFile: join(root, 'absent.yaml'), overrides }).config.retry;

  test('gives every existing operation its preset’s new settings in place', () => {
    const resilience = new Resilience(presetSettings(retryConfig()), createSilentLogger());
    const sqlite = resilience.policy('sqlite.write', 'database');
    const influx = resilience.policy('influx.write', 'network');
    const changed = resilience.reconfigure(
      presetSettings(retryConfig({ 'retry.database.max_attempts': '7' })),
    );
    assert.deepEqual(changed, ['sqlite.write']);
    assert.equal(resilience.policy('sqlite.write', 'database'), sqlite, 'the same policy object');
    assert.equal(sqlite.settings.maxAttempts, 7);
    assert.equal(influx.settings.maxAttempts, 5);
    assert.equal(resilience.policy('later.op', 'database').settings.maxAttempts, 7, 'new operations too');
  });

  test('rejects invalid settings without changing any operation', () => {
    const resilience = new Resilience(presetSettings(retryConfig()), createSilentLogger());
    const sqlite = resilience.policy('sqlite.write', 'database');
    const presets = presetSettings(retryConfig({ 'retry.database.max_attempts': '7' }));
    assert.throws(
      () => resilience.reconfigure({ ...presets, network: { ...presets.network, maxAttempts: 0 } }),
      RangeError,
    );
    assert.equal(sqlite.settings.maxAttempts, 3);
  });
});

describe('diffConfig and InfluxDB', () => {
  const load = (overrides: Record<string, string>) =>
    loadConfig({ env: {}, defaultFile: join(root, 'absent.yaml'), overrides }).config;

  test('moving to another URL is applied; switching InfluxDB on or off needs a restart', () => {
    const a = load({ 'storage.influx.url': 'http://127.0.0.1:1' });
    const b = load({ 'storage.influx.url': 'http://127.0.0.1:2', 'storage.influx.bucket': 'other' });
    const off = load({ 'storage.influx.url': '', 'storage.influx.bucket': 'other' });
    assert.deepEqual(diffConfig(a, b).hot, ['storage.influx.url', 'storage.influx.bucket']);
    assert.deepEqual(diffConfig(a, off), {
      changed: ['storage.influx.url', 'storage.influx.bucket'],
      hot: ['storage.influx.bucket'],
      restart: ['storage.influx.url'],
    });
    assert.deepEqual(diffConfig(off, a).restart, ['storage.influx.url']);
  });

  test('retry and breaker settings are applied by a reload', () => {
    const diff = diffConfig(
      load({}),
      load({ 'retry.network.max_attempts': '9', 'retry.database.breaker_half_open_after': '1m' }),
    );
    assert.deepEqual(diff.hot, ['retry.database.breaker_half_open_after', 'retry.network.max_attempts']);
    assert.deepEqual(diff.restart, []);
  });
});

// ---------------------------------------------------------------------------------------------
// The whole daemon

let dbCount = 0;

/** A configuration for an in-process daemon with its own database file. */
function daemonConfig(dbPath: string, overrides: Record<string, string> = {}): Config {
  return simulatedFleetConfig(root, {
    'discovery.port': String(PORT),
    'discovery.interval': '5s',
    'polling.interval': '200ms',
    'polling.timeout': '150ms',
    'storage.sqlite.path': dbPath,
    'storage.sqlite.synchronous': 'NORMAL',
    'storage.influx.flush_interval': '100ms',
    'http.listen': '127.0.0.1:0',
    ...overrides,
  });
}

function freshDb(): string {
  dbCount++;
  return join(root, `reload-${dbCount}.db`);
}

function influxOp(daemon: Daemon): OperationStats {
  const op = daemonStatus(daemon).retries.operations['influx.write'];
  assert.ok(op !== undefined, 'influx.write policy exists');
  return op;
}

function total(counts: Map<string, number>): number {
  return [...counts.values()].reduce((a, b) => a + b, 0);
}

/** Starts a daemon; every test stops it (and checks nothing was fatal) in its finally block. */
async function startDaemon(config: Config, logger: Logger = createSilentLogger()) {
  const fatal: Error[] = [];
  const daemon = new Daemon(config, logger, { onFatal: (error) => fatal.push(error) });
  await daemon.start();
  return {
    daemon,
    async stop() {
      await daemon.stop();
      assert.deepEqual(fatal, [], 'nothing fatal');
    },
  };
}

describe('Daemon.reload', () => {
  let fleet: SimulatorFleet;
  before(async () => {
    fleet = await startSimulators({ port: PORT, devices: DEVICES });
  });
  after(() => fleet.stop());

  test('a new poll interval reschedules polling at once', async () => {
    const dbPath = freshDb();
    const config = daemonConfig(dbPath, { 'polling.interval': '1h' });
    const { daemon, stop } = await startDaemon(config);
    try {
      await waitFor(() => daemonStatus(daemon).devices.online === DEVICES.length, 'plugs found');
      const ticks = daemonStatus(daemon).poller.ticks;
      const result = await daemon.reload(daemonConfig(dbPath, { 'polling.interval': '200ms' }));
      assert.deepEqual(result, { applied: ['polling.interval'], needRestart: [] });
      assert.equal(daemon.config.polling.interval, 200);
      // At one hour at most one more tick could come in the whole test: three mean the new interval.
      await waitFor(() => daemonStatus(daemon).poller.ticks >= ticks + 3, 'ticks at the new interval');
      await waitFor(() => daemonStatus(daemon).writer.written > 0, 'readings stored');
    } finally {
      await stop();
    }
  });

  test('a restart-only key next to a hot key in the same section: the hot key applies, the other keeps its running value and is named in the log', async () => {
    const dbPath = freshDb();
    const capture = captureLogger('info');
    const { daemon, stop } = await startDaemon(daemonConfig(dbPath), capture.logger);
    try {
      const result = await daemon.reload(
        daemonConfig(dbPath, { 'polling.interval': '300ms', 'polling.transport': 'tcp' }),
      );
      assert.deepEqual(result, { applied: ['polling.interval'], needRestart: ['polling.transport'] });
      assert.equal(daemon.config.polling.interval, 300, 'the hot key applied');
      assert.equal(daemon.config.polling.transport, 'udp', 'the restart key keeps its running value');
      const warning = capture
        .lines()
        .find((line) => line.msg === 'some changed keys take effect only after a restart');
      assert.ok(warning !== undefined, 'a warning names the keys');
      assert.equal(warning.level, 40);
      assert.deepEqual(warning['keys'], ['polling.transport']);

      // A second reload of the same file changes nothing more and still names the key.
      const again = await daemon.reload(
        daemonConfig(dbPath, { 'polling.interval': '300ms', 'polling.transport': 'tcp' }),
      );
      assert.deepEqual(again, { applied: [], needRestart: ['polling.transport'] });
    } finally {
      await stop();
    }
  });

  test('switching InfluxDB on at reload needs a restart and is logged', async () => {
    const dbPath = freshDb();
    const capture = captureLogger('info');
    const { daemon, stop } = await startDaemon(daemonConfig(dbPath), capture.logger);
    try {
      const result = await daemon.reload(
        daemonConfig(dbPath, {
          'storage.influx.url': 'http://127.0.0.1:9',
          'storage.influx.batch_size': '10',
        }),
      );
      assert.deepEqual(result, {
        applied: ['storage.influx.batch_size'],
        needRestart: ['storage.influx.url'],
      });
      assert.equal(daemon.config.storage.influx.url, null, 'still running without InfluxDB');
      assert.equal(daemonStatus(daemon).influx, null);
      assert.ok(
        capture
          .lines()
          .some((line) => line.level === 40 && String(line.msg).startsWith('switching InfluxDB on or off')),
      );
    } finally {
      await stop();
    }
  });

  describe('with InfluxDB', { skip: victoriaSkip() }, () => {
    let vmA: Victoria;
    let vmB: Victoria;
    let proxy: FaultProxy;
    before(async () => {
      [vmA, vmB] = await Promise.all([startVictoria(), startVictoria()]);
      proxy = await startFaultProxy(vmA.url);
    });
    after(async () => {
      await proxy?.close();
      await Promise.all([vmA?.close(), vmB?.close()]);
    });

    test('new retry settings change how often a failing InfluxDB is tried, and the statistics carry on', async () => {
      proxy.clearRequests();
      proxy.setFallback({ kind: 'status', status: 503 });
      const dbPath = freshDb();
      const retry = (maxAttempts: string, threshold: string, halfOpenAfter: string) => ({
        'storage.influx.url': proxy.url,
        'retry.network.strategy': 'fixed',
        'retry.network.base_delay': '10ms',
        'retry.network.max_delay': '10ms',
        'retry.network.jitter': 'false',
        'retry.network.max_attempts': maxAttempts,
        'retry.network.breaker_threshold': threshold,
        'retry.network.breaker_half_open_after': halfOpenAfter,
      });
      const { daemon, stop } = await startDaemon(daemonConfig(dbPath, retry('2', '2', '1h')));
      try {
        // The first call makes two attempts; their two failures open the breaker for an hour.
        await waitFor(() => influxOp(daemon).breaker.state === 'open', 'breaker open');
        const before = influxOp(daemon);
        assert.equal(before.total_attempts, 2);
        assert.equal(before.failed_calls, 1);

        const result = await daemon.reload(daemonConfig(dbPath, retry('5', '1000', '1ms')));
        assert.deepEqual(result.applied, [
          'retry.network.max_attempts',
          'retry.network.breaker_threshold',
          'retry.network.breaker_half_open_after',
        ]);
        // The open breaker's trial is now due, and every call makes five attempts. With the old
        // settings no call would be made for an hour.
        let after = influxOp(daemon);
        await waitFor(() => {
          after = influxOp(daemon);
          const calls = after.failed_calls - before.failed_calls;
          return calls >= 2 && after.total_attempts - before.total_attempts === 5 * calls;
        }, 'calls of five attempts after the reload');
        assert.equal(after.retries - before.retries, 4 * (after.failed_calls - before.failed_calls));
        assert.equal(after.failures_by_code['HTTP_503'], after.total_attempts, 'statistics kept across');
        const writes = proxy.requests.filter((r) => r.lines > 0).length; // not the health check's GETs
        assert.equal(writes, after.total_attempts, 'every attempt reached the server');
        assert.equal(daemonStatus(daemon).influx?.written, 0);
      } finally {
        await stop();
        proxy.setFallback({ kind: 'pass' });
      }
    });

    test('a new InfluxDB URL: later readings arrive there, none lost or sent twice across the switch', async () => {
      let plugs: SimulatorFleet | null = fleet;
      const dbPath = freshDb();
      const { daemon, stop } = await startDaemon(
        daemonConfig(dbPath, { 'storage.influx.url': vmA.url, 'storage.influx.token': 'token-a' }),
      );
      try {
        await waitFor(
          () => (daemonStatus(daemon).influx?.written ?? 0) >= 30,
          'readings forwarded to the first server',
        );
        const atSwitch = daemonStatus(daemon).influx;
        const result = await daemon.reload(
          daemonConfig(dbPath, { 'storage.influx.url': vmB.url, 'storage.influx.token': 'token-b' }),
        );
        assert.deepEqual(result, {
          applied: ['storage.influx.url', 'storage.influx.token'],
          needRestart: [],
        });
        assert.equal(daemon.config.storage.influx.url, vmB.url);
        assert.deepEqual(
          daemonStatus(daemon).influx?.cursor,
          atSwitch?.cursor,
          'the outbox position is kept',
        );
        const written = daemonStatus(daemon).influx?.written ?? 0;
        await waitFor(
          () => (daemonStatus(daemon).influx?.written ?? 0) >= written + 30,
          'readings forwarded after the switch',
        );

        // No more readings: let everything drain into SQLite and on to InfluxDB.
        await fleet.stop();
        plugs = null;
        await waitFor(() => {
          const s = daemonStatus(daemon);
          return s.queue.size === 0 && s.writer.inFlight === 0 && s.influx?.queued === 0;
        }, 'everything delivered');
        assert.equal(daemonStatus(daemon).influx?.rejected, 0);
      } finally {
        await stop();
        if (plugs === null) fleet = await startSimulators({ port: PORT, devices: DEVICES });
      }

      const stored = storedPerChannel(dbPath);
      const storedTotal = total(stored);
      assert.equal(daemonStatus(daemon).influx?.written, storedTotal, 'each stored reading forwarded once');
      // VictoriaMetrics makes new series searchable a few seconds after ingestion.
      const deadline = Date.now() + 60_000;
      let inA = await samplesPerDevice(vmA);
      let inB = await samplesPerDevice(vmB);
      while (total(inA) + total(inB) < storedTotal && Date.now() < deadline) {
        await sleep(200);
        [inA, inB] = await Promise.all([samplesPerDevice(vmA), samplesPerDevice(vmB)]);
      }
      assert.ok(total(inB) > 0, 'the second server received readings');
      for (const [device, count] of stored) {
        assert.equal(
          (inA.get(device) ?? 0) + (inB.get(device) ?? 0),
          count,
          `${device}: exactly once across both`,
        );
      }
      const [tsA, tsB] = await Promise.all([timestampsPerDevice(vmA), timestampsPerDevice(vmB)]);
      for (const [device, later] of tsB) {
        const earlier = tsA.get(device) ?? new Set<number>();
        const lastInA = Math.max(...earlier);
        for (const ts of later)
          assert.ok(ts > lastInA, `${device}: only readings after the switch on the new server`);
      }
    });

    test('pointing InfluxDB elsewhere closes a breaker the old server opened and delivers the backlog', async () => {
      proxy.setFallback({ kind: 'status', status: 503 });
      const dbPath = freshDb();
      const failing = {
        'storage.influx.url': proxy.url,
        'retry.network.max_attempts': '1',
        'retry.network.breaker_threshold': '1',
        'retry.network.breaker_half_open_after': '1h',
      };
      const { daemon, stop } = await startDaemon(daemonConfig(dbPath, failing));
      try {
        await waitFor(() => influxOp(daemon).breaker.state === 'open', 'breaker opened by the old server');
        await waitFor(() => (daemonStatus(daemon).influx?.queued ?? 0) >= 20, 'a backlog in SQLite');
        await daemon.reload(daemonConfig(dbPath, { ...failing, 'storage.influx.url': vmB.url }));
        assert.equal(influxOp(daemon).breaker.state, 'closed');
        const queued = daemonStatus(daemon).influx?.queued ?? 0;
        await waitFor(() => (daemonStatus(daemon).influx?.written ?? 0) >= queued, 'the backlog delivered');
        assert.equal(influxOp(daemon).breaker.transitions.opened, 1);
      } finally {
        await stop();
        proxy.setFallback({ kind: 'pass' });
      }
    });

    test('switching InfluxDB off at reload needs a restart: forwarding goes on and the log says so', async () => {
      const dbPath = freshDb();
      const capture = captureLogger('info');
      const { daemon, stop } = await startDaemon(
        daemonConfig(dbPath, { 'storage.influx.url': vmA.url }),
        capture.logger,
      );
      try {
        await waitFor(() => (daemonStatus(daemon).influx?.written ?? 0) > 0, 'forwarding');
        const result = await daemon.reload(
          daemonConfig(dbPath, { 'storage.influx.url': '', 'storage.influx.batch_size': '50' }),
        );
        assert.deepEqual(result, {
          applied: ['storage.influx.batch_size'],
          needRestart: ['storage.influx.url'],
        });
        assert.equal(daemon.config.storage.influx.url, vmA.url, 'the running URL is kept');
        assert.equal(daemon.config.storage.influx.batch_size, 50);
        const written = daemonStatus(daemon).influx?.written ?? 0;
        await waitFor(() => (daemonStatus(daemon).influx?.written ?? 0) > written, 'still forwarding');
        const lines = capture.lines();
        assert.ok(
          lines.some((l) => l.level === 40 && String(l.msg).startsWith('switching InfluxDB on or off')),
        );
        assert.ok(
          lines.some(
            (l) =>
              l.msg === 'some changed keys take effect only after a restart' &&
              JSON.stringify(l['keys']) === JSON.stringify(['storage.influx.url']),
          ),
        );
      } finally {
        await stop();
      }
    });
  });
});
