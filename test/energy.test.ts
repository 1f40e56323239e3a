/**
 * The pure energy accounting (src/energy): counter intervals, local calendars, folding readings into
 * buckets and buckets into periods. No I/O; the end-to-end behaviour is in lifecycle-*.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Bucket,
  bucketCalendar,
  ChannelAccumulator,
  type CounterReading,
  counterInterval,
  type FoldSink,
  type GapRecord,
  PeriodCalendar,
  parseLocalDate,
  summarisePeriods,
  TIERS,
  zoneCalendar,
} from '../src/energy/index.js';

const MIN = 60_000;
const HOUR = 3_600_000;

function r(tsMs: number, totalWh: number, powerMw = 1_000_000): CounterReading {
  return { tsMs, totalWh, powerMw };
}

describe('counter intervals', () => {
  test('the energy of an interval is the counter increase', () => {
    const i = counterInterval(r(0, 100), r(10_000, 103), 5 * MIN);
    assert.deepEqual(
      { energyWh: i.energyWh, reset: i.reset, gap: i.gap, anomaly: i.anomaly },
      { energyWh: 3, reset: false, gap: false, anomaly: false },
    );
  });

  test('a counter that goes down restarted: the energy is its new value, never a negative delta', () => {
    const i = counterInterval(r(0, 5000), r(10_000, 2), 5 * MIN);
    assert.equal(i.energyWh, 2);
    assert.equal(i.reset, true);
    assert.equal(i.anomaly, false);
  });

  test('a drop to a value the plug could not have used since is an anomaly that counts nothing', () => {
    // 1 kW for 10 s is under 3 Wh; 4000 Wh "since the restart" is not plausible.
    const i = counterInterval(r(0, 5000), r(10_000, 4000), 5 * MIN);
    assert.equal(i.energyWh, 0);
    assert.equal(i.anomaly, true);
  });

  test('an increase no plug can meter in the time is an anomaly that counts nothing', () => {
    // 17 kWh in a minute would be about 1 MW.
    const i = counterInterval(r(0, 8000), r(60_000, 25_000), 5 * MIN);
    assert.deepEqual([i.energyWh, i.anomaly, i.reset], [0, true, false]);
    // 2.5 kWh in 10 minutes (15 kW) is the most that still counts, even across a gap.
    assert.equal(counterInterval(r(0, 0), r(10 * MIN, 2500), 5 * MIN).energyWh, 2500);
  });

  test('readings further apart than the gap limit make a gap that keeps what the counter says', () => {
    const i = counterInterval(r(0, 100), r(10 * MIN, 267), 5 * MIN);
    assert.equal(i.gap, true);
    assert.equal(i.energyWh, 167);
    const restarted = counterInterval(r(0, 5000), r(10 * MIN, 40), 5 * MIN);
    assert.deepEqual([restarted.gap, restarted.reset, restarted.energyWh], [true, true, 40]);
  });
});

describe('local calendars', () => {
  test('a Europe/Berlin day lasts 23 hours in spring, 25 in autumn and 24 otherwise', () => {
    const berlin = zoneCalendar('Europe/Berlin');
    const length = (y: number, m: number, d: number) =>
      (berlin.midnight(y, m, d + 1) - berlin.midnight(y, m, d)) / HOUR;
    assert.equal(length(2026, 3, 29), 23);
    assert.equal(length(2026, 10, 25), 25);
    assert.equal(length(2026, 11, 26), 24);
    assert.equal(berlin.midnight(2026, 11, 26), Date.UTC(2026, 10, 25, 23));
    assert.equal(berlin.formatDay(Date.UTC(2026, 10, 25, 23)), '2026-11-26');
  });

  test('dayStart and nextDayStart walk local days across a DST change', () => {
    const berlin = zoneCalendar('Europe/Berlin');
    const start = berlin.dayStart(Date.UTC(2026, 9, 25, 12));
    assert.equal(start, Date.UTC(2026, 9, 24, 22));
    assert.equal(berlin.nextDayStart(start), Date.UTC(2026, 9, 25, 23));
  });

  test('a zone where midnight does not exist on its DST day starts that day at the first local instant', () => {
    // America/Santiago springs forward at 24:00 on 2026-09-05: 2026-09-06 starts at 01:00 local.
    const santiago = zoneCalendar('America/Santiago');
    const start = santiago.midnight(2026, 9, 6);
    assert.equal(santiago.formatDay(start), '2026-09-06');
    assert.equal(santiago.formatDay(start - 1), '2026-09-05');
  });

  test('local dates and months parse in the zone', () => {
    assert.equal(parseLocalDate('2026-11-26', 'Europe/Berlin'), Date.UTC(2026, 10, 25, 23));
    assert.equal(parseLocalDate('2026-07', 'America/New_York'), Date.UTC(2026, 6, 1, 4));
    assert.equal(parseLocalDate('2026-02-30', 'UTC'), null);
    assert.equal(parseLocalDate('-24h', 'UTC'), null);
  });
});

class Collect implements FoldSink {
  readonly buckets: Bucket[] = [];
  readonly gaps: GapRecord[] = [];
  closed(bucket: Bucket): void {
    this.buckets.push({ ...bucket });
  }
  gap(gap: GapRecord): void {
    this.gaps.push(gap);
  }
  late(): void {}
}

function accumulator(zone = 'UTC', gapLimit = 5 * MIN): ChannelAccumulator {
  return new ChannelAccumulator(
    TIERS.map((t) => bucketCalendar(t, zone)),
    [],
    gapLimit,
  );
}

describe('folding readings into buckets', () => {
  test('an interval across a bucket boundary is split by time, and every bucket closes complete', () => {
    const acc = accumulator();
    const sink = new Collect();
    acc.add(r(50_000, 0), sink); // 00:00:50
    acc.add(r(70_000, 20), sink); // 00:01:10: 20 Wh over 20 s, 10 s in each minute
    acc.add(r(130_000, 20), sink); // closes minute 1
    const minutes = sink.buckets.filter((b) => b.tier === 'minute');
    assert.equal(minutes.length, 2);
    assert.equal(minutes[0]?.energyWh, 10);
    assert.equal(minutes[0]?.coveredMs, 10_000);
    assert.equal(minutes[1]?.energyWh, 10);
    assert.equal(minutes[1]?.readings, 1);
  });

  test('a counter restart adds the new value and is counted in the bucket', () => {
    const acc = accumulator();
    const sink = new Collect();
    acc.add(r(0, 900), sink);
    acc.add(r(10_000, 903), sink);
    acc.add(r(20_000, 2), sink);
    acc.add(r(30_000, 5), sink);
    assert.equal(acc.open(0)?.energyWh, 3 + 2 + 3);
    assert.equal(acc.open(0)?.resets, 1);
  });

  test('a gap is recorded once and spreads no energy', () => {
    const acc = accumulator();
    const sink = new Collect();
    acc.add(r(0, 100), sink);
    acc.add(r(HOUR, 1100), sink);
    assert.deepEqual(sink.gaps, [{ fromMs: 0, toMs: HOUR, energyWh: 1000, reset: false }]);
    const total = [...sink.buckets, acc.open(0), acc.open(1), acc.open(2)].reduce(
      (sum, b) => sum + (b?.energyWh ?? 0),
      0,
    );
    assert.equal(total, 0);
  });

  test('buckets before a tier floor are not counted again (rebuilding open buckets after a restart)', () => {
    const calendars = TIERS.map((t) => bucketCalendar(t, 'UTC'));
    const acc = new ChannelAccumulator(
      calendars,
      [2 * MIN, HOUR, Number.NEGATIVE_INFINITY],
      5 * MIN,
      r(110_000, 0),
    );
    const sink = new Collect();
    acc.add(r(130_000, 20), sink); // 10 s before the minute floor are already stored
    assert.equal(acc.open(0)?.energyWh, 10);
    assert.equal(acc.open(1), null, 'the hour tier is stored up to 01:00');
    assert.equal(acc.open(2)?.energyWh, 20);
  });

  test('seal closes the open buckets of a silent channel once they are over', () => {
    const acc = accumulator();
    const sink = new Collect();
    acc.add(r(0, 0), sink);
    acc.add(r(10_000, 3), sink);
    assert.equal(acc.seal(20_000, sink), 0, 'not silent yet');
    assert.equal(acc.seal(2 * HOUR, sink), 2, 'minute and hour end before now; the day does not');
    assert.equal(acc.safeBeforeMs(), 0);
  });
});

describe('periods', () => {
  test('hour buckets sum into local days; a gap inside a day counts there, one across midnight in neither', () => {
    const calendar = new PeriodCalendar('day', 'Europe/Berlin');
    const day1 = Date.UTC(2026, 10, 25, 23);
    const day2 = Date.UTC(2026, 10, 26, 23);
    const buckets = [day1, day1 + HOUR, day2 - HOUR, day2].map((startMs) => ({
      startMs,
      energyWh: 1000,
      coveredMs: HOUR,
      readings: 360,
      resets: 0,
    }));
    const gaps: GapRecord[] = [
      { fromMs: day1 + 5 * HOUR, toMs: day1 + 6 * HOUR, energyWh: 500, reset: false },
      { fromMs: day2 - HOUR / 2, toMs: day2 + HOUR / 2, energyWh: 900, reset: false },
    ];
    const periods = summarisePeriods(buckets, gaps, calendar, day1, day2 + 24 * HOUR);
    assert.deepEqual(
      periods.map((p) => [p.label, p.energyWh, p.gaps.map((g) => g.attributed)]),
      [
        ['2026-11-26', 3500, [true, false]],
        ['2026-11-27', 1000, [false]],
      ],
    );
  });

  test('months follow the local calendar', () => {
    const calendar = new PeriodCalendar('month', 'Europe/Berlin');
    const start = calendar.start(Date.UTC(2026, 2, 15));
    assert.equal(calendar.label(start), '2026-03');
    assert.equal((calendar.end(start) - start) / HOUR, 31 * 24 - 1);
  });
});
