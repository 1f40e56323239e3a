/**
 * The tariff: its configuration (key-path errors) and the engine that prices energy by the time it
 * was used, with fixed readings. Pure: no peers needed.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { diffConfig } from '../src/config/index.js';
import {
  CostLedger,
  type CounterReading,
  type EnergyFlow,
  flowsFromReadings,
  PeriodCalendar,
  type PeriodCost,
  parsePricesCsv,
  periodCost,
  periodSource,
  standingCharges,
  type TariffConfig,
  TariffRules,
} from '../src/energy/index.js';
import { configFixtures, problemsOf } from './helpers/config.js';

const fixtures = configFixtures('kasa-tariff-');
const dir = fixtures.dir;

function load(yaml: string) {
  return fixtures.load({ file: fixtures.writeConfig(yaml) });
}

function problems(yaml: string): string[] {
  return problemsOf(() => load(yaml)).map((p) => `${p.path}: ${p.message}`);
}

const H = 3_600_000;
const MIN = 60_000;
const GAP_LIMIT = 5 * MIN;

/** Readings of a steady load: every `stepMs` from `fromMs` to `toMs` inclusive. */
function steady(watts: number, fromMs: number, toMs: number, stepMs = MIN, startWh = 0): CounterReading[] {
  const out: CounterReading[] = [];
  for (let t = fromMs; t <= toMs; t += stepMs) {
    out.push({ tsMs: t, powerMw: watts * 1000, totalWh: startWh + (watts * (t - fromMs)) / H });
  }
  return out;
}

function priced(
  tariff: TariffConfig,
  zone: string,
  flows: readonly EnergyFlow[],
  fromMs: number,
  toMs: number,
  kind: 'day' | 'month' = 'day',
  prices = parsePricesCsv('start,end,price\n'),
): PeriodCost[] {
  assert.ok(prices.ok);
  const ledger = new CostLedger(
    new TariffRules(tariff, zone, prices.rows),
    new PeriodCalendar(kind, zone),
    fromMs,
    toMs,
  );
  for (const flow of flows) ledger.add(flow);
  return ledger.periods();
}

const close = (actual: number | null, expected: number, what: string) =>
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${what}: ${actual} vs ${expected}`);

const WEEKDAY_DAY_RATE: TariffConfig = {
  currency: 'EUR',
  periods: [
    {
      from: '2026-01-01',
      standing_charge: 0.45,
      rates: [
        { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '07:00', to: '23:00', price: 0.31 },
        { days: null, from: null, to: null, price: 0.18 },
      ],
    },
  ],
};

describe('tariff configuration', () => {
  test('a valid tariff loads with its rates and currency', () => {
    const { config } = load(
      'tariff:\n  currency: eur\n  periods:\n    - from: 2026-01-01\n      standing_charge: 0.45\n      rates:\n        - { days: [mon], from: "07:00", to: "23:00", price: 0.31 }\n        - { price: 0.18 }\n',
    );
    assert.equal(config.tariff.currency, 'EUR');
    assert.equal(config.tariff.periods[0]?.rates[1]?.price, 0.18);
    assert.equal(config.tariff.periods[0]?.rates[1]?.days, null);
  });

  test('bad tariffs get one key-path problem each: days, times, order, overlap, currency', () => {
    const found = problems(
      [
        'tariff:',
        '  periods:',
        '    - from: 2026-02-01',
        '      rates:',
        '        - { days: [mon, funday], from: "07:00", to: "07:00", price: 0.31 }',
        '    - from: 2026-01-01',
        '      rates: [{ price: 0.2 }]',
        '    - from: 2026-01-01',
        '      rates: [{ price: 0.2 }]',
        '',
      ].join('\n'),
    );
    const text = found.join('\n');
    assert.match(text, /tariff\.periods\.0\.rates\.0\.days\.1: must be one of: mon, .*funday/);
    assert.match(text, /tariff\.periods\.0\.rates\.0\.to: must differ from from/);
    assert.match(text, /tariff\.periods\.1\.from: periods must be in date order/);
    assert.match(text, /tariff\.periods\.2\.from: overlaps the period before/);
    assert.match(text, /tariff\.currency: must be set/);
  });

  test('a changed tariff is applied by a reload (hot keys); backfill settings need a restart', () => {
    const before = load(
      'tariff:\n  currency: EUR\n  periods:\n    - from: 2026-01-01\n      rates: [{ price: 0.2 }]\n',
    ).config;
    const after = load(
      'tariff:\n  currency: EUR\n  periods:\n    - from: 2026-01-01\n      rates: [{ price: 0.25 }]\nbackfill:\n  enabled: false\n',
    ).config;
    const diff = diffConfig(before, after);
    assert.deepEqual(diff.hot, ['tariff.periods']);
    assert.deepEqual(diff.restart, ['backfill.enabled']);
  });

  test('a prices file with a gap or an overlap is an error naming tariff.prices_file', () => {
    const gap = join(dir, 'gap.csv');
    writeFileSync(
      gap,
      'start,end,price\n2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,0.2\n2026-01-01T01:30:00Z,2026-01-01T02:00:00Z,0.3\n',
    );
    const overlap = join(dir, 'overlap.csv');
    writeFileSync(
      overlap,
      'start,end,price\n2026-01-01T00:00:00+01:00,2026-01-01T01:00:00+01:00,0.2\n2026-01-01T00:30:00+01:00,2026-01-01T02:00:00+01:00,0.3\n',
    );
    assert.match(
      problems(`tariff:\n  currency: EUR\n  prices_file: ${gap}\n`).join('\n'),
      /tariff\.prices_file: line 3: .*a gap/,
    );
    assert.match(
      problems(`tariff:\n  currency: EUR\n  prices_file: ${overlap}\n`).join('\n'),
      /tariff\.prices_file: line 3: .*an overlap/,
    );
  });
});

describe('tariff engine', () => {
  // 2026-03-04 is a Wednesday; Europe/Berlin is UTC+1 then.
  const wed = (h: number, m = 0) => Date.UTC(2026, 2, 4, h - 1, m);

  test('an interval across a band edge is split in proportion to time', () => {
    // One interval from 06:30 to 07:30 (no reading in between): 500 Wh at each price.
    const readings: CounterReading[] = [
      { tsMs: wed(6, 30), powerMw: 1_000_000, totalWh: 0 },
      { tsMs: wed(7, 30), powerMw: 1_000_000, totalWh: 1000 },
    ];
    const [day] = priced(
      WEEKDAY_DAY_RATE,
      'Europe/Berlin',
      flowsFromReadings(readings, 2 * H),
      wed(0),
      wed(24),
    );
    assert.ok(day);
    close(day.energyWh, 1000, 'energy');
    close(periodCost(day), 0.5 * 0.18 + 0.5 * 0.31, 'cost');
    assert.equal(periodSource(day), 'measured');
  });

  test('a counter reset inside a priced interval counts what was metered since, split by time', () => {
    // 06:50 → 07:10: the counter restarted and shows 20 Wh, spread over the 20 minutes.
    const readings: CounterReading[] = [
      { tsMs: wed(6, 50), powerMw: 60_000, totalWh: 5000 },
      { tsMs: wed(7, 10), powerMw: 60_000, totalWh: 20 },
    ];
    const [day] = priced(WEEKDAY_DAY_RATE, 'Europe/Berlin', flowsFromReadings(readings, H), wed(0), wed(24));
    assert.ok(day);
    close(day.energyWh, 20, 'energy');
    close(periodCost(day), 0.01 * 0.18 + 0.01 * 0.31, 'cost');
  });

  test('a price change on a date applies from that local midnight, also inside one interval', () => {
    const tariff: TariffConfig = {
      currency: 'EUR',
      periods: [
        {
          from: '2026-01-01',
          standing_charge: null,
          rates: [{ days: null, from: null, to: null, price: 0.2 }],
        },
        {
          from: '2026-02-01',
          standing_charge: null,
          rates: [{ days: null, from: null, to: null, price: 0.3 }],
        },
      ],
    };
    // 2026-01-31 23:00 to 2026-02-01 01:00 Berlin (UTC+1), 2 kWh in one interval.
    const from = Date.UTC(2026, 0, 31, 22);
    const flows: EnergyFlow[] = [{ fromMs: from, toMs: from + 2 * H, energyWh: 2000, source: 'measured' }];
    const days = priced(tariff, 'Europe/Berlin', flows, from - 23 * H, from + 25 * H);
    assert.deepEqual(
      days.map((d) => [d.label, Math.round(d.energyWh)]),
      [
        ['2026-01-31', 1000],
        ['2026-02-01', 1000],
      ],
    );
    close(periodCost(days[0] as PeriodCost), 0.2, 'Jan 31');
    close(periodCost(days[1] as PeriodCost), 0.3, 'Feb 1');
    const [month] = priced(
      tariff,
      'Europe/Berlin',
      flows,
      Date.UTC(2026, 0, 31, 23),
      Date.UTC(2026, 1, 28, 23),
      'month',
    );
    close(periodCost(month as PeriodCost), 0.3, 'February only');
  });

  test('standing charges: per local day of each period; unknown before the first period', () => {
    const tariff: TariffConfig = {
      currency: 'EUR',
      periods: [
        {
          from: '2026-01-01',
          standing_charge: 0.45,
          rates: [{ days: null, from: null, to: null, price: 0.2 }],
        },
        {
          from: '2026-01-03',
          standing_charge: 0.5,
          rates: [{ days: null, from: null, to: null, price: 0.2 }],
        },
      ],
    };
    const rules = new TariffRules(tariff, 'UTC');
    close(standingCharges(rules, Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 5)), 0.45 * 2 + 0.5 * 2, '4 days');
    assert.equal(standingCharges(rules, Date.UTC(2025, 11, 31), Date.UTC(2026, 0, 2)), null);
  });

  test('dynamic prices override the rates for their rows; time with no price is unpriced, not free', () => {
    const prices = parsePricesCsv(
      'start,end,price\n2026-03-04T12:00:00+01:00,2026-03-04T12:30:00+01:00,0.5\n2026-03-04T12:30:00+01:00,2026-03-04T13:00:00+01:00,-0.1\n',
    );
    const flows: EnergyFlow[] = [{ fromMs: wed(11), toMs: wed(14), energyWh: 3000, source: 'measured' }];
    const [day] = priced(WEEKDAY_DAY_RATE, 'Europe/Berlin', flows, wed(0), wed(24), 'day', prices);
    close(periodCost(day as PeriodCost), 2 * 0.31 + 0.5 * 0.5 + 0.5 * -0.1, 'cost');
    // Only the prices file, no periods: the hours outside it are unpriced.
    const onlyFile = { currency: 'EUR', periods: [] };
    const [unpriced] = priced(onlyFile, 'Europe/Berlin', flows, wed(0), wed(24), 'day', prices);
    assert.equal(periodCost(unpriced as PeriodCost), null);
    close(unpriced?.unpricedWh ?? 0, 2000, 'unpriced energy');
  });

  test('a gap: the counter’s increase is spread evenly over it and marked estimated', () => {
    // Readings stop at 10:00 and resume at 14:00 (gap limit 5 min); the counter grew 4 kWh.
    const readings = [...steady(1000, wed(9), wed(10), MIN), ...steady(1000, wed(14), wed(15), MIN, 5000)];
    const flows = flowsFromReadings(readings, GAP_LIMIT);
    const estimated = flows.filter((f) => f.source === 'estimated');
    assert.deepEqual(
      estimated.map((f) => [f.fromMs, f.toMs, Math.round(f.energyWh)]),
      [[wed(10), wed(14), 4000]],
    );
    const tariff: TariffConfig = {
      currency: 'EUR',
      periods: [
        {
          from: '2026-01-01',
          standing_charge: null,
          rates: [
            { days: null, from: '12:00', to: '18:00', price: 0.4 },
            { days: null, from: null, to: null, price: 0.1 },
          ],
        },
      ],
    };
    const [day] = priced(tariff, 'Europe/Berlin', flows, wed(0), wed(24));
    assert.ok(day);
    assert.equal(periodSource(day), 'estimated');
    close(day.bySource.estimated, 4000, 'estimated');
    close(day.bySource.measured, 2000, 'measured');
    // 09-10: 1 kWh at 0.1; 10-12 (gap): 2 kWh at 0.1; 12-14 (gap): 2 kWh at 0.4; 14-15: 1 kWh at 0.4.
    close(periodCost(day), 0.1 + 0.2 + 0.8 + 0.4, 'cost');
  });

  test('Europe/London DST days: a 23-hour and a 25-hour day, the night band by the local clock', () => {
    const tariff: TariffConfig = {
      currency: 'GBP',
      periods: [
        {
          from: '2026-01-01',
          standing_charge: null,
          rates: [
            { days: null, from: '00:00', to: '07:00', price: 0.1 },
            { days: null, from: null, to: null, price: 0.3 },
          ],
        },
      ],
    };
    // 2026-03-29: clocks go 01:00 → 02:00 (UTC 01:00); local midnight = 00:00 UTC, next = 23:00 UTC.
    const spring = Date.UTC(2026, 2, 29, 0);
    const springFlows = flowsFromReadings(steady(1000, spring, spring + 23 * H, 10 * MIN), GAP_LIMIT);
    const [s] = priced(tariff, 'Europe/London', springFlows, spring, spring + 23 * H);
    close(s?.energyWh ?? 0, 23_000, 'spring energy');
    close(periodCost(s as PeriodCost), 6 * 0.1 + 17 * 0.3, 'spring cost (night band 6 real hours)');
    // 2026-10-25: clocks go 02:00 → 01:00 (UTC 01:00); local midnight = 23:00 UTC the day before.
    const autumn = Date.UTC(2026, 9, 24, 23);
    const autumnFlows = flowsFromReadings(steady(1000, autumn, autumn + 25 * H, 10 * MIN), GAP_LIMIT);
    const [a] = priced(tariff, 'Europe/London', autumnFlows, autumn, autumn + 25 * H);
    close(a?.energyWh ?? 0, 25_000, 'autumn energy');
    close(periodCost(a as PeriodCost), 8 * 0.1 + 17 * 0.3, 'autumn cost (night band 8 real hours)');
  });

  test('America/New_York DST days: a wrapping night band belongs to the day it starts on', () => {
    const tariff: TariffConfig = {
      currency: 'USD',
      periods: [
        {
          from: '2026-01-01',
          standing_charge: null,
          rates: [
            { days: ['sat'], from: '23:00', to: '07:00', price: 0.05 },
            { days: null, from: null, to: null, price: 0.2 },
          ],
        },
      ],
    };
    // Sat 2026-10-31 22:00 EDT (02:00 UTC Nov 1) to Mon 00:00 EST; clocks fall back Sun 02:00 EDT.
    const from = Date.UTC(2026, 10, 1, 2);
    const to = Date.UTC(2026, 10, 2, 5);
    const flows = flowsFromReadings(steady(1000, from, to, 10 * MIN), GAP_LIMIT);
    const days = priced(tariff, 'America/New_York', flows, Date.UTC(2026, 9, 31, 4), to);
    assert.deepEqual(
      days.map((d) => [d.label, Math.round(d.energyWh)]),
      [
        ['2026-10-31', 2000],
        ['2026-11-01', 25_000],
      ],
    );
    // Saturday: 22-23 at 0.2, 23-24 at 0.05. Sunday: 00:00-07:00 local is 8 real hours at 0.05,
    // the rest (17 h) at 0.2; Sunday 23:00 is not a Saturday band.
    close(periodCost(days[0] as PeriodCost), 0.2 + 0.05, 'Saturday');
    close(periodCost(days[1] as PeriodCost), 8 * 0.05 + 17 * 0.2, 'Sunday');
    // Spring: 2026-03-08 02:00 EST → 03:00 EDT; a 23-hour day whose 00:00-07:00 band lasts 6 hours.
    const springRules: TariffConfig = {
      currency: 'USD',
      periods: [
        {
          from: '2026-01-01',
          standing_charge: null,
          rates: [
            { days: null, from: '23:00', to: '07:00', price: 0.05 },
            { days: null, from: null, to: null, price: 0.2 },
          ],
        },
      ],
    };
    const spring = Date.UTC(2026, 2, 8, 5);
    const springFlows = flowsFromReadings(steady(1000, spring, spring + 23 * H, 10 * MIN), GAP_LIMIT);
    const [s] = priced(springRules, 'America/New_York', springFlows, spring, spring + 23 * H);
    close(s?.energyWh ?? 0, 23_000, 'spring energy');
    close(periodCost(s as PeriodCost), 6 * 0.05 + 16 * 0.2 + 1 * 0.05, 'spring cost');
  });
});
