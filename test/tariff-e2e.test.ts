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
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { backfillTargets } from '../src/backfill/targets.js';
import { zoneCalendar } from '../src/energy/index.js';
import {
  energyRows,
  manualDiscovery,
  recordSimulatedTime,
  runEnergy,
  runScheduledBackfill,
  writeEnergyConfig,
} from './helpers/energy.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { tempRoot } from './helpers/temp.js';

const PORT = 37000;
const ZONE = 'Europe/Berlin';
const PLUG = `E7${'0'.repeat(37)}1`;
const WATTS = 1200;
const POLL_MS = 10_000;
const HOUR = 3_600_000;
/** 2026-06-10 (a Wednesday) 06:30 in Berlin (CEST, UTC+2). */
const START = Date.UTC(2026, 5, 10, 4, 30);
const END = START + 2 * HOUR;

const root = tempRoot('kasa-tariff-e2e-');

/** Polls the fleet every POLL_MS of simulated time in [from, to], with `meter(t)` as each plug's realtime. */
async function record(
  fleet: SimulatorFleet,
  dbPath: string,
  from: number,
  to: number,
  meter: (t: number) => number,
  plugs: readonly string[] = [PLUG],
): Promise<void> {
  const stats = await recordSimulatedTime({
    discovery: manualDiscovery({ port: PORT, timeoutMs: 500 }),
    dbPath,
    timeZone: ZONE,
    from,
    to,
    stepMs: POLL_MS,
    pollTimeoutMs: 2000,
    setMeters: (t) => {
      for (const plug of plugs) {
        fleet.setRealtime(plug, {
          power_mw: WATTS * 1000,
          voltage_mv: 230_000,
          current_ma: 5217,
          total_wh: meter(t),
        });
      }
    },
  });
  assert.equal(stats.pollsOk, plugs.length * ((to - from) / POLL_MS + 1), 'every poll answered');
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
    // The edge at 07:30 is not on a whole hour: the report must price minute buckets.
    const config = writeEnergyConfig(join(root, 'tariff.yaml'), {
      timeZone: ZONE,
      dbPath,
      sections: [
        'tariff:',
        '  currency: EUR',
        '  periods:',
        '    - from: 2026-01-01',
        '      standing_charge: 0.45',
        '      rates:',
        '        - { days: [mon, tue, wed, thu, fri], from: "07:30", to: "23:00", price: 0.31 }',
        '        - { price: 0.18 }',
      ],
    });
    const result = await runEnergy(config, ['--format', 'csv', '--from', '2026-06-10', '--to', '2026-06-11']);
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
    const table = await runEnergy(config, ['--from', '2026-06-10', '--to', '2026-06-11']);
    assert.match(table.stdout, /^total\s+2\.4\d\d\s+0\.5\d+/m);
    assert.match(table.stdout, /Standing charge \(not split over devices\): 0\.45 EUR/);
  });
});

const HOME = `E7${'0'.repeat(37)}2`;
const AWAY = `E7${'0'.repeat(37)}3`;

describe('backfill from the plugs’ own day statistics', () => {
  test('a day the daemon was stopped is filled with the plug’s day total minus the measured part; a second run changes nothing; a plug in another zone is filled per month with one warning', async () => {
    // Last month (always complete, within the plugs' two months of day statistics): readings from
    // day 9 20:00 to 23:00, the daemon stopped until day 11 02:00, readings again until 04:00.
    // Both plugs draw 1.2 kW throughout; their counters kept counting while the daemon was down.
    const cal = zoneCalendar(ZONE);
    const lastMonth = cal.monthStart(cal.monthStart(Date.now()) - 1);
    const { year, month } = cal.parts(lastMonth);
    const day = (d: number) => cal.midnight(year, month, d);
    const label = (d: number) => cal.formatDay(day(d));
    const first: [number, number] = [day(9) + 20 * HOUR, day(9) + 23 * HOUR];
    const second: [number, number] = [day(11) + 2 * HOUR, day(11) + 4 * HOUR];
    const counter = (t: number) => 10_000 + Math.floor((WATTS * (t - first[0])) / HOUR);
    // What the plugs say for those days (not what the counter would give: the figures must be theirs).
    const seeded = new Map([
      [9, 4200],
      [10, 20_500],
      [11, 3900],
    ]);
    const daysInMonth = cal.parts(cal.nextMonthStart(lastMonth) - 1).day;
    const stats = Array.from({ length: daysInMonth }, (_, i) => ({
      year,
      month,
      day: i + 1,
      energyWh: seeded.get(i + 1) ?? 0,
    }));
    const dbPath = join(root, 'backfill.db');
    const fleet = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110v2', address: '127.37.0.2', deviceId: HOME, alias: 'home' },
        { model: 'hs110v2', address: '127.37.0.3', deviceId: AWAY, alias: 'away' },
      ],
    });
    const config = writeEnergyConfig(join(root, 'backfill.yaml'), {
      timeZone: ZONE,
      dbPath,
      sections: [
        'discovery:',
        '  broadcast: 127.255.255.255',
        `  port: ${PORT}`,
        '  timeout: 1s',
        'polling:\n  timeout: 2s',
      ],
    });
    const report = (period: 'day' | 'month') => energyRows(config, { period, from: label(9), to: label(12) });
    try {
      await record(fleet, dbPath, first[0], first[1], counter, [HOME, AWAY]);
      await record(fleet, dbPath, second[0], second[1], counter, [HOME, AWAY]);
      fleet.setDayStats(HOME, stats);
      fleet.setDayStats(AWAY, stats);
      // HOME keeps our zone's clock; AWAY's clock is nine hours ahead of UTC (another zone).
      fleet.setClockOffset(HOME, cal.offsetMs(day(10)));
      fleet.setClockOffset(AWAY, 9 * HOUR);

      // The daemon's scheduled run (in a worker thread) over the plugs discovery finds.
      const { done, lines } = await runScheduledBackfill(manualDiscovery({ port: PORT, timeoutMs: 500 }), {
        dbPath,
        timeZone: ZONE,
        requestTimeoutMs: 2000,
      });
      assert.ok(done, JSON.stringify(lines()));
      assert.equal(done.filled, 4, JSON.stringify(done));
      const warnings = lines().filter((l) => String(l.msg).includes('not in time_zone'));
      assert.equal(warnings.length, 1, JSON.stringify(lines()));
      assert.equal(warnings[0]?.['device_id'], AWAY);

      const days = await report('day');
      const home = (d: number) => days.find((r) => r.device_id === HOME && r.period === label(d));
      // Each filled day: the plug's total; the fill is that total minus what the readings measured.
      for (const [d, measured] of [
        [9, 3600],
        [10, 0],
        [11, 2400],
      ] as const) {
        const row = home(d);
        assert.ok(row, `no row for ${label(d)}: ${JSON.stringify(days)}`);
        assert.equal(row.source, 'device');
        assert.ok(Math.abs(row.measured_kwh - measured / 1000) <= 0.01, JSON.stringify(row));
        const fill = ((seeded.get(d) ?? 0) - measured) / 1000;
        assert.ok(Math.abs(row.device_kwh - fill) <= 0.01, `${label(d)}: fill ${row.device_kwh} vs ${fill}`);
        assert.ok(Math.abs(row.energy_kwh - (seeded.get(d) ?? 0) / 1000) <= 0.01, JSON.stringify(row));
        assert.equal(row.estimated_kwh, 0);
      }
      // AWAY's days stay estimated (the gap's counter, spread evenly); its month is the plug's.
      assert.equal(days.find((r) => r.device_id === AWAY && r.period === label(10))?.source, 'estimated');
      const months = await report('month');
      const away = months.find((r) => r.device_id === AWAY);
      assert.ok(away, JSON.stringify(months));
      assert.equal(away.source, 'device');
      assert.ok(Math.abs(away.energy_kwh - 28.6) <= 0.01, JSON.stringify(away));

      // A second run (`energy --backfill`, another process) stores nothing and changes nothing.
      const before = await report('day');
      const again = await runEnergy(config, [
        '--backfill',
        '--format',
        'json',
        '--from',
        label(9),
        '--to',
        label(12),
      ]);
      assert.match(again.stderr, /backfill: 0 gap fill\(s\) stored, 0 request\(s\) to plugs/);
      assert.deepEqual(JSON.parse(again.stdout), before);
    } finally {
      await fleet.stop();
    }
  });
});

describe('the legacy statistics source', () => {
  test('old firmware (kWh floats) and newer (Wh) both read as Wh; a strip outlet answers for itself', async () => {
    const OLD = `E7${'0'.repeat(37)}4`;
    const STRIP = `E7${'0'.repeat(36)}5`;
    const fleet = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110', address: '127.37.0.4', deviceId: OLD, alias: 'old' },
        { model: 'hs300', address: '127.37.0.5', deviceId: STRIP, alias: 'strip' },
      ],
    });
    const discovery = manualDiscovery({ port: PORT, timeoutMs: 500 });
    try {
      await discovery.runRound();
      const strip = fleet.devices.find((d) => d.deviceId === STRIP);
      const outlet = strip?.childIds[2] as string;
      fleet.setDayStats(OLD, [{ year: 2026, month: 6, day: 10, energyWh: 1234 }]);
      fleet.setDayStats(outlet, [{ year: 2026, month: 6, day: 10, energyWh: 777 }]);
      const targets = backfillTargets(discovery.registry, { transport: 'udp', timeoutMs: 2000 });
      const old = targets.find((t) => t.deviceId === OLD);
      const bar = targets.find((t) => t.deviceId === STRIP);
      assert.ok(old && bar);
      const oldDays = await old.stats.dayStats(null, 2026, 6);
      assert.ok(Math.abs((oldDays.get(10) ?? 0) - 1234) < 1e-6, `old firmware: ${oldDays.get(10)}`);
      const outletDays = await bar.stats.dayStats(outlet, 2026, 6);
      assert.equal(outletDays.get(10), 777);
      const months = await bar.stats.monthStats(outlet, 2026);
      assert.ok((months.get(6) ?? 0) >= 777);
    } finally {
      await discovery.stop();
      await fleet.stop();
    }
  });
});
