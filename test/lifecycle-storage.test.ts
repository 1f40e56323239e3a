/**
 * Rollups, DST-correct days, retention and the disk budget, on real SQLite files.
 *
 * These tests write readings with synthetic timestamps straight through the real SqliteStore (the
 * daemon's writer worker, rollups on): they are about what happens to stored data over weeks, which
 * no simulated plug could produce in test time. lifecycle-energy.test.ts covers the path from
 * simulated plugs. Retention runs through DataLifecycle with an injected clock.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Reading } from '../src/domain/reading.js';
import { PeriodCalendar, summarisePeriods } from '../src/energy/index.js';
import { createSilentLogger } from '../src/log/logger.js';
import { unguarded } from '../src/resilience/index.js';
import { DataLifecycle, type DataLifecycleOptions } from '../src/storage/lifecycle.js';
import {
  openReadingsReader,
  openRollupReader,
  type RetentionPolicy,
  type SqliteOptions,
  type SqliteStore,
} from '../src/storage/sqlite/index.js';
import { runCliProcess } from './helpers/cli.js';
import { testStoreOptions, withStore } from './helpers/sqlite.js';
import { tempRoot } from './helpers/temp.js';

const root = tempRoot('kasa-lifecycle-storage-');
let counter = 0;

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const ZONE = 'Europe/Berlin';
const GAP_LIMIT = 5 * MIN;

function options(): SqliteOptions {
  return testStoreOptions(join(root, `db-${++counter}`, 'kasa.db'), {
    timeZone: ZONE,
    gapLimitMs: GAP_LIMIT,
  });
}

/** A steady load on each channel from `fromMs` to `toMs` (inclusive), one reading every `stepMs`. */
async function writeSteady(
  store: SqliteStore,
  channels: readonly string[],
  fromMs: number,
  toMs: number,
  stepMs: number,
  watts = 1000,
): Promise<number> {
  let batch: Reading[] = [];
  let written = 0;
  for (let t = fromMs; t <= toMs; t += stepMs) {
    for (const [i, channel] of channels.entries()) {
      batch.push({
        channel,
        tsMs: t,
        powerMw: watts * 1000 + i,
        voltageMv: 230_000,
        currentMa: 4348,
        totalWh: 1000 + Math.floor((watts * (t - fromMs)) / HOUR),
      });
    }
    if (batch.length >= 5000) {
      written += (await store.writeBatch(batch)).inserted;
      batch = [];
    }
  }
  if (batch.length > 0) written += (await store.writeBatch(batch)).inserted;
  return written;
}

/** kWh per local day and channel, from the rollups (hour tier plus raw tail). */
function dailyEnergy(path: string, fromMs: number, toMs: number): Map<string, number> {
  const reader = openRollupReader(path, { timeZone: ZONE, gapLimitMs: GAP_LIMIT });
  try {
    const calendar = new PeriodCalendar('day', ZONE);
    const out = new Map<string, number>();
    for (const channel of reader.channels()) {
      const { buckets, gaps } = reader.series(channel, 'hour', fromMs, toMs);
      for (const p of summarisePeriods(buckets, gaps, calendar, fromMs, toMs)) {
        out.set(`${channel.deviceId} ${p.label}`, Math.round(p.energyWh));
      }
    }
    return out;
  } finally {
    reader.close();
  }
}

function rollupRows(path: string, tier: 'minute' | 'hour' | 'day'): number {
  const reader = openRollupReader(path, { timeZone: ZONE, gapLimitMs: GAP_LIMIT });
  try {
    let n = 0;
    for (const channel of reader.channels()) {
      for (const _ of reader.stored(channel, tier, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) n++;
    }
    return n;
  } finally {
    reader.close();
  }
}

function rawRange(path: string): { count: number; first: number; last: number } {
  const reader = openReadingsReader(path);
  try {
    let count = 0;
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const r of reader.readings()) {
      count++;
      first = Math.min(first, r.tsMs);
      last = Math.max(last, r.tsMs);
    }
    return { count, first, last };
  } finally {
    reader.close();
  }
}

/** Writes the closed buckets the worker holds back (a maintenance step that deletes nothing). */
async function flushRollups(store: SqliteStore, nowMs: number): Promise<void> {
  const policy = { rawMs: null, minuteMs: null, hourMs: null, dayMs: null, maxBytes: null };
  await store.lifecycle({ kind: 'maintain', policy, nowMs, stepRows: 1, vacuumPages: 1 });
}

function lifecycleFor(
  store: SqliteStore,
  retention: Partial<RetentionPolicy>,
  nowMs: number,
  dir: string,
): DataLifecycle {
  const opts: DataLifecycleOptions = {
    retention: { rawMs: null, minuteMs: null, hourMs: null, dayMs: null, maxBytes: null, ...retention },
    maintenanceIntervalMs: HOUR,
    backupSchedule: null,
    backupKeep: 3,
    backupDirectory: join(dir, 'backups'),
    timeZone: ZONE,
  };
  return new DataLifecycle(store, opts, createSilentLogger(), unguarded, { now: () => nowMs });
}

describe('DST days', () => {
  test('a DST-change day in Europe/Berlin sums 23 hours in spring and 25 in autumn', async () => {
    const opts = options();
    await withStore(opts, async (store) => {
      // 2026-03-28 .. 2026-03-30 and 2026-10-24 .. 2026-10-26, local midnight to local midnight.
      await writeSteady(store, ['DST'], Date.UTC(2026, 2, 27, 23), Date.UTC(2026, 2, 30, 22), MIN);
      await writeSteady(store, ['DST'], Date.UTC(2026, 9, 23, 22), Date.UTC(2026, 9, 26, 23), MIN);
    });
    const config = join(root, `dst-${counter}.yaml`);
    writeFileSync(config, `time_zone: ${ZONE}\nstorage:\n  sqlite:\n    path: ${opts.path}\n`);
    const days = async (from: string, to: string) => {
      const result = await runCliProcess([
        'energy',
        '-c',
        config,
        '--format',
        'json',
        '--from',
        from,
        '--to',
        to,
      ]);
      assert.equal(result.code, 0, result.stderr);
      return (
        JSON.parse(result.stdout) as { period: string; energy_kwh: number; period_hours: number }[]
      ).map((r) => [r.period, r.energy_kwh, r.period_hours]);
    };
    assert.deepEqual(await days('2026-03-28', '2026-03-31'), [
      ['2026-03-28', 24, 24],
      ['2026-03-29', 23, 23],
      ['2026-03-30', 24, 24],
    ]);
    assert.deepEqual(await days('2026-10-24', '2026-10-27'), [
      ['2026-10-24', 24, 24],
      ['2026-10-25', 25, 25],
      ['2026-10-26', 24, 24],
    ]);
    const csv = await runCliProcess([
      'energy',
      '-c',
      config,
      '--format',
      'csv',
      '--period',
      'month',
      '--from',
      '2026-10',
    ]);
    assert.equal(csv.code, 0, csv.stderr);
    // The months between the two written stretches are a gap: its counter increase is spread over
    // it (estimated), so October also holds the gap's share from the 1st to the 23rd.
    const [header, line] = csv.stdout.split('\n');
    assert.equal(header, 'period,device_id,alias,energy_kwh,cost,currency,source');
    assert.match(line ?? '', /^2026-10,DST,,\d+\.\d{3},,,estimated$/);
    const month = await runCliProcess([
      'energy',
      '-c',
      config,
      '--format',
      'json',
      '--period',
      'month',
      '--from',
      '2026-10',
    ]);
    assert.equal((JSON.parse(month.stdout) as { measured_kwh: number }[])[0]?.measured_kwh, 73);
    // The day rollups are local days too: 23 h and 25 h of coverage.
    const days2 = await runCliProcess([
      'export',
      '-c',
      config,
      '--resolution',
      'day',
      '--from',
      '2026-10-24T22:00:00Z',
    ]);
    assert.equal(days2.code, 0, days2.stderr);
    const lines = days2.stdout.trim().split('\n');
    assert.equal(
      lines[0],
      'time,device_id,alias,readings,power_w,power_min_w,power_max_w,energy_wh,covered_s,complete',
    );
    assert.match(lines[1] ?? '', /^2026-10-24T22:00:00\.000Z,DST,,1500,1000,1000,1000,25000,90000,true$/);
  });
});

describe('retention', () => {
  test('retention removes raw readings past their age while the rollups keep their totals', async () => {
    const opts = options();
    const now = Date.UTC(2026, 10, 20, 12);
    const start = now - 40 * DAY;
    await withStore(opts, async (store) => {
      await writeSteady(store, ['A', 'B'], start, now, MIN);
      await flushRollups(store, now);
      const before = dailyEnergy(opts.path, start, now);
      const minutesBefore = rollupRows(opts.path, 'minute');
      const hoursBefore = rollupRows(opts.path, 'hour');
      const run = await lifecycleFor(
        store,
        { rawMs: 30 * DAY, minuteMs: 35 * DAY },
        now,
        root,
      ).runMaintenance();
      assert.ok(run.deleted.raw > 0 && run.deleted.minute > 0, JSON.stringify(run));
      const raw = rawRange(opts.path);
      assert.ok(raw.first >= now - 30 * DAY, `oldest raw reading ${new Date(raw.first).toISOString()}`);
      assert.equal(raw.last, now);
      assert.equal(raw.count, 2 * (30 * 24 * 60 + 1));
      assert.ok(rollupRows(opts.path, 'minute') < minutesBefore);
      assert.equal(rollupRows(opts.path, 'hour'), hoursBefore);
      assert.deepEqual(dailyEnergy(opts.path, start, now), before);
      // 40 days of a steady 1 kW: 24 kWh for every whole day.
      assert.equal(before.get('A 2026-11-01'), 24_000);
    });
  });

  test('the disk budget is respected: the oldest raw readings go first, the rollups stay', async () => {
    const opts = options();
    const now = Date.UTC(2026, 10, 20, 12);
    const start = now - 12 * DAY;
    const maxBytes = 4 * 1024 * 1024;
    await withStore(opts, async (store) => {
      await writeSteady(store, ['A', 'B'], start, now, 10_000);
      await flushRollups(store, now);
      const before = dailyEnergy(opts.path, start, now);
      const hours = rollupRows(opts.path, 'hour');
      const days = rollupRows(opts.path, 'day');
      const rawBefore = rawRange(opts.path);
      const infoBefore = await store.lifecycle({ kind: 'info' });
      assert.ok(
        infoBefore.fileBytes + infoBefore.walBytes > 2 * maxBytes,
        `${infoBefore.fileBytes} bytes to start with`,
      );
      const run = await lifecycleFor(store, { maxBytes }, now, root).runMaintenance();
      const info = await store.lifecycle({ kind: 'info' });
      assert.ok(info.fileBytes + info.walBytes <= maxBytes, `${info.fileBytes} + ${info.walBytes} bytes`);
      assert.equal(info.autoVacuum, 'incremental');
      assert.ok(run.vacuumedPages > 0, 'space went back to the filesystem');
      assert.equal(run.budgetUnreachable, false);
      const raw = rawRange(opts.path);
      assert.ok(raw.first > rawBefore.first, 'the oldest raw readings went');
      assert.equal(raw.last, rawBefore.last, 'the newest stayed');
      assert.equal(rollupRows(opts.path, 'hour'), hours);
      assert.equal(rollupRows(opts.path, 'day'), days);
      assert.deepEqual(dailyEnergy(opts.path, start, now), before);
    });
  });

  test('rollups survive a restart: open buckets are rebuilt from raw readings, nothing counted twice', async () => {
    const opts = options();
    const start = Date.UTC(2026, 5, 9, 22);
    await withStore(opts, (store) => writeSteady(store, ['R'], start, start + 12 * HOUR, 10_000));
    // The second half of the day after a restart, continuing the same counter.
    await withStore(opts, async (store) => {
      const batch: Reading[] = [];
      for (let t = start + 12 * HOUR + 10_000; t <= start + 24 * HOUR; t += 10_000) {
        batch.push({
          channel: 'R',
          tsMs: t,
          powerMw: 1_000_000,
          voltageMv: 230_000,
          currentMa: 4348,
          totalWh: 1000 + Math.floor((1000 * (t - start)) / HOUR),
        });
      }
      await store.writeBatch(batch);
    });
    assert.equal(dailyEnergy(opts.path, start, start + DAY).get('R 2026-06-10'), 24_000);
  });
});
