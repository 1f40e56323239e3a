/**
 * The HTTP surface of a real daemon (simulated plugs on 127.0.60.x, port 24001; HTTP on 127.0.0.1,
 * a free port): /health, /metrics (checked by promtool), /api/devices, /api/readings, and the
 * `status` command reading /health.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../src/cli/index.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { CSV_HEADER, csvRow, jsonRow, openReadingsReader } from '../src/storage/sqlite/index.js';
import type { HealthReport } from '../src/supervisor/index.js';
import { textSink } from './helpers/capture-logger.js';
import { daemonStatus, simulatedFleetConfig } from './helpers/daemon-config.js';
import { freePort } from './helpers/ports.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { tempRoot } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const PORT = 24001;
const KETTLE = 'A1B2C3D4E5F60718293A4B5C6D7E8F9011223344';
const FRIDGE = 'B1B2C3D4E5F60718293A4B5C6D7E8F9011223344';
const STRIP = 'C1B2C3D4E5F60718293A4B5C6D7E8F90112233';

const root = tempRoot('kasa-http-');

const promtool = spawnSync('promtool', ['--version']).status === 0;

let fleet: SimulatorFleet;
let daemon: Daemon;
let base: string;
const dbPath = join(root, 'kasa.db');

async function get(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}${path}`, init);
}

before(async () => {
  fleet = await startSimulators({
    port: PORT,
    devices: [
      {
        model: 'hs110',
        address: '127.0.60.1',
        deviceId: KETTLE,
        alias: 'kettle',
        realtime: { power: 1234.5, voltage: 231.2, current: 5.34, total: 12.5 },
      },
      {
        model: 'hs110v2',
        address: '127.0.60.2',
        deviceId: FRIDGE,
        alias: 'fridge "cold"',
        realtime: { power_mw: 81_250, voltage_mv: 229_800, current_ma: 410, total_wh: 4321 },
      },
      { model: 'hs300', address: '127.0.60.3', deviceId: STRIP, alias: 'strip' },
    ],
  });
  const config = simulatedFleetConfig(root, {
    'discovery.port': String(PORT),
    'discovery.interval': '2s',
    'storage.sqlite.path': dbPath,
    'storage.sqlite.synchronous': 'NORMAL',
    'http.listen': '127.0.0.1:0',
    'health.interval': '500ms',
    'health.min_free_disk_mb': '0',
  });
  daemon = new Daemon(config, createSilentLogger());
  await daemon.start();
  const address = daemon.httpAddress;
  assert.ok(address !== null, 'listening');
  assert.equal(address.host, '127.0.0.1');
  base = `http://127.0.0.1:${address.port}`;
  await waitFor(() => daemonStatus(daemon).writer.written >= 3 * 8, 'readings of every channel stored');
});

after(async () => {
  await daemon?.stop();
  await fleet?.stop();
});

describe('HTTP endpoints', () => {
  test('GET /health answers 200 with every check, the database, pool utilisation, retries and performance', async () => {
    await waitFor(() => daemon.health()?.checks['plugs']?.status === 'ok', 'plugs check ok');
    const response = await get('/health');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    const report = (await response.json()) as HealthReport;
    assert.ok(report.status === 'ok' || report.status === 'degraded', report.summary);
    for (const check of [
      'sqlite',
      'disk',
      'wal',
      'integrity',
      'influx',
      'discovery',
      'plugs',
      'scheduler',
      'polls',
      'queue',
      'event_loop',
      'memory',
      'reader_pool',
    ]) {
      const c = report.checks[check];
      assert.ok(c !== undefined, `check ${check}`);
      assert.ok(['ok', 'degraded', 'failed'].includes(c.status));
      assert.equal(typeof c.reason, 'string');
    }
    assert.equal(report.checks['sqlite']?.status, 'ok', report.checks['sqlite']?.reason);
    assert.equal(report.checks['integrity']?.status, 'ok', 'quick_check ran at start');
    assert.equal(report.checks['influx']?.reason, 'not configured');
    assert.match(report.checks['plugs']?.reason ?? '', /3 of 3 plugs online/);
    assert.equal(report.database.writer, 'open');
    assert.equal(report.database.readers, 'pool');
    assert.equal(report.database.path, dbPath);
    assert.equal(report.pool['size'], 5);
    assert.equal(report.pool['max_overflow'], 10);
    assert.equal(typeof report.pool['utilisation'], 'number');
    assert.ok(num(report.pool['acquisitions']) > 0, 'the checks read through the pool');
    assert.ok(report.retries?.operations['sqlite.write'] !== undefined);
    assert.equal(report.retries?.operations['sqlite.write']?.breaker.state, 'closed');
    assert.equal(typeof report.performance.event_loop_lag_ms.p99, 'number');
    assert.ok((report.performance.poll_duration_ms.p99 ?? 0) > 0);
    assert.ok(report.performance.rss_bytes > 0);
  });

  test('GET /metrics is Prometheus text that promtool accepts, with per-channel and kasa_monitor_ metrics', async () => {
    // Fails rather than skips: being promtool-clean is part of the contract (.ci/run installs it).
    assert.ok(promtool, 'promtool is not installed: apt-get install prometheus');
    const response = await get('/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint findings');

    assert.match(
      text,
      new RegExp(`^kasa_power_watts\\{device_id="${KETTLE}",alias="kettle"\\} 1234\\.5$`, 'm'),
    );
    assert.match(
      text,
      new RegExp(`^kasa_voltage_volts\\{device_id="${KETTLE}",alias="kettle"\\} 231\\.2$`, 'm'),
    );
    assert.match(
      text,
      new RegExp(`^kasa_current_amperes\\{device_id="${KETTLE}",alias="kettle"\\} 5\\.34$`, 'm'),
    );
    assert.match(
      text,
      new RegExp(`^kasa_energy_joules\\{device_id="${KETTLE}",alias="kettle"\\} 45000000$`, 'm'),
    );
    assert.match(
      text,
      new RegExp(`^kasa_power_watts\\{device_id="${FRIDGE}",alias="fridge \\\\"cold\\\\""\\} 81\\.25$`, 'm'),
    );
    assert.match(
      text,
      new RegExp(`^kasa_power_watts\\{device_id="${STRIP}00",alias="[^"]*"\\} `, 'm'),
      'strip outlets',
    );
    for (const name of [
      'kasa_monitor_queue_readings',
      'kasa_monitor_readings_written_total{sink="sqlite"}',
      'kasa_monitor_readings_dropped_total{sink="sqlite"}',
      'kasa_monitor_readings_rejected_total{sink="sqlite"}',
      'kasa_monitor_retries_total{operation="sqlite.write"}',
      'kasa_monitor_breaker_state{operation="sqlite.write",state="closed"} 1',
      'kasa_monitor_poll_duration_seconds_bucket{le="+Inf"}',
      'kasa_monitor_poll_duration_seconds_count',
      'kasa_monitor_pool_connections{state="in_use"}',
      'kasa_monitor_pool_utilisation_ratio',
      'kasa_monitor_health_status{status="failed"} 0',
      'kasa_monitor_health_check_status{check="sqlite",status="ok"} 1',
      'kasa_monitor_plugs{state="online"} 3',
      'kasa_monitor_process_cpu_seconds_total',
      'kasa_monitor_process_resident_memory_bytes',
    ]) {
      assert.ok(text.includes(name), `${name} in /metrics`);
    }
    const names = new Set(
      text
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2] ?? ''),
    );
    for (const name of names) {
      assert.ok(name.startsWith('kasa_monitor_') || name.startsWith('kasa_'), `${name} is prefixed`);
    }
    const written = Number(/^kasa_monitor_readings_written_total\{sink="sqlite"\} (\d+)/m.exec(text)?.[1]);
    assert.ok(
      written > 0 && written <= (daemonStatus(daemon).accounting.sqlite?.written ?? 0),
      'counters follow the accounting',
    );
  });

  test('GET /api/devices lists every plug with its channels and latest readings', async () => {
    const response = await get('/api/devices');
    assert.equal(response.status, 200);
    const { devices } = (await response.json()) as {
      devices: {
        device_id: string;
        alias: string;
        state: string;
        channels: { device_id: string; latest: { power_w: number; total_wh: number } | null }[];
      }[];
    };
    const byId = new Map(devices.map((d) => [d.device_id, d]));
    assert.equal(devices.length, 3);
    assert.equal(byId.get(KETTLE)?.alias, 'kettle');
    assert.equal(byId.get(KETTLE)?.state, 'online');
    assert.deepEqual(byId.get(KETTLE)?.channels[0]?.latest?.power_w, 1234.5);
    assert.equal(byId.get(KETTLE)?.channels[0]?.latest?.total_wh, 12500);
    assert.equal(byId.get(STRIP)?.channels.length, 6);
  });

  test('GET /api/readings streams the readings of a device from the reader pool, as JSON or CSV', async () => {
    const toMs = Date.now();
    await waitFor(() => {
      const s = daemonStatus(daemon);
      return (s.writer.lastCommitAtMs ?? 0) > toMs + 1000 && s.queue.size === 0 && s.writer.inFlight === 0;
    }, 'everything polled before `to` committed');
    const to = new Date(toMs).toISOString();
    const reader = openReadingsReader(dbPath);
    let expected: ReturnType<typeof reader.readings> extends Iterable<infer R> ? R[] : never;
    try {
      expected = [...reader.readings({ channels: [KETTLE], fromMs: toMs - 3_600_000, toMs })];
    } finally {
      reader.close();
    }
    assert.ok(expected.length > 0);
    const before = daemon.health()?.pool['acquisitions'];

    const json = await get(`/api/readings?device=kettle&from=-1h&to=${encodeURIComponent(to)}`);
    assert.equal(json.status, 200);
    assert.match(json.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(await json.text(), `[\n${expected.map(jsonRow).join(',\n')}\n]\n`);
    assert.ok(num(daemon.health()?.pool['acquisitions']) > num(before), 'served through the pool');

    const csv = await get(`/api/readings?device=${KETTLE}&from=-1h&to=${encodeURIComponent(to)}&format=csv`);
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type') ?? '', /text\/csv/);
    assert.equal(await csv.text(), `${CSV_HEADER}\n${expected.map((r) => `${csvRow(r)}\n`).join('')}`);

    const strip = (await (await get(`/api/readings?device=strip&from=-1h`)).json()) as {
      device_id: string;
    }[];
    assert.equal(new Set(strip.map((r) => r.device_id)).size, 6, "a strip's alias selects its outlets");
  });

  test('bad requests get a status and a message: unknown device 404, bad time 400, wrong method 405, unknown path 404', async () => {
    const unknown = await get('/api/readings?device=nothing-like-this');
    assert.equal(unknown.status, 404);
    assert.match(
      ((await unknown.json()) as { error: string }).error,
      /no device with id or alias "nothing-like-this"/,
    );
    const badTime = await get('/api/readings?from=yesterday-ish');
    assert.equal(badTime.status, 400);
    assert.match(
      ((await badTime.json()) as { error: string }).error,
      /cannot read 'yesterday-ish' as a time/,
    );
    const badFormat = await get('/api/readings?format=xml');
    assert.equal(badFormat.status, 400);
    const post = await get('/health', { method: 'POST' });
    assert.equal(post.status, 405);
    await post.arrayBuffer();
    const missing = await get('/nope');
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
  });

  test('`kasa-monitor status` prints a readable summary of /health, and the JSON with --json', async () => {
    const file = join(root, 'status.yaml');
    writeFileSync(file, `http:\n  listen: 127.0.0.1:${daemon.httpAddress?.port}\n`);
    const run = async (args: string[]) => {
      const stdout = textSink();
      const stderr = textSink();
      const code = await runCli(args, { stdout: stdout.stream, stderr: stderr.stream, env: {} });
      return { code, stdout: stdout.text(), stderr: stderr.text() };
    };
    const text = await run(['status', '-c', file]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^kasa-monitor: (ok|degraded) \(checked /);
    assert.match(text.stdout, /\n {2}ok {8}sqlite +query answered in/);
    assert.match(text.stdout, /\n {2}ok {8}plugs +3 of 3 plugs online/);
    assert.match(text.stdout, /\npool +\d+ in use, \d+ idle, \d+ waiting; size 5 \+ overflow 10/);
    assert.match(text.stdout, /\nretries +sqlite\.write 0 retries/);
    assert.match(text.stdout, /\nperformance +event loop p99 /);
    const json = await run(['status', '-c', file, '--json']);
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout) as HealthReport;
    assert.ok(report.checks['sqlite'] !== undefined);

    const closed = await freePort();
    writeFileSync(file, `http:\n  listen: 127.0.0.1:${closed}\n`);
    const down = await run(['status', '-c', file]);
    assert.equal(down.code, 1);
    assert.match(
      down.stderr,
      new RegExp(`cannot reach the daemon at http://127\\.0\\.0\\.1:${closed}/health: ECONNREFUSED`),
    );
  });
});

function num(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}
