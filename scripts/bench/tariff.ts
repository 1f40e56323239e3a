/**
 * Cost reports over long ranges: `energyReport` (what `energy` and GET /api/energy run) for a year
 * of monthly figures, with a tariff whose band edge is off the whole hour (07:30: those hours are
 * priced from minute buckets), against the same report without a tariff (hour buckets only), in the
 * same process over the same database. Cost is computed from the rollups at report time (not stored
 * with them), so this is what a corrected tariff costs to reprice a year.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Reading } from '../../src/domain/reading.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { energyReport, SqliteStore, type TariffSettings } from '../../src/storage/sqlite/index.js';

export interface TariffBenchOptions {
  readonly channels?: number;
  readonly days?: number;
  /** Poll interval of the synthetic readings (default 60 s). */
  readonly stepMs?: number;
  readonly repeats?: number;
}

export interface TariffBenchResult {
  readonly channels: number;
  readonly days: number;
  /** Median ms of one report with the 07:30 tariff. */
  readonly tariffMs: number;
  /** Median ms of the same report with no tariff. */
  readonly plainMs: number;
  readonly ratio: number;
}

const HOUR = 3_600_000;
const ZONE = 'Europe/Berlin';

const TARIFF: TariffSettings = {
  currency: 'EUR',
  prices_file: null,
  periods: [
    {
      from: '2020-01-01',
      standing_charge: 0.45,
      rates: [
        { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '07:30', to: '23:00', price: 0.31 },
        { days: null, from: null, to: null, price: 0.18 },
      ],
    },
  ],
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function benchTariff(options: TariffBenchOptions = {}): Promise<TariffBenchResult> {
  const channels = options.channels ?? 5;
  const days = options.days ?? 365;
  const stepMs = options.stepMs ?? 60_000;
  const repeats = options.repeats ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-tariff-'));
  const path = join(dir, 'tariff.db');
  try {
    const store = new SqliteStore(
      {
        path,
        journalMode: 'WAL',
        synchronous: 'NORMAL',
        cacheSize: -16_000,
        tempStore: 'MEMORY',
        busyTimeoutMs: 5000,
        lifecycle: { rollups: true, timeZone: ZONE, gapLimitMs: 5 * 60_000 },
      },
      createSilentLogger(),
    );
    await store.start();
    const from = Date.UTC(2025, 0, 1);
    const to = from + days * 24 * HOUR;
    let batch: Reading[] = [];
    for (let t = from; t <= to; t += stepMs) {
      for (let c = 0; c < channels; c++) {
        batch.push({
          channel: `BENCH${String(c).padStart(35, '0')}`,
          tsMs: t,
          powerMw: 1_000_000,
          voltageMv: 230_000,
          currentMa: 4348,
          totalWh: Math.floor((1000 * (t - from)) / HOUR),
        });
      }
      if (batch.length >= 10_000) {
        await store.writeBatch(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await store.writeBatch(batch);
    await store.stop();
    const run = (tariff: TariffSettings) => {
      const started = performance.now();
      energyReport(
        path,
        { kind: 'month', fromMs: from, toMs: to, nowMs: to + HOUR },
        { timeZone: ZONE, gapLimitMs: 5 * 60_000, tariff },
      );
      return performance.now() - started;
    };
    const none: TariffSettings = { currency: null, prices_file: null, periods: [] };
    run(none);
    const plain: number[] = [];
    const priced: number[] = [];
    for (let i = 0; i < repeats; i++) {
      plain.push(run(none));
      priced.push(run(TARIFF));
    }
    const tariffMs = Math.round(median(priced));
    const plainMs = Math.round(median(plain));
    return { channels, days, tariffMs, plainMs, ratio: Math.round((tariffMs / plainMs) * 100) / 100 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
