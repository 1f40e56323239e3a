/**
 * Cost end to end: a simulated plug draws a known constant power through a tariff band edge; the
 * daemon's own path (discovery on loopback, poller over UDP, bounded queue, writer, SqliteStore
 * with rollups) records it, and `kasa-monitor energy --format csv` (a separate process) must price
 * it as power × time × price per band, within 0.5 %.
 *
 * Simulated time as in lifecycle-energy.test.ts: only `Date` is mocked (node:test mock timers) and
 * stepped by the poll interval before each `poller.tick()`; real timers stay real.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, mock, test } from 'node:test';
import { Discovery } from '../src/discovery/discovery.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Poller } from '../src/poller/poller.js';
import type { Reading } from '../src/poller/reading.js';
import { BoundedQueue } from '../src/queue/bounded-queue.js';
import { SqliteStore } from '../src/storage/sqlite/index.js';
import { Writer } from '../src/storage/writer.js';
import { runCliProcess } from './helpers/cli.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';

const PORT = 37000;
const ZONE = 'Europe/Berlin';
const PLUG = `E7${'0'.repeat(37)}1`;
const WATTS = 1200;
const POLL_MS = 10_000;
const HOUR = 3_600_000;
/** 2026-06-10 (a Wednesday) 06:30 in Berlin (CEST, UTC+2). */
const START = Date.UTC(2026, 5, 10, 4, 30);
const END = START + 2 * HOUR;

const root = mkdtempSync(join(tmpdir(), 'kasa-tariff-e2e-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Polls the fleet every POLL_MS of simulated time in [from, to], with `meter(t)` as each plug's realtime. */
async function record(
  fleet: SimulatorFleet,
  dbPath: string,
  from: number,
  to: number,
  meter: (t: number) => number,
): Promise<void> {
  const log = createSilentLogger();
  const discovery = new Discovery(
    {
      broadcast: ['127.255.255.255'],
      port: PORT,
      intervalMs: HOUR,
      timeoutMs: 500,
      hosts: [],
      offlineTolerance: 1_000_000,
      receiveBufferBytes: 1 << 20,
    },
    log,
  );
  await discovery.runRound();
  const store = new SqliteStore(
    {
      path: dbPath,
      journalMode: 'WAL',
      synchronous: 'NORMAL',
      cacheSize: -8000,
      tempStore: 'MEMORY',
      busyTimeoutMs: 5000,
      lifecycle: { rollups: true, timeZone: ZONE, gapLimitMs: 5 * 60_000 },
    },
    log,
  );
  await store.start();
  const queue = new BoundedQueue<Reading>({ capacity: 100_000, overflow: 'drop-newest' }, log);
  const writer = new Writer(queue, store, { batchSize: 1000, flushIntervalMs: 200 }, log);
  writer.start();
  const poller = new Poller(
    discovery.registry,
    queue,
    { intervalMs: POLL_MS, timeoutMs: 2000, concurrency: 8, transport: 'udp' },
    log,
  );
  mock.timers.enable({ apis: ['Date'], now: from });
  try {
    for (let t = from; t <= to; t += POLL_MS) {
      mock.timers.setTime(t);
      fleet.setRealtime(PLUG, {
        power_mw: WATTS * 1000,
        voltage_mv: 230_000,
        current_ma: 5217,
        total_wh: meter(t),
      });
      await poller.tick();
    }
  } finally {
    mock.timers.reset();
  }
  assert.equal(poller.stats().pollsOk, (to - from) / POLL_MS + 1, 'every poll answered');
  await poller.stop();
  await writer.stop();
  await store.stop();
  await discovery.stop();
}

describe('cost of a simulated plug through a band edge', () => {
  test('energy --format csv prices each band at power × time × price, within 0.5 %', async () => {
    const dbPath = join(root, 'tariff.db');
    const fleet = await startSimulators({
      port: PORT,
      devices: [{ model: 'hs110v2', address: '127.37.0.1', deviceId: PLUG, alias: 'heater' }],
    });
    try {
      await record(fleet, dbPath, START, END, (t) => 5000 + Math.floor((WATTS * (t - START)) / HOUR));
    } finally {
      await fleet.stop();
    }
    const config = join(root, 'tariff.yaml');
    // The edge at 07:30 is not on a whole hour: the report must price minute buckets.
    writeFileSync(
      config,
      [
        `time_zone: ${ZONE}`,
        'storage:',
        `  sqlite:\n    path: ${dbPath}`,
        '  rollups:\n    gap_limit: 5m',
        'tariff:',
        '  currency: EUR',
        '  periods:',
        '    - from: 2026-01-01',
        '      standing_charge: 0.45',
        '      rates:',
        '        - { days: [mon, tue, wed, thu, fri], from: "07:30", to: "23:00", price: 0.31 }',
        '        - { price: 0.18 }',
        '',
      ].join('\n'),
    );
    const result = await runCliProcess([
      'energy',
      '-c',
      config,
      '--format',
      'csv',
      '--from',
      '2026-06-10',
      '--to',
      '2026-06-11',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const [header, line, ...rest] = result.stdout.trimEnd().split('\n');
    assert.equal(header, 'period,device_id,alias,energy_kwh,cost,currency,source');
    assert.equal(rest.length, 0, result.stdout);
    const [period, device, , kwh, cost, currency, source] = (line ?? '').split(',');
    assert.deepEqual([period, device, currency, source], ['2026-06-10', PLUG, 'EUR', 'measured']);
    const expected = (WATTS / 1000) * 1 * 0.18 + (WATTS / 1000) * 1 * 0.31;
    assert.match(cost ?? '', /^\d+\.\d{2,}$/);
    assert.ok(Math.abs(Number(cost) - expected) <= expected * 0.005, `cost ${cost} vs ${expected}`);
    assert.ok(Math.abs(Number(kwh) - 2.4) <= 2.4 * 0.005, `energy ${kwh}`);

    // The table's totals row carries the standing charge separately (one day: 0.45).
    const table = await runCliProcess(['energy', '-c', config, '--from', '2026-06-10', '--to', '2026-06-11']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^total\s+2\.4\d\d\s+0\.5\d+/m);
    assert.match(table.stdout, /Standing charge \(not split over devices\): 0\.45 EUR/);
  });
});
