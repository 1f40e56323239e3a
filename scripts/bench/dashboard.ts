/**
 * The dashboard's read paths with 100 channels and 30 days at a 10 s poll:
 *
 * - first paint of the overview: GET /api/devices, /api/daily-energy?days=1 and
 *   /api/series?from=-1h&points=60 (all channels) at once, as the page asks for them;
 * - a device page at 30 days: /api/devices, /api/series?device=&from=-30d&points=600 and
 *   /api/daily-energy?device=&days=30 at once;
 *
 * through the daemon's HTTP server and reader pool (worker threads), each against the same queries
 * run directly on a better-sqlite3 connection in this thread (no HTTP, no worker, no JSON) in the
 * same run. Target: each page's data in < 200 ms.
 *
 * The database: the last day's readings of every channel go through the daemon's writer (so the
 * open buckets and the raw tail are real); the 29 days before are rollup rows (minute, hour, day)
 * inserted directly with the shape the writer gives them: what the queries read for those days.
 * Raw readings of those days would only make the file larger; no dashboard query reads them.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import type { DeviceSnapshot } from '../../src/discovery/registry.js';
import type { Reading } from '../../src/domain/reading.js';
import { HttpServer, LatestReadings } from '../../src/http/index.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { SqliteStore } from '../../src/storage/sqlite/index.js';
import { dailyEnergy, powerSeries } from '../../src/storage/sqlite/read/dashboard-queries.js';
import { ReaderPool } from '../../src/storage/sqlite/read/reader-pool.js';
import { channelsOf } from './writer.js';

export interface DashboardBenchOptions {
  readonly channels?: number;
  readonly days?: number;
  /** Timed requests of each page (after 3 warm-up ones). */
  readonly repeats?: number;
  readonly progress?: (message: string) => void;
}

export interface Timing {
  readonly medianMs: number;
  readonly p95Ms: number;
}

export interface DashboardBenchResult {
  readonly channels: number;
  readonly days: number;
  readonly rawReadings: number;
  readonly rollupRows: number;
  readonly databaseBytes: number;
  /** Each request alone, median ms. */
  readonly perRequestMedianMs: Readonly<Record<string, number>>;
  readonly overview: { readonly http: Timing; readonly direct: Timing; readonly bytes: number };
  readonly device: { readonly http: Timing; readonly direct: Timing; readonly bytes: number };
}

const POLL_MS = 10_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const GAP_LIMIT_MS = 5 * MINUTE_MS;

function timing(samples: number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { medianMs: Math.round(at(0.5) * 10) / 10, p95Ms: Math.round(at(0.95) * 10) / 10 };
}

/** A channel's mean power (mW) at a time: a daily swing around its own base. */
function powerAt(c: number, ts: number): number {
  const base = 5000 + ((c * 7919) % 200_000);
  return Math.round(base * (1 + 0.5 * Math.sin((2 * Math.PI * ts) / DAY_MS + c)));
}

/** Rollup rows of the days before `untilMs` (UTC-aligned), as the writer would have closed them. */
function insertRollups(path: string, ids: readonly number[], fromMs: number, untilMs: number): number {
  const db = new BetterSqlite3(path);
  const row = (table: string) =>
    db.prepare(
      `INSERT INTO ${table} (channel_id, bucket_ms, readings, power_sum_mw, power_min_mw, power_max_mw, energy_mwh, covered_ms, resets)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)`,
    );
  const minute = row('rollup_minute');
  const hour = row('rollup_hour');
  const day = row('rollup_day');
  let rows = 0;
  db.transaction(() => {
    ids.forEach((id, c) => {
      for (let d = fromMs; d < untilMs; d += DAY_MS) {
        let dayEnergy = 0;
        let daySum = 0;
        for (let h = d; h < d + DAY_MS; h += HOUR_MS) {
          let hourEnergy = 0;
          let hourSum = 0;
          for (let m = h; m < h + HOUR_MS; m += MINUTE_MS) {
            const p = powerAt(c, m);
            const energy = Math.round(p / 60); // mW for a minute, in mWh
            minute.run(id, m, 6, p * 6, p - 50, p + 50, energy, MINUTE_MS);
            hourEnergy += energy;
            hourSum += p * 6;
            rows++;
          }
          hour.run(id, h, 360, hourSum, null, null, hourEnergy, HOUR_MS);
          dayEnergy += hourEnergy;
          daySum += hourSum;
          rows++;
        }
        day.run(id, d, 8640, daySum, null, null, dayEnergy, DAY_MS);
        rows++;
      }
    });
  })();
  db.close();
  return rows;
}

export async function benchDashboard(opts: DashboardBenchOptions = {}): Promise<DashboardBenchResult> {
  const channelCount = opts.channels ?? 100;
  const days = opts.days ?? 30;
  const repeats = opts.repeats ?? 20;
  const progress = opts.progress ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-dashboard-'));
  const path = join(dir, 'kasa.db');
  const logger = createSilentLogger();
  const nowMs = Date.now();
  const todayMs = Math.floor(nowMs / DAY_MS) * DAY_MS;
  const rawFromMs = todayMs - DAY_MS;
  const channels = channelsOf(channelCount);
  let pool: ReaderPool | null = null;
  let server: HttpServer | null = null;
  try {
    // The last day and today through the daemon's writer (rollups built by it).
    progress(`dashboard: ${channelCount} channels, raw readings of the last day through the writer`);
    const store = new SqliteStore(
      {
        path,
        journalMode: 'WAL',
        synchronous: 'NORMAL',
        cacheSize: -16_000,
        tempStore: 'MEMORY',
        busyTimeoutMs: 5000,
        lifecycle: { rollups: true, timeZone: 'UTC', gapLimitMs: GAP_LIMIT_MS },
      },
      logger,
    );
    await store.start();
    await store.upsertChannels(channels);
    const latest = new LatestReadings();
    const totals = channels.map(() => 0);
    let batch: Reading[] = [];
    let rawReadings = 0;
    for (let ts = rawFromMs; ts < nowMs; ts += POLL_MS) {
      channels.forEach((channel, c) => {
        const powerMw = powerAt(c, ts);
        totals[c] = (totals[c] ?? 0) + (powerMw * POLL_MS) / 3.6e9;
        const reading: Reading = {
          channel: channel.id,
          tsMs: ts,
          powerMw,
          voltageMv: 230_000,
          currentMa: Math.round(powerMw / 230),
          totalWh: Math.floor(totals[c] ?? 0),
        };
        latest.record(reading);
        batch.push(reading);
      });
      if (batch.length >= 2000) {
        await store.writeBatch(batch);
        rawReadings += batch.length;
        batch = [];
      }
    }
    await store.writeBatch(batch);
    rawReadings += batch.length;
    await store.stop();

    progress(`dashboard: ${days - 1} earlier days of minute, hour and day rollups`);
    const db = new BetterSqlite3(path, { readonly: true });
    const ids = channels.map(
      (c) => db.prepare('SELECT id FROM channels WHERE device_id = ?').pluck().get(c.id) as number,
    );
    db.close();
    const rollupRows = insertRollups(path, ids, rawFromMs - (days - 1) * DAY_MS, rawFromMs);

    pool = new ReaderPool(
      { path, size: 5, maxOverflow: 10, timeoutMs: 30_000, recycleMs: 3_600_000 },
      logger,
    );
    await pool.start();
    const devices: DeviceSnapshot[] = channels.map((channel) => ({
      id: channel.id,
      alias: channel.alias,
      model: channel.model,
      host: '127.0.0.1',
      port: 9999,
      hasEmeter: true,
      polled: true,
      outlets: [],
      channels: [channel],
      state: { kind: 'online', since: nowMs },
      firstSeenMs: nowMs,
      lastSeenMs: nowMs,
      missedRounds: 0,
      failedPolls: 0,
    }));
    const readers = pool;
    server = new HttpServer(
      {
        status: () => null,
        health: () => null,
        refreshHealth: () => Promise.reject(new Error('no supervisor in this benchmark')),
        devices: () => devices,
        latest,
        pool: () => readers.stats(),
        readers,
      },
      { host: '127.0.0.1', port: 0, energy: () => ({ timeZone: 'UTC', gapLimitMs: GAP_LIMIT_MS }) },
      logger,
    );
    const address = await server.start();
    if (address === null) throw new Error(`cannot listen: ${server.error}`);
    const base = `http://127.0.0.1:${address.port}`;
    const device = channels[Math.floor(channelCount / 2)]?.id as string;

    const fetchAll = async (paths: readonly string[]): Promise<number> => {
      const bodies = await Promise.all(
        paths.map(async (p) => {
          const response = await fetch(`${base}${p}`);
          if (!response.ok) throw new Error(`${p}: ${response.status} ${await response.text()}`);
          return response.arrayBuffer();
        }),
      );
      return bodies.reduce((sum, b) => sum + b.byteLength, 0);
    };
    const overviewPaths = ['/api/devices', '/api/daily-energy?days=1', '/api/series?from=-1h&points=60'];
    const devicePaths = [
      '/api/devices',
      `/api/series?device=${device}&from=-30d&points=600`,
      `/api/daily-energy?device=${device}&days=30`,
    ];
    const direct = new BetterSqlite3(path, { readonly: true });
    const directOverview = () => {
      const t = Date.now();
      powerSeries(direct, { fromMs: t - HOUR_MS, toMs: t, points: 60 });
      dailyEnergy(path, 5000, { days: 1, nowMs: t, timeZone: 'UTC', gapLimitMs: GAP_LIMIT_MS });
    };
    const directDevice = () => {
      const t = Date.now();
      powerSeries(direct, { fromMs: t - 30 * DAY_MS, toMs: t, points: 600, channels: [device] });
      dailyEnergy(path, 5000, {
        days: 30,
        nowMs: t,
        timeZone: 'UTC',
        gapLimitMs: GAP_LIMIT_MS,
        channels: [device],
      });
    };

    const measure = async (run: () => unknown): Promise<Timing> => {
      for (let i = 0; i < 3; i++) await run();
      const samples: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const started = performance.now();
        await run();
        samples.push(performance.now() - started);
      }
      return timing(samples);
    };
    progress(`dashboard: ${repeats} overview and device-page loads, over HTTP and directly`);
    // Alternating, so a noisy moment on the shared machine hits both.
    const overviewHttp = await measure(() => fetchAll(overviewPaths));
    const overviewDirect = await measure(directOverview);
    const deviceHttp = await measure(() => fetchAll(devicePaths));
    const deviceDirect = await measure(directDevice);
    const each: Record<string, number> = {};
    for (const p of [...overviewPaths, ...devicePaths.slice(1)])
      each[p] = (await measure(() => fetchAll([p]))).medianMs;
    const overviewBytes = await fetchAll(overviewPaths);
    const deviceBytes = await fetchAll(devicePaths);
    direct.close();
    return {
      channels: channelCount,
      days,
      rawReadings,
      rollupRows,
      databaseBytes: statSync(path).size,
      perRequestMedianMs: each,
      overview: { http: overviewHttp, direct: overviewDirect, bytes: overviewBytes },
      device: { http: deviceHttp, direct: deviceDirect, bytes: deviceBytes },
    };
  } finally {
    await server?.stop();
    await pool?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
