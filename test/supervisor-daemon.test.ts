/**
 * Failure modes of a real daemon, driven for real: VictoriaMetrics stopped and started again, the
 * database locked by another process, the database file corrupted before start, every plug gone.
 * For each, the health status, the alert (received as a webhook by a loopback HTTP server), the
 * "resolved" notice and what the supervisor did (or did not do: nothing here may make the daemon
 * exit). Simulated plugs on 127.0.61.x-127.0.64.x, ports 24101-24104; HTTP on 127.0.0.1:0.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { openReadingsReader } from '../src/storage/sqlite/index.js';
import type { AlertPayload, HealthReport } from '../src/supervisor/index.js';
import { simulatedFleetConfig } from './helpers/daemon-config.js';
import { corruptPages } from './helpers/damage.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { createSyntheticDatabase } from './helpers/sqlite-files.js';
import { tempRoot } from './helpers/temp.js';
import { startVictoria, victoriaAvailable } from './helpers/victoria.js';
import { waitFor } from './helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook.js';

const root = tempRoot('kasa-supervisor-daemon-');

const LOCK_HOLDER = fileURLToPath(new URL('./helpers/lock-holder.js', import.meta.url));

interface Harness {
  readonly daemon: Daemon;
  readonly hook: WebhookReceiver;
  readonly fatal: Error[];
  readonly dbPath: string;
  health(): HealthReport;
  getHealth(): Promise<{ code: number; body: HealthReport }>;
  alerts(check: string, event?: AlertPayload['event']): AlertPayload[];
  close(): Promise<void>;
}

async function startDaemon(
  name: string,
  port: number,
  overrides: Record<string, unknown> = {},
): Promise<Harness> {
  const hook = await startWebhookReceiver();
  const dbPath = (overrides['storage.sqlite.path'] as string | undefined) ?? join(root, `${name}.db`);
  const config = simulatedFleetConfig(root, {
    'discovery.port': String(port),
    'discovery.interval': '1s',
    'storage.sqlite.path': dbPath,
    'storage.sqlite.synchronous': 'NORMAL',
    'http.listen': '127.0.0.1:0',
    'health.interval': '250ms',
    'health.alert_after': '2',
    'health.webhook_url': hook.url,
    'health.min_free_disk_mb': '0',
    'health.max_event_loop_lag': '5s',
    'retry.network.base_delay': '50ms',
    'retry.network.max_delay': '200ms',
    'retry.network.timeout': '2s',
    ...overrides,
  });
  const fatal: Error[] = [];
  const daemon = new Daemon(config, createSilentLogger(), { onFatal: (error) => fatal.push(error) });
  await daemon.start();
  const base = `http://127.0.0.1:${daemon.httpAddress?.port}`;
  return {
    daemon,
    hook,
    fatal,
    dbPath,
    health: () => {
      const report = daemon.health();
      assert.ok(report !== null);
      return report;
    },
    getHealth: async () => {
      const response = await fetch(`${base}/health`);
      return { code: response.status, body: (await response.json()) as HealthReport };
    },
    alerts: (check, event) =>
      hook.received.filter((a) => a.check === check && (event === undefined || a.event === event)),
    close: async () => {
      await daemon.stop();
      await hook.close();
    },
  };
}

describe('the supervisor of a running daemon', () => {
  test('VictoriaMetrics stopped: InfluxDB degraded, an alert, resolved after it is back; never escalated', {
    skip: victoriaAvailable() ? false : 'victoria-metrics is not installed',
  }, async () => {
    const vm = await startVictoria();
    const fleet = await startSimulators({
      port: 24101,
      devices: [
        { model: 'hs110', address: '127.0.61.1', alias: 'kettle' },
        { model: 'hs110v2', address: '127.0.61.2', alias: 'fridge' },
      ],
    });
    const h = await startDaemon('influx', 24101, {
      'storage.influx.url': vm.url,
      'storage.influx.token': 'supervisor-test-token',
      'storage.influx.flush_interval': '200ms',
      'retry.network.breaker_threshold': '3',
      'retry.network.breaker_half_open_after': '500ms',
    });
    try {
      await waitFor(() => (h.daemon.status()?.influx?.written ?? 0) >= 4, 'readings forwarded');
      await waitFor(() => h.health().checks['influx']?.status === 'ok', 'influx check ok');
      assert.match(h.health().checks['influx']?.reason ?? '', /^reachable/);

      await vm.stop();
      await waitFor(() => h.alerts('influx', 'alert').length === 1, 'the InfluxDB alert');
      const alert = h.alerts('influx', 'alert')[0];
      assert.equal(alert?.status, 'degraded');
      assert.match(
        alert?.reason ?? '',
        /^InfluxDB at http:\/\/127\.0\.0\.1:\d+\/ is unreachable \(ECONNREFUSED\)/,
      );
      const during = await h.getHealth();
      assert.equal(during.code, 200, 'degraded is still 200');
      assert.equal(during.body.status, 'degraded');
      assert.equal(during.body.checks['influx']?.alerting, true);
      assert.equal(during.body.checks['sqlite']?.status, 'ok', 'SQLite unaffected');
      await waitFor(() => (h.daemon.status()?.influx?.queued ?? 0) > 0, 'readings wait in SQLite');

      await vm.start();
      await waitFor(() => h.alerts('influx', 'resolved').length === 1, 'the resolved notice');
      await waitFor(() => h.daemon.status()?.influx?.queued === 0, 'the backlog delivered');
      assert.equal(h.alerts('influx', 'alert').length, 1, 'one alert for the whole outage');
      assert.deepEqual(h.fatal, [], 'never escalated');
      assert.equal(h.health().recovery['reopen-sqlite'], undefined, 'nothing restarted');
    } finally {
      await h.close();
      await fleet.stop();
      await vm.close();
    }
  });

  test('the database locked by another process: SQLite degraded with the reason, an alert, resolved when released', async () => {
    const fleet = await startSimulators({
      port: 24102,
      devices: [
        { model: 'hs110', address: '127.0.62.1', alias: 'kettle' },
        { model: 'hs300', address: '127.0.62.2', alias: 'strip' },
      ],
    });
    const h = await startDaemon('locked', 24102, {
      'retry.database.breaker_half_open_after': '500ms',
      'retry.database.max_delay': '200ms',
    });
    let holder: ChildProcess | null = null;
    try {
      await waitFor(() => (h.daemon.status()?.writer.written ?? 0) >= 7, 'readings stored');
      holder = spawn(process.execPath, [LOCK_HOLDER, h.dbPath], { stdio: ['pipe', 'pipe', 'inherit'] });
      const [first] = (await once(holder.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
      assert.equal(first.toString().trim(), 'locked');

      await waitFor(() => h.alerts('sqlite', 'alert').length === 1, 'the SQLite alert');
      const alert = h.alerts('sqlite', 'alert')[0];
      assert.equal(alert?.status, 'degraded');
      assert.match(
        alert?.reason ?? '',
        /^the database is locked by another connection: writes fail with SQLITE_BUSY/,
      );
      const during = await h.getHealth();
      assert.equal(during.code, 200);
      assert.equal(during.body.checks['sqlite']?.status, 'degraded');
      assert.equal(during.body.checks['sqlite']?.recovery, null, 'a lock is not something to restart');
      // Readers are not blocked by a writer's lock (WAL): the API still answers from the pool.
      const api = await fetch(
        `http://127.0.0.1:${h.daemon.httpAddress?.port}/api/readings?device=kettle&from=-1h`,
      );
      assert.equal(api.status, 200);
      assert.ok(((await api.json()) as unknown[]).length > 0);

      holder.stdin?.end();
      await once(holder, 'exit');
      holder = null;
      await waitFor(() => h.alerts('sqlite', 'resolved').length === 1, 'the resolved notice');
      await waitFor(() => {
        const s = h.daemon.status();
        return s !== null && s.writer.inFlight === 0 && s.queue.size < 20;
      }, 'the writer caught up');
      const s = h.daemon.status();
      assert.equal(s?.queue.dropped, 0, 'nothing lost');
      assert.deepEqual(h.fatal, []);
    } finally {
      holder?.kill('SIGKILL');
      await h.close();
      await fleet.stop();
    }
  });

  test('a database corrupted before start is moved aside with its -wal/-shm, a fresh one is used, and an alert says where', async () => {
    const dir = join(root, 'corrupt');
    const dbPath = join(dir, 'kasa.db');
    createSyntheticDatabase(sqliteOptions(dbPath, { busyTimeoutMs: 100 }), {
      channels: [
        { id: 'OLD1', alias: 'old one' },
        { id: 'OLD2', alias: 'old two' },
      ],
      startMs: 0,
      perChannel: 30_000,
      intervalMs: 60_000,
    });
    corruptPages(dbPath);
    // What a power cut leaves next to it.
    writeFileSync(`${dbPath}-wal`, 'left over wal');
    writeFileSync(`${dbPath}-shm`, 'left over shm');
    const corruptSize = statSync(dbPath).size;

    const fleet = await startSimulators({
      port: 24103,
      devices: [{ model: 'hs110', address: '127.0.63.1', alias: 'kettle' }],
    });
    const h = await startDaemon('corrupt', 24103, { 'storage.sqlite.path': dbPath });
    try {
      await waitFor(() => h.alerts('database').length === 1, 'the database alert');
      const alert = h.alerts('database')[0] as AlertPayload;
      const movedTo = String(alert.details['moved_to']);
      assert.match(movedTo, /kasa\.db\.corrupt-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$/);
      assert.equal(alert.status, 'failed');
      assert.match(
        alert.reason,
        new RegExp(
          `moved to ${movedTo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; a fresh database was created`,
        ),
      );
      assert.match(alert.reason, /database disk image is malformed/);
      assert.equal(statSync(movedTo).size, corruptSize, 'the corrupt file itself, untouched');
      const moved = readdirSync(dir)
        .filter((f) => f.startsWith('kasa.db.corrupt-'))
        .sort();
      assert.ok(moved.includes(`${movedTo.split('/').pop()}`));
      const movedFiles = (alert.details['files'] as { from: string; to: string }[]).map((f) => f.from);
      assert.ok(movedFiles.includes(dbPath));
      for (const suffix of ['-wal', '-shm']) {
        // Moved with it when still there (SQLite may have folded them in when it closed the file):
        // either way, nothing of the old set stays next to the fresh database.
        if (movedFiles.includes(`${dbPath}${suffix}`)) assert.ok(existsSync(`${movedTo}${suffix}`));
        if (existsSync(`${dbPath}${suffix}`)) {
          assert.ok(
            !readFileSync(`${dbPath}${suffix}`).toString().startsWith('left over'),
            `old ${suffix} left behind`,
          );
        }
      }

      await waitFor(
        () => (h.daemon.status()?.writer.written ?? 0) >= 2,
        'readings stored in the fresh database',
      );
      const report = h.health();
      assert.equal(report.database.quarantined.length, 1);
      assert.equal(report.database.quarantined[0]?.moved_to, movedTo);
      await waitFor(
        () => h.health().checks['integrity']?.status === 'ok',
        'the fresh database passes quick_check',
      );
      const reader = openReadingsReader(dbPath);
      try {
        const channels = reader.listChannels().map((c) => c.alias);
        assert.ok(!channels.includes('old one'), 'a fresh database, not the old one');
      } finally {
        reader.close();
      }
      assert.deepEqual(h.fatal, []);
    } finally {
      await h.close();
      await fleet.stop();
    }
  });

  test('every plug gone: plugs degraded, an alert, resolved when they are back; reported, never escalated', async () => {
    const fleet: SimulatorFleet = await startSimulators({
      port: 24104,
      devices: [
        { model: 'hs110', address: '127.0.64.1', alias: 'kettle' },
        { model: 'hs110v2', address: '127.0.64.2', alias: 'fridge' },
      ],
    });
    const h = await startDaemon('gone', 24104, { 'polling.backoff_after': '1000' });
    try {
      await waitFor(() => h.daemon.status()?.devices.online === 2, 'both plugs online');
      await waitFor(() => h.health().checks['plugs']?.status === 'ok', 'plugs ok');
      for (const d of fleet.devices) await fleet.pause(d.deviceId);

      await waitFor(() => h.alerts('plugs', 'alert').length === 1, 'the plugs alert');
      assert.equal(h.alerts('plugs', 'alert')[0]?.reason, 'every plug is offline (2 known)');
      const during = await h.getHealth();
      assert.equal(during.code, 200);
      assert.equal(
        during.body.status,
        'degraded',
        'degraded, not failed: a restart would not bring plugs back',
      );
      assert.equal(during.body.checks['plugs']?.recovery, null);
      // Keep watching for a while: still no escalation.
      const cycles = h.health().checks['plugs']?.consecutive_bad ?? 0;
      await waitFor(() => (h.health().checks['plugs']?.consecutive_bad ?? 0) >= cycles + 4, 'more checks');
      assert.deepEqual(h.fatal, []);

      for (const d of fleet.devices) await fleet.resume(d.deviceId);
      await waitFor(() => h.alerts('plugs', 'resolved').length === 1, 'the resolved notice');
      assert.equal(h.daemon.status()?.devices.online, 2);
      assert.deepEqual(h.fatal, []);
    } finally {
      await h.close();
      await fleet.stop();
    }
  });
});
