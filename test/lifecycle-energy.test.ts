/**
 * Energy accounting end to end, against simulated plugs whose counters the test drives.
 *
 * A simulated day is 8,640 polls per plug at a 10 s interval; waiting for it in real time is not an
 * option, so the test injects the clock instead: it mocks `Date` only (node:test mock timers with
 * apis ['Date']) and steps it by 10 s before each `poller.tick()`. Everything else is the daemon's
 * own path: discovery finds the plugs on loopback, the poller polls them over UDP and takes each
 * reading's time from the (mocked) clock, the bounded queue and the writer batch the readings into
 * a real SqliteStore whose worker keeps the rollups, and `kasa-monitor energy` (a separate process,
 * real clock) reports from the database file. Real timers stay real, so request timeouts and the
 * writer's flush timer behave as in the daemon.
 *
 * Three plugs draw a steady 1 kW each: one plainly, one whose counter restarts at zero at noon (as
 * after a reboot), and one whose readings are lost twice (10:00-10:30 and 23:30-00:30, across
 * midnight), the way a network outage loses them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { energyRows, manualDiscovery, recordSimulatedTime, writeEnergyConfig } from './helpers/energy.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';

const PORT = 25100;
const ZONE = 'Europe/Berlin';
const STEADY = `E6${'0'.repeat(37)}1`;
const RESET = `E6${'0'.repeat(37)}2`;
const GAPPY = `E6${'0'.repeat(37)}3`;
const WATTS = 1000;
const POLL_MS = 10_000;
/** 2026-06-10 00:00 in Berlin (CEST, UTC+2). */
const DAY_START = Date.UTC(2026, 5, 9, 22);
const HOUR = 3_600_000;
/** Simulated: the whole day and one hour of the next. */
const END = DAY_START + 25 * HOUR;
const BASE_WH = 73_456;

const root = mkdtempSync(join(tmpdir(), 'kasa-lifecycle-energy-'));
const dbPath = join(root, 'kasa.db');
const configPath = join(root, 'config.yaml');

interface EnergyJsonRow {
  period: string;
  device_id: string;
  energy_kwh: number;
  covered_hours: number;
  counter_restarts: number;
  estimated_kwh: number;
  source: string;
  gaps: { from: string; to: string; counter_kwh: number; counted: boolean }[];
}

let rows: EnergyJsonRow[] = [];

function row(deviceId: string, period: string): EnergyJsonRow {
  const found = rows.find((r) => r.device_id === deviceId && r.period === period);
  assert.ok(found, `no energy row for ${deviceId} on ${period}: ${JSON.stringify(rows)}`);
  return found;
}

/** Lost readings of the gappy plug: [from, to) in simulated time. */
const LOST: readonly [number, number][] = [
  [DAY_START + 10 * HOUR + 5000, DAY_START + 10.5 * HOUR],
  [DAY_START + 23.5 * HOUR + 5000, DAY_START + 24.5 * HOUR],
];

async function simulateDay(fleet: SimulatorFleet): Promise<void> {
  const noon = DAY_START + 12 * HOUR;
  const stats = await recordSimulatedTime({
    discovery: manualDiscovery({ port: PORT, timeoutMs: 500 }),
    dbPath,
    timeZone: ZONE,
    from: DAY_START,
    to: END,
    stepMs: POLL_MS,
    pollTimeoutMs: 2000,
    queueCapacity: 1_000_000,
    discovered: (registry) => assert.equal(registry.counts().online, 3, 'discovery found the three plugs'),
    // What the network loses never reaches the queue.
    lost: (reading) =>
      reading.channel === GAPPY && LOST.some(([from, to]) => reading.tsMs >= from && reading.tsMs < to),
    setMeters: (t) => {
      const used = (ms: number) => Math.floor((WATTS * ms) / HOUR);
      const meter = (totalWh: number) => ({
        power_mw: WATTS * 1000,
        voltage_mv: 230_000,
        current_ma: 4348,
        total_wh: totalWh,
      });
      fleet.setRealtime(STEADY, meter(BASE_WH + used(t - DAY_START)));
      fleet.setRealtime(GAPPY, meter(BASE_WH + used(t - DAY_START)));
      // The reset plug restarts at noon: its counter begins again at zero.
      fleet.setRealtime(RESET, meter(t < noon ? BASE_WH + used(t - DAY_START) : used(t - noon)));
    },
  });
  assert.equal(
    stats.pollsOk,
    3 * ((END - DAY_START) / POLL_MS + 1),
    `every poll answered: ${JSON.stringify(stats.rejected)}`,
  );
}

before(async () => {
  writeEnergyConfig(configPath, { timeZone: ZONE, dbPath });
  const fleet = await startSimulators({
    port: PORT,
    devices: [
      { model: 'hs110v2', address: '127.0.70.1', deviceId: STEADY, alias: 'steady' },
      { model: 'hs110v2', address: '127.0.70.2', deviceId: RESET, alias: 'rebooted' },
      { model: 'hs110v2', address: '127.0.70.3', deviceId: GAPPY, alias: 'gappy' },
    ],
  });
  try {
    await simulateDay(fleet);
  } finally {
    await fleet.stop();
  }
  rows = await energyRows<EnergyJsonRow>(configPath, { from: '2026-06-10', to: '2026-06-12' });
});

after(() => rmSync(root, { recursive: true, force: true }));

describe('energy from simulated plugs over a simulated day', () => {
  test('a steady 1 kW load for a day gives 24 kWh within 0.5 %', () => {
    const day = row(STEADY, '2026-06-10');
    assert.ok(Math.abs(day.energy_kwh - 24) <= 24 * 0.005, `got ${day.energy_kwh} kWh`);
    assert.equal(day.covered_hours, 24);
    assert.equal(day.gaps.length, 0);
  });

  test('a counter reset in the middle of the day changes nothing in the day’s kWh', () => {
    const steady = row(STEADY, '2026-06-10');
    const reset = row(RESET, '2026-06-10');
    assert.equal(reset.counter_restarts, 1);
    assert.ok(Math.abs(reset.energy_kwh - 24) <= 24 * 0.005, `got ${reset.energy_kwh} kWh`);
    // The integer counter loses at most a few Wh at the restart.
    assert.ok(
      Math.abs(reset.energy_kwh - steady.energy_kwh) <= 0.005,
      `${reset.energy_kwh} vs ${steady.energy_kwh}`,
    );
  });

  test('a gap is reported, and its counter increase is spread evenly over it as estimated energy (also across midnight)', () => {
    const day = row(GAPPY, '2026-06-10');
    assert.deepEqual(
      day.gaps.map((g) => [g.from, g.to, g.counted]),
      [
        ['2026-06-10T08:00:00.000Z', '2026-06-10T08:30:00.000Z', true],
        ['2026-06-10T21:30:00.000Z', '2026-06-10T22:30:00.000Z', true],
      ],
    );
    assert.ok(Math.abs((day.gaps[0]?.counter_kwh ?? 0) - 0.5) <= 0.002, JSON.stringify(day.gaps[0]));
    assert.ok(Math.abs((day.gaps[1]?.counter_kwh ?? 0) - 1) <= 0.002, JSON.stringify(day.gaps[1]));
    // The gap across midnight gives each day the half hour it holds, as estimated energy.
    assert.ok(Math.abs(day.energy_kwh - 24) <= 0.005, `got ${day.energy_kwh} kWh`);
    assert.ok(Math.abs(day.estimated_kwh - 1) <= 0.005, `estimated ${day.estimated_kwh} kWh`);
    assert.equal(day.source, 'estimated');
    assert.ok(Math.abs(day.covered_hours - 23) <= 0.01, `covered ${day.covered_hours} h`);
    const next = row(GAPPY, '2026-06-11');
    assert.deepEqual(
      next.gaps.map((g) => g.counted),
      [true],
    );
    assert.ok(Math.abs(next.energy_kwh - 1) <= 0.005, `got ${next.energy_kwh} kWh`);
    assert.equal(row(STEADY, '2026-06-10').source, 'measured');
  });
});
