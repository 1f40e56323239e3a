/**
 * Data lifecycle figures:
 *
 * - bytes on disk per channel per day at a 10 s poll interval, rollups included, measured per table
 *   (dbstat) in the file the daemon's writer leaves, and what a year costs per channel under the
 *   default retention (raw 30 days, minutes 365 days, hours and days kept) or keeping everything;
 * - the daemon writer's throughput (BoundedQueue -> Writer -> SqliteStore worker) with rollups on
 *   versus off, alternating runs over the same readings in the same process; target >= 0.7x.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ChannelInfo } from '../../src/domain/channel.js';
import type { Reading } from '../../src/domain/reading.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { BoundedQueue } from '../../src/queue/bounded-queue.js';
import { type SqliteOptions, SqliteStore } from '../../src/storage/sqlite/index.js';
import { Writer } from '../../src/storage/writer.js';
import { tableBytesOfFile } from './sqlite-baselines.js';
import { channelsOf, feedWithoutOverflow } from './writer.js';

export interface LifecycleBenchOptions {
  /** Channels polled (default 50). */
  readonly channels?: number;
  /** Simulated days of readings at a 10 s interval (default 2). */
  readonly days?: number;
  /** Runs with rollups on and off each, alternating (default 3). */
  readonly repeats?: number;
}

export interface LifecycleBenchResult {
  readonly channels: number;
  readonly days: number;
  readonly readingsPerRun: number;
  /** Raw readings + rollups + gaps, bytes of table pages per channel per day. */
  readonly bytesPerChannelDay: number;
  readonly perChannelDay: {
    readonly raw: number;
    readonly minute: number;
    readonly hour: number;
    readonly day: number;
  };
  /** The whole file (free pages and schema included) per channel per day. */
  readonly fileBytesPerChannelDay: number;
  /** Steady state after a year under the defaults: 30 days raw, 365 days minutes, hours and days. */
  readonly bytesPerChannelYearDefault: number;
  /** A year with nothing deleted. */
  readonly bytesPerChannelYearAll: number;
  readonly rollupsOnRowsPerSec: number;
  readonly rollupsOffRowsPerSec: number;
  /** median on / median off. */
  readonly ratio: number;
  readonly onRuns: readonly number[];
  readonly offRuns: readonly number[];
}

const POLL_MS = 10_000;
const BATCH = 1000;
const START_MS = Date.UTC(2026, 0, 5);

function options(path: string, rollups: boolean): SqliteOptions {
  return {
    path,
    journalMode: 'WAL',
    synchronous: 'FULL',
    cacheSize: -8000,
    tempStore: 'MEMORY',
    busyTimeoutMs: 5000,
    lifecycle: { rollups, timeZone: 'Europe/Berlin', gapLimitMs: 5 * 60_000 },
  };
}

/** Every channel once per 10 s round, with wandering power and a counter that follows it. */
function* readingsOf(rounds: number, channels: readonly ChannelInfo[]): Generator<Reading> {
  const totals = channels.map((_, c) => (c * 37) % 5000);
  for (let round = 0; round < rounds; round++) {
    for (let c = 0; c < channels.length; c++) {
      const base = 5000 + ((c * 7919) % 200_000);
      const powerMw = base + ((round * 131 + c * 17) % Math.max(1, Math.floor(base / 20)));
      const voltageMv = 228_000 + ((round * 97 + c * 13) % 4000);
      const total = (totals[c] ?? 0) + (powerMw * POLL_MS) / 3.6e9;
      totals[c] = total;
      yield {
        channel: (channels[c] as ChannelInfo).id,
        tsMs: START_MS + round * POLL_MS + (c % 1000),
        powerMw,
        voltageMv,
        currentMa: Math.round((powerMw * 1000) / voltageMv),
        totalWh: Math.floor(total),
      };
    }
  }
}

/** The daemon's writer path, as scripts/bench/writer.ts drives it. */
async function run(path: string, rollups: boolean, rounds: number, channels: readonly ChannelInfo[]) {
  const logger = createSilentLogger();
  const store = new SqliteStore(options(path, rollups), logger);
  await store.start();
  await store.upsertChannels(channels);
  const queue = new BoundedQueue<Reading>({ capacity: 10 * BATCH, overflow: 'drop-newest' }, logger);
  const writer = new Writer(queue, store, { batchSize: BATCH, flushIntervalMs: 50 }, logger);
  writer.start();
  const rows = rounds * channels.length;
  const started = performance.now();
  await feedWithoutOverflow(queue, readingsOf(rounds, channels));
  const stats = await writer.stop(Number.MAX_SAFE_INTEGER);
  const elapsedMs = performance.now() - started;
  await store.stop();
  if (stats.written !== rows) throw new Error(`lost readings: wrote ${stats.written} of ${rows}`);
  return (rows * 1000) / elapsedMs;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export async function benchLifecycle(opts: LifecycleBenchOptions = {}): Promise<LifecycleBenchResult> {
  const channels = channelsOf(opts.channels ?? 50);
  const days = opts.days ?? 2;
  const repeats = Math.max(1, opts.repeats ?? 3);
  const rounds = Math.round((days * 86_400_000) / POLL_MS);
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-lifecycle-'));
  try {
    // Warm-up (discarded): the first run pays for loading and compiling both sides' code.
    const warmup = join(dir, 'warmup.db');
    await run(warmup, true, Math.min(rounds, 1000), channels);
    rmSync(warmup, { force: true });
    const onRuns: number[] = [];
    const offRuns: number[] = [];
    let measured: string | null = null;
    for (let i = 0; i < repeats; i++) {
      // Alternate, so drift of a noisy machine hits both sides alike.
      const first = i % 2 === 0;
      for (const rollups of first ? [true, false] : [false, true]) {
        const path = join(dir, `${rollups ? 'on' : 'off'}-${i}.db`);
        (rollups ? onRuns : offRuns).push(await run(path, rollups, rounds, channels));
        if (rollups && measured === null) measured = path;
        else rmSync(path, { force: true });
      }
    }
    const tables = tableBytesOfFile(measured as string);
    const channelDays = channels.length * days;
    const per = (table: string) => (tables[table] ?? 0) / channelDays;
    const perChannelDay = {
      raw: Math.round(per('readings')),
      minute: Math.round(per('rollup_minute')),
      hour: Math.round(per('rollup_hour')),
      day: Math.round(per('rollup_day')),
    };
    const bytesPerChannelDay = Math.round(
      perChannelDay.raw + perChannelDay.minute + perChannelDay.hour + perChannelDay.day + per('energy_gaps'),
    );
    const on = median(onRuns);
    const off = median(offRuns);
    return {
      channels: channels.length,
      days,
      readingsPerRun: rounds * channels.length,
      bytesPerChannelDay,
      perChannelDay,
      fileBytesPerChannelDay: Math.round(statSync(measured as string).size / channelDays),
      bytesPerChannelYearDefault: Math.round(
        30 * perChannelDay.raw + 365 * (perChannelDay.minute + perChannelDay.hour + perChannelDay.day),
      ),
      bytesPerChannelYearAll: bytesPerChannelDay * 365,
      rollupsOnRowsPerSec: Math.round(on),
      rollupsOffRowsPerSec: Math.round(off),
      ratio: Math.round((on / off) * 100) / 100,
      onRuns: onRuns.map(Math.round),
      offRuns: offRuns.map(Math.round),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
