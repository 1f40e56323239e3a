/**
 * Local calendars from the system's zone database (TZif files and their POSIX footers), checked
 * against Intl as the oracle over 1970–2060, plus the footer rules, zone names and the system zone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parsePosixTz, posixOffsetAt } from '../src/energy/posix-tz.js';
import { readZoneFile, systemTimeZone } from '../src/energy/tzdb.js';
import { parseTzif } from '../src/energy/tzif.js';
import { isValidTimeZone, zoneCalendar } from '../src/energy/zone.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FROM = Date.UTC(1970, 0, 1);
const UNTIL = Date.UTC(2060, 11, 31);

const ZONES = [
  'Europe/Berlin',
  'America/New_York',
  'Australia/Lord_Howe',
  'Asia/Kolkata',
  'Pacific/Chatham',
  'America/Santiago',
  'Africa/Casablanca',
  'Asia/Tehran',
  'America/St_Johns',
  'UTC',
];

/** The oracle: local fields and offset by Intl. */
function intlOracle(zone: string) {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const parts = (ms: number) => {
    const f: Record<string, number> = {};
    for (const p of format.formatToParts(ms)) f[p.type] = Number(p.value);
    return {
      year: f['year'] ?? 0,
      month: f['month'] ?? 0,
      day: f['day'] ?? 0,
      hour: f['hour'] ?? 0,
      minute: f['minute'] ?? 0,
      second: f['second'] ?? 0,
    };
  };
  const offset = (ms: number) => {
    const p = parts(ms);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
  };
  return { parts, offset };
}

/** Every instant in [from, until) where the oracle's offset changes (to the second), found by bisection. */
function offsetChanges(offset: (ms: number) => number, from: number, until: number): number[] {
  const step = DAY + 67 * 60_000; // not a whole day, so samples drift through the hours
  const changes: number[] = [];
  let t = from;
  let before = offset(t);
  for (let next = t + step; next < until; t = next, next += step) {
    const now = offset(next);
    if (now === before) continue;
    let lo = t;
    let hi = next;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (offset(mid) === before) lo = mid;
      else hi = mid;
    }
    changes.push(hi);
    before = now;
  }
  return changes;
}

/**
 * The first instant whose local date is (y, m, d), from the oracle's offset and its change instants:
 * between two changes the offset is constant, so that day's midnight is found segment by segment.
 */
function oracleMidnight(
  offset: (ms: number) => number,
  changes: readonly number[],
  y: number,
  m: number,
  d: number,
) {
  const midnight = Date.UTC(y, m - 1, d);
  const lo = midnight - 30 * HOUR;
  const hi = midnight + 30 * HOUR;
  const bounds = [lo, ...changes.filter((c) => c > lo && c < hi), hi];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const a = bounds[i] ?? 0;
    const b = bounds[i + 1] ?? 0;
    const o = offset(a);
    if (a + o >= midnight && a + o < midnight + DAY) return a;
    if (a + o < midnight && midnight < b + o) return midnight - o;
  }
  throw new Error(`no local ${y}-${m}-${d}`);
}

describe('zone calendars agree with Intl from 1970 to 2060', () => {
  for (const zone of ZONES) {
    test(`${zone}: local fields on both sides of every offset change and days around it`, () => {
      const calendar = zoneCalendar(zone);
      const oracle = intlOracle(zone);
      const changes = offsetChanges(oracle.offset, FROM, UNTIL);
      if (zone !== 'UTC' && zone !== 'Asia/Kolkata') assert.ok(changes.length > 20, `${zone}: changes found`);
      for (const change of changes) {
        for (const ms of [change - 1000, change - 1, change, change + 1000, change + 12 * HOUR]) {
          assert.deepEqual(calendar.parts(ms), oracle.parts(ms), `${zone} at ${new Date(ms).toISOString()}`);
        }
        // The local day the change falls in (23 or 25 hours long, or one without a midnight); where a
        // change back across midnight gives an instant two dates, its day is the one begun before it.
        const p = oracle.parts(change);
        let expected = oracleMidnight(oracle.offset, changes, p.year, p.month, p.day);
        if (expected > change) expected = oracleMidnight(oracle.offset, changes, p.year, p.month, p.day - 1);
        const start = calendar.dayStart(change);
        assert.equal(start, expected, `${zone} day of ${new Date(change).toISOString()}`);
        const q = oracle.parts(start);
        const next = oracleMidnight(oracle.offset, changes, q.year, q.month, q.day + 1);
        assert.equal(
          calendar.nextDayStart(start),
          next,
          `${zone} day after ${new Date(change).toISOString()}`,
        );
      }
    });

    test(`${zone}: local fields of instants spread over the years`, () => {
      const calendar = zoneCalendar(zone);
      const oracle = intlOracle(zone);
      for (let ms = FROM; ms < UNTIL; ms += 7 * DAY + 5 * HOUR + 1234) {
        assert.deepEqual(calendar.parts(ms), oracle.parts(ms), `${zone} at ${new Date(ms).toISOString()}`);
      }
    });
  }

  test('DST days in Europe/Berlin and Australia/Lord_Howe last 23 and 25 hours, or 23.5 and 24.5', () => {
    const berlin = zoneCalendar('Europe/Berlin');
    const lordHowe = zoneCalendar('Australia/Lord_Howe');
    const hours = (cal: typeof berlin, y: number, m: number, d: number) =>
      (cal.midnight(y, m, d + 1) - cal.midnight(y, m, d)) / HOUR;
    assert.deepEqual([hours(berlin, 2055, 3, 28), hours(berlin, 2055, 10, 31)], [23, 25]);
    assert.deepEqual([hours(lordHowe, 2055, 10, 3), hours(lordHowe, 2055, 4, 4)], [23.5, 24.5]);
  });
});

describe('POSIX TZ footers', () => {
  const at = (text: string, iso: string) => posixOffsetAt(parsePosixTz(text), Date.parse(iso) / 1000) / 3600;

  test('Mm.w.d rules switch at the local times they name', () => {
    const cet = 'CET-1CEST,M3.5.0,M10.5.0/3';
    // 2070: last Sunday of March is the 30th, of October the 26th.
    assert.equal(at(cet, '2070-03-30T00:59:59Z'), 1);
    assert.equal(at(cet, '2070-03-30T01:00:00Z'), 2);
    assert.equal(at(cet, '2070-10-26T00:59:59Z'), 2);
    assert.equal(at(cet, '2070-10-26T01:00:00Z'), 1);
  });

  test('a southern zone keeps DST across New Year, with changes at hour 24', () => {
    const santiago = '<-04>4<-03>,M9.1.6/24,M4.1.6/24';
    assert.equal(at(santiago, '2070-01-01T00:00:00Z'), -3);
    assert.equal(at(santiago, '2070-07-01T00:00:00Z'), -4);
    // First Saturday of September 2070 is the 6th: 24:00 local standard = 2070-09-07T04:00Z.
    assert.equal(at(santiago, '2070-09-07T03:59:59Z'), -4);
    assert.equal(at(santiago, '2070-09-07T04:00:00Z'), -3);
  });

  test('a fixed offset with minutes and a name in angle brackets', () => {
    assert.equal(at('<+0330>-3:30', '2070-06-01T00:00:00Z'), 3.5);
    assert.equal(at('<+0545>-5:45', '2070-06-01T00:00:00Z'), 5.75);
    assert.equal(at('<-0930>9:30', '2070-06-01T00:00:00Z'), -9.5);
  });

  test('Jn counts days without February 29 and n counts them with it', () => {
    // J60 is March 1 in every year; n59 is February 29 in a leap year (2072), March 1 otherwise.
    const julian = 'AAA0BBB,J60/0,J300/0';
    const ordinal = 'AAA0BBB,59/0,300/0';
    assert.equal(at(julian, '2072-02-29T12:00:00Z'), 0);
    assert.equal(at(julian, '2072-03-01T00:00:00Z'), 1);
    assert.equal(at(ordinal, '2072-02-28T23:59:59Z'), 0);
    assert.equal(at(ordinal, '2072-02-29T00:00:00Z'), 1);
    assert.equal(at(ordinal, '2071-03-01T00:00:00Z'), 1);
    assert.equal(at(ordinal, '2071-02-28T23:59:59Z'), 0);
  });

  test('DST all year round stays on daylight time across New Year', () => {
    const always = 'EST5EDT,0/0,J365/25';
    for (const iso of [
      '2070-01-01T00:00:00Z',
      '2070-06-01T00:00:00Z',
      '2070-12-31T23:59:59Z',
      '2071-01-01T05:00:00Z',
    ]) {
      assert.equal(at(always, iso), -4, iso);
    }
  });

  test('malformed strings are refused', () => {
    for (const bad of ['', 'X-1', 'CET', 'CET-1CEST,M13.1.0,M10.5.0', 'CET-1CEST,M3.5.0', '<CET-1']) {
      assert.throws(() => parsePosixTz(bad), /bad POSIX TZ string/, bad);
    }
  });
});

describe('zone names', () => {
  test('names with a zoneinfo file and UTC are zones; paths out of the zoneinfo dir are not', () => {
    for (const good of ['Europe/Berlin', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5', 'UTC', 'Etc/UTC']) {
      assert.equal(isValidTimeZone(good), true, good);
    }
    for (const bad of [
      '',
      ' ',
      'Mars/Olympus_Mons',
      '../../etc/passwd',
      '/etc/localtime',
      'Europe',
      'zone.tab',
    ]) {
      assert.equal(isValidTimeZone(bad), false, bad);
    }
    assert.equal(readZoneFile('../zoneinfo/Europe/Berlin'), null);
  });

  test('a zone Intl knows but the machine has no zoneinfo file for still gets a calendar, through Intl', () => {
    const empty = mkdtempSync(join(tmpdir(), 'kasa-no-tzdata-'));
    const saved = process.env['TZDIR'];
    process.env['TZDIR'] = empty;
    try {
      assert.equal(readZoneFile('Asia/Tokyo'), null);
      const tokyo = zoneCalendar('Asia/Tokyo');
      assert.equal(tokyo.formatDay(Date.UTC(2026, 10, 25, 15)), '2026-11-26');
      assert.equal(tokyo.midnight(2026, 11, 26), Date.UTC(2026, 10, 25, 15));
    } finally {
      if (saved === undefined) delete process.env['TZDIR'];
      else process.env['TZDIR'] = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('an unknown zone is refused by the calendar', () => {
    assert.throws(() => zoneCalendar('Mars/Olympus_Mons'), RangeError);
  });

  test('only version 2+ TZif data is read', () => {
    const v1 = new Uint8Array(44);
    v1.set([0x54, 0x5a, 0x69, 0x66, 0]);
    assert.throws(() => parseTzif(v1), /version 1/);
    assert.throws(() => parseTzif(new TextEncoder().encode('Europe/Berlin\n'.repeat(4))), /not a TZif file/);
  });
});

describe('the system time zone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kasa-tz-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const none = join(dir, 'absent');

  test('TZ names it, with or without a leading colon; an unknown TZ means UTC', () => {
    assert.equal(systemTimeZone({ env: { TZ: ':Europe/Berlin' }, localtime: none }), 'Europe/Berlin');
    assert.equal(systemTimeZone({ env: { TZ: 'Asia/Tehran' }, localtime: none }), 'Asia/Tehran');
    assert.equal(systemTimeZone({ env: { TZ: 'Foo/Bar' }, localtime: none }), 'UTC');
    assert.equal(systemTimeZone({ env: { TZ: 'Etc/UTC' }, localtime: none }), 'UTC');
  });

  test('without TZ, the zone /etc/localtime links to, else /etc/timezone, else UTC', () => {
    const link = join(dir, 'localtime');
    symlinkSync('/usr/share/zoneinfo/America/St_Johns', link);
    const named = join(dir, 'timezone');
    writeFileSync(named, 'Pacific/Chatham\n');
    assert.equal(systemTimeZone({ env: {}, localtime: link, timezoneFile: named }), 'America/St_Johns');
    assert.equal(systemTimeZone({ env: {}, localtime: none, timezoneFile: named }), 'Pacific/Chatham');
    assert.equal(systemTimeZone({ env: {}, localtime: none, timezoneFile: none }), 'UTC');
  });
});
