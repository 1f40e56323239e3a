/**
 * Backfill from newer (smart protocol, KLAP) plugs end to end, like tariff-e2e.test.ts does for
 * legacy plugs: the daemon's own path records a smart plug and a P304M-like strip through the smart
 * fleet, the daemon is stopped for a simulated day, and the scheduled run (its SQLite work in the
 * worker thread, the plugs asked through the fleet's sessions on the main thread) fills each day
 * with the plug's own day total (seeded in the smart simulator: our fixture data) minus what the
 * readings measured. A plug that keeps only today/month energy fills nothing; a plug in another
 * zone is filled per month. A second run (`energy --backfill`, another process) changes nothing.
 *
 * Simulated time: only `Date` is mocked while recording (KLAP sessions run on performance.now()).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { backfillTargets } from '../src/backfill/targets.js';
import type { Discovery } from '../src/discovery/discovery.js';
import { type SmartSimFleet, startSmartSimulators } from '../src/discovery/smart-simulator.js';
import { zoneCalendar } from '../src/energy/index.js';
import {
  energyRows,
  manualDiscovery,
  recordSimulatedTime,
  runEnergy,
  runScheduledBackfill,
  writeEnergyConfig,
} from './helpers/energy.js';
import { tempRoot } from './helpers/temp.js';

const LEGACY_PORT = 28401; // nothing answers there: only smart plugs in this test
const DISCOVERY_PORT = 28402;
const HTTP_PORT = 28480;
const ACCOUNT = { username: 'backfill@example.com', password: 'smart-stats' };
const ZONE = 'Europe/Berlin';
const WATTS = 1200;
const POLL_MS = 10_000;
const HOUR = 3_600_000;
const id = (n: number) => `5B${String(n).padStart(38, '0')}`;
const PLUG = id(1);
const STRIP = id(2);
const BASIC = id(3);
const AWAY = id(4);

const root = tempRoot('kasa-smart-backfill-');

function discovery(): Discovery {
  return manualDiscovery({
    port: LEGACY_PORT,
    smartPort: DISCOVERY_PORT,
    account: ACCOUNT,
    smartRequestTimeoutMs: 3000,
    timeoutMs: 800,
  });
}

/** Polls every channel every POLL_MS of simulated time in [from, to]; `meter(t)` is month_energy. */
async function record(
  fleet: SmartSimFleet,
  channels: readonly string[],
  dbPath: string,
  from: number,
  to: number,
  meter: (t: number) => number,
): Promise<void> {
  const stats = await recordSimulatedTime({
    discovery: discovery(),
    dbPath,
    timeZone: ZONE,
    from,
    to,
    stepMs: POLL_MS,
    pollTimeoutMs: 3000,
    setMeters: (t) => {
      for (const c of channels) fleet.setValues(c, { powerMw: WATTS * 1000, monthWh: meter(t) });
    },
  });
  assert.ok(stats.pollsOk > 0, JSON.stringify(stats));
}

describe('backfill from smart plugs’ own statistics', () => {
  test('a day the daemon was stopped is filled with the smart plug’s (and each strip outlet’s) day total minus the measured part; a today/month-only plug fills nothing; another zone fills per month; a second run changes nothing', async () => {
    // Last month (complete): readings day 9 20:00–23:00 and day 11 02:00–04:00, the daemon stopped
    // between; the plugs' month counters kept counting (1.2 kW throughout).
    const cal = zoneCalendar(ZONE);
    const lastMonth = cal.monthStart(cal.monthStart(Date.now()) - 1);
    const { year, month } = cal.parts(lastMonth);
    const day = (d: number) => cal.midnight(year, month, d);
    const label = (d: number) => cal.formatDay(day(d));
    const first: [number, number] = [day(9) + 20 * HOUR, day(9) + 23 * HOUR];
    const second: [number, number] = [day(11) + 2 * HOUR, day(11) + 4 * HOUR];
    const counter = (t: number) => 10_000 + Math.floor((WATTS * (t - first[0])) / HOUR);
    const seeded = (base: number) =>
      new Map([
        [9, 4200 + base],
        [10, 20_500 + base],
        [11, 3900 + base],
      ]);
    const stats = (m: Map<number, number>) =>
      [...m].map(([d, energyWh]) => ({ year, month, day: d, energyWh }));
    const spec = { kind: 'klap' as const, account: ACCOUNT, sessionTimeoutS: 10_000_000, emeterData: false };
    const fleet = await startSmartSimulators({
      discoveryPort: DISCOVERY_PORT,
      httpPort: HTTP_PORT,
      devices: [
        { ...spec, address: '127.28.0.11', model: 'P110', deviceId: PLUG, energyData: true },
        {
          ...spec,
          address: '127.28.0.12',
          model: 'P304M',
          deviceId: STRIP,
          outlets: ['lamp', 'fridge'],
          energyData: true,
        },
        { ...spec, address: '127.28.0.13', model: 'P110', deviceId: BASIC },
        { ...spec, address: '127.28.0.14', model: 'P110', deviceId: AWAY, energyData: true },
      ],
    });
    const strip = fleet.devices.find((d) => d.deviceId === STRIP);
    assert.ok(strip);
    const [lamp, fridge] = strip.outletIds as [string, string];
    const dayChannels = new Map([
      [PLUG, seeded(0)],
      [lamp, seeded(100)],
      [fridge, seeded(200)],
    ]);
    const channels = [PLUG, lamp, fridge, BASIC, AWAY];
    const dbPath = join(root, 'smart.db');
    const config = writeEnergyConfig(join(root, 'smart.yaml'), {
      timeZone: ZONE,
      dbPath,
      sections: [
        'discovery:',
        '  broadcast: 127.255.255.255',
        `  port: ${LEGACY_PORT}`,
        `  smart_port: ${DISCOVERY_PORT}`,
        '  timeout: 800ms',
        'credentials:',
        `  username: ${ACCOUNT.username}`,
        `  password: ${ACCOUNT.password}`,
        'polling:\n  timeout: 3s',
      ],
    });
    const report = (period: 'day' | 'month') => energyRows(config, { period, from: label(9), to: label(12) });
    try {
      await record(fleet, channels, dbPath, first[0], first[1], counter);
      await record(fleet, channels, dbPath, second[0], second[1], counter);
      for (const [c, m] of dayChannels) fleet.setDayStats(c, stats(m));
      fleet.setDayStats(BASIC, stats(seeded(0)));
      fleet.setDayStats(AWAY, stats(seeded(0)));
      for (const d of [PLUG, STRIP, BASIC]) fleet.setClockOffset(d, cal.offsetMs(day(10)));
      fleet.setClockOffset(AWAY, 9 * HOUR);

      // The daemon's scheduled run over the plugs discovery finds.
      const { done, lines } = await runScheduledBackfill(discovery(), {
        dbPath,
        timeZone: ZONE,
        requestTimeoutMs: 3000,
      });
      assert.ok(done, JSON.stringify(lines()));
      assert.deepEqual(done.failed, []);
      // Three days for the plug and for each outlet; one month for AWAY; nothing for BASIC.
      assert.equal(done.filled, 10, JSON.stringify(done));
      const warnings = lines().filter((l) => String(l.msg).includes('not in time_zone'));
      assert.equal(warnings.length, 1, JSON.stringify(lines()));
      assert.equal(warnings[0]?.['device_id'], AWAY);

      const days = await report('day');
      for (const [channel, totals] of dayChannels) {
        for (const [d, measured] of [
          [9, 3600],
          [10, 0],
          [11, 2400],
        ] as const) {
          const row = days.find((r) => r.device_id === channel && r.period === label(d));
          assert.ok(row, `no row for ${channel} ${label(d)}: ${JSON.stringify(days)}`);
          assert.equal(row.source, 'device');
          assert.ok(Math.abs(row.measured_kwh - measured / 1000) <= 0.01, JSON.stringify(row));
          const fill = ((totals.get(d) ?? 0) - measured) / 1000;
          assert.ok(
            Math.abs(row.device_kwh - fill) <= 0.01,
            `${label(d)}: fill ${row.device_kwh} vs ${fill}`,
          );
          assert.ok(Math.abs(row.energy_kwh - (totals.get(d) ?? 0) / 1000) <= 0.01, JSON.stringify(row));
          assert.equal(row.estimated_kwh, 0);
        }
      }
      // The today/month-only plug keeps nothing of past days: its gap stays estimated.
      assert.equal(days.find((r) => r.device_id === BASIC && r.period === label(10))?.source, 'estimated');
      assert.equal(days.find((r) => r.device_id === AWAY && r.period === label(10))?.source, 'estimated');
      const months = await report('month');
      const away = months.find((r) => r.device_id === AWAY);
      assert.ok(away, JSON.stringify(months));
      assert.equal(away.source, 'device');
      assert.ok(Math.abs(away.energy_kwh - 28.6) <= 0.01, JSON.stringify(away));

      // A second run (`energy --backfill`, another process, through its own smart discovery).
      const before = await report('day');
      const again = await runEnergy(config, [
        '--backfill',
        '--format',
        'json',
        '--period',
        'day',
        '--from',
        label(9),
        '--to',
        label(12),
      ]);
      assert.match(again.stderr, /backfill: 0 gap fill\(s\) stored, \d+ request\(s\) to plugs/);
      assert.deepEqual(JSON.parse(again.stdout), before);
    } finally {
      await fleet.stop();
    }
  });
});

describe('the smart statistics source', () => {
  test('daily and monthly history per outlet through control_child; a today/month-only plug answers today and this month; an HS300 over KLAP answers the legacy statistics', async () => {
    const fleet = await startSmartSimulators({
      discoveryPort: DISCOVERY_PORT,
      httpPort: HTTP_PORT,
      devices: [
        {
          kind: 'klap',
          account: ACCOUNT,
          address: '127.28.0.21',
          model: 'P304M',
          deviceId: id(21),
          outlets: ['a', 'b', 'c'],
          energyData: true,
        },
        {
          kind: 'klap',
          account: ACCOUNT,
          address: '127.28.0.22',
          model: 'P110',
          deviceId: id(22),
          values: { todayWh: 321, monthWh: 4321 },
        },
        {
          kind: 'iot-klap',
          klapVersion: 2,
          account: ACCOUNT,
          address: '127.28.0.23',
          model: 'HS300',
          deviceId: `8006${'0'.repeat(35)}9`,
          outlets: ['x', 'y'],
        },
      ],
    });
    const found = discovery();
    try {
      await found.runRound();
      const strip = fleet.devices.find((d) => d.deviceId === id(21));
      const outlet = strip?.outletIds[2] as string;
      fleet.setDayStats(outlet, [
        { year: 2026, month: 5, day: 31, energyWh: 555 },
        { year: 2026, month: 6, day: 10, energyWh: 777 },
        { year: 2026, month: 6, day: 11, energyWh: 23 },
      ]);
      fleet.setClockOffset(id(22), -5 * HOUR);
      const targets = backfillTargets(found.registry, { transport: 'udp', timeoutMs: 3000 });
      const bar = targets.find((t) => t.deviceId === id(21));
      const basic = targets.find((t) => t.deviceId === id(22));
      assert.ok(bar && basic, JSON.stringify(targets.map((t) => t.deviceId)));
      const june = await bar.stats.dayStats(outlet, 2026, 6);
      assert.equal(june.get(10), 777);
      assert.equal(june.get(11), 23);
      assert.equal(june.get(1), 0);
      const may = await bar.stats.dayStats(outlet, 2026, 5);
      assert.equal(may.get(31), 555);
      const months = await bar.stats.monthStats(outlet, 2026);
      assert.equal(months.get(6), 800);
      assert.equal(months.get(5), 555);
      const other = await bar.stats.dayStats(strip?.outletIds[0] as string, 2026, 6);
      assert.equal(other.get(10), 0, 'each outlet answers for itself');

      assert.equal(await basic.stats.clockOffsetMs(), -5 * HOUR);
      const local = new Date(Date.now() - 5 * HOUR);
      const y = local.getUTCFullYear();
      const m = local.getUTCMonth() + 1;
      const today = await basic.stats.dayStats(null, y, m);
      assert.deepEqual([...today], [[local.getUTCDate(), 321]]);
      assert.deepEqual([...(await basic.stats.monthStats(null, y))], [[m, 4321]]);
      assert.equal((await basic.stats.dayStats(null, y - 1, m)).size, 0, 'no history kept');

      // Legacy JSON over KLAP (HS300 hw 2.0): the legacy statistics through the same session.
      const hs300 = fleet.devices.find((d) => d.kind === 'iot-klap');
      const slot = hs300?.outletIds[1] as string;
      fleet.setDayStats(slot, [{ year: 2026, month: 6, day: 10, energyWh: 432 }]);
      fleet.setClockOffset(hs300?.deviceId as string, 2 * HOUR);
      const klapStrip = targets.find((t) => t.deviceId === hs300?.deviceId);
      assert.ok(klapStrip, JSON.stringify(targets.map((t) => t.deviceId)));
      assert.equal(await klapStrip.stats.clockOffsetMs(), 2 * HOUR);
      assert.equal((await klapStrip.stats.dayStats(slot, 2026, 6)).get(10), 432);
      assert.equal((await klapStrip.stats.monthStats(slot, 2026)).get(6), 432);
    } finally {
      await found.stop();
      await fleet.stop();
    }
  });
});
