/**
 * Cost over HTTP: GET /api/energy (per device and period, totals with the standing charge) and the
 * `kasa_energy_cost_total` counter, which comes from stored data and so survives a restart. A real
 * SQLite file (written by SqliteStore with rollups), the real reader pool (worker threads) and the
 * real HTTP server on 127.37.0.1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Reading } from '../src/domain/reading.js';
import { zoneCalendar } from '../src/energy/index.js';
import { HttpServer, LatestReadings } from '../src/http/index.js';
import { createSilentLogger } from '../src/log/logger.js';
import { type EnergyReportSettings, ReaderPool, SqliteStore } from '../src/storage/sqlite/index.js';
import { testStoreOptions } from './helpers/sqlite.js';
import { tempRoot } from './helpers/temp.js';

const HOUR = 3_600_000;
const MIN = 60_000;
const ZONE = 'UTC';
const root = tempRoot('kasa-tariff-http-');
const dbPath = join(root, 'kasa.db');

const SETTINGS: EnergyReportSettings = {
  timeZone: ZONE,
  gapLimitMs: 5 * MIN,
  tariff: {
    currency: 'EUR',
    prices_file: null,
    periods: [
      {
        from: '2026-01-01',
        standing_charge: 0.45,
        rates: [{ days: null, from: null, to: null, price: 0.2 }],
      },
    ],
  },
};

/** A steady 1 kW on channel `channel` from `fromMs` to `toMs`, one reading a minute. */
function steady(channel: string, fromMs: number, toMs: number, startWh = 500): Reading[] {
  const out: Reading[] = [];
  for (let t = fromMs; t <= toMs; t += MIN) {
    out.push({
      channel,
      tsMs: t,
      powerMw: 1_000_000,
      voltageMv: 230_000,
      currentMa: 4348,
      totalWh: startWh + Math.floor((1000 * (t - fromMs)) / HOUR),
    });
  }
  return out;
}

const log = createSilentLogger();
let readers: ReaderPool;
/** This month's readings: [from, to]. */
let recent: [number, number];

/** A server on its own port (fetch keeps connections alive: a restarted server gets a new port). */
function server(port: number): HttpServer {
  return new HttpServer(
    {
      status: () => null,
      health: () => null,
      refreshHealth: () => Promise.reject(new Error('no supervisor in this test')),
      devices: () => [],
      latest: new LatestReadings(),
      pool: () => readers.stats(),
      readers,
      energySettings: () => SETTINGS,
    },
    { host: '127.37.0.1', port },
    log,
  );
}

before(async () => {
  const store = new SqliteStore(testStoreOptions(dbPath, { timeZone: ZONE }), log);
  await store.start();
  // A whole day in June, and (for the default range, the current month) a stretch earlier today.
  await store.writeBatch(steady('PLUG', Date.UTC(2026, 5, 10), Date.UTC(2026, 5, 11)));
  const now = Date.now();
  const monthStart = zoneCalendar(ZONE).monthStart(now);
  recent = [Math.max(monthStart, now - 2 * HOUR), Math.max(monthStart, now - 2 * HOUR) + 30 * MIN];
  // The counter went on where June ended (24.5 kWh): the time between is a gap with no energy.
  await store.writeBatch(steady('PLUG', recent[0], recent[1], 24_500));
  await store.stop();
  readers = new ReaderPool({ path: dbPath, size: 1, maxOverflow: 0, timeoutMs: 5000, recycleMs: HOUR }, log);
  await readers.start();
});

after(async () => {
  await readers.stop();
});

interface EnergyBody {
  currency: string;
  rows: { period: string; device_id: string; energy_kwh: number; cost: number | null; source: string }[];
  totals: { energy_kwh: number; cost: number | null; standing_charge: number | null; total: number | null };
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(`http://127.37.0.1:37010${path}`);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as T;
}

async function costCounter(port: number): Promise<number> {
  const text = await (await fetch(`http://127.37.0.1:${port}/metrics`)).text();
  // promtool-clean is part of the /metrics contract (.ci/run installs it).
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
  const match = /^kasa_energy_cost_total\{device_id="PLUG",alias="[^"]*",currency="EUR"\} (\S+)$/m.exec(text);
  assert.ok(
    match,
    text
      .split('\n')
      .filter((l) => l.includes('cost'))
      .join('\n'),
  );
  return Number(match[1]);
}

describe('GET /api/energy and kasa_energy_cost_total', () => {
  test('per device and day: energy, cost and currency; totals carry the standing charge', async () => {
    const http = server(37010);
    await http.start();
    try {
      const body = await getJson<EnergyBody>('/api/energy?period=day&from=2026-06-10&to=2026-06-11');
      assert.deepEqual(
        body.rows.map((r) => [r.period, r.device_id, r.energy_kwh, r.cost, r.source]),
        [['2026-06-10', 'PLUG', 24, 4.8, 'measured']],
      );
      assert.equal(body.currency, 'EUR');
      assert.deepEqual(body.totals, {
        energy_kwh: 24,
        cost: 4.8,
        standing_charge: 0.45,
        total: 5.25,
        currency: 'EUR',
      });
      // Without from/to: the current local month.
      const month = await getJson<EnergyBody>('/api/energy?period=month');
      const label = zoneCalendar(ZONE).formatMonth(Date.now());
      assert.deepEqual(
        month.rows.map((r) => [r.period, r.energy_kwh]),
        [[label, 0.5]],
      );
      const bad = await fetch('http://127.37.0.1:37010/api/energy?period=week');
      assert.equal(bad.status, 400);
    } finally {
      await http.stop();
    }
  });

  test('the cost counter comes from stored data: the same after a restart', async () => {
    const first = server(37011);
    let before: number;
    assert.ok(await first.start(), first.error ?? 'not listening');
    try {
      before = await costCounter(37011);
      // June (24 kWh) and this month's half hour (0.5 kWh), at 0.2 EUR/kWh.
      assert.ok(Math.abs(before - 24.5 * 0.2) < 1e-6, `counter ${before}`);
    } finally {
      await first.stop();
    }
    const second = server(37012);
    await second.start();
    try {
      assert.equal(await costCounter(37012), before);
    } finally {
      await second.stop();
    }
  });
});
