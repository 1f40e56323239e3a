/**
 * InfluxDB forwarding into a real VictoriaMetrics, measured in one run against its baseline:
 *
 * - throughput: the daemon's path (SQLite outbox → InfluxForwarder → @influxdata/influxdb-client
 *   under the network policy) against a raw `fetch` POST of the same line protocol, same batch
 *   size, one request in flight; the target is forwarding ≥ 0.5× raw.
 * - catch-up: 100 channels polled at 1 Hz during a 10-minute outage leave 60,000 readings in the
 *   outbox (committed as the writer does, one batch of 100 a second); the time the forwarder takes
 *   to deliver them once InfluxDB is back.
 * - the outbox's cost on SQLite writes (the same readings stored with and without it).
 *
 * Needs the `victoria-metrics` binary (Debian package). Each path gets fresh series and a fresh file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ChannelInfo } from '../../src/domain/channel.js';
import type { Reading } from '../../src/domain/reading.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { ResiliencePolicy } from '../../src/resilience/index.js';
import { InfluxForwarder, InfluxHttpWriter, readingLine } from '../../src/storage/influx/index.js';
import { type SqliteOptions, SqliteStore } from '../../src/storage/sqlite/index.js';
import { startVictoria, type Victoria } from '../../test/helpers/victoria.js';

export interface InfluxBenchOptions {
  /** Readings forwarded on each path per repetition (default 200,000). */
  readonly points?: number;
  /** Points per request on both paths (default 5000, the daemon's default). */
  readonly batchSize?: number;
  /** Repetitions; medians are reported (default 3). */
  readonly repeats?: number;
}

export interface InfluxBenchResult {
  readonly forwardPointsPerSec: number;
  readonly rawFetchPointsPerSec: number;
  /** forward / raw (median of the per-repetition ratios); the target is ≥ 0.5. */
  readonly ratio: number;
  readonly catchUp: {
    readonly channels: number;
    readonly outageSeconds: number;
    readonly readings: number;
    /** Time from the forwarder's start to the last point accepted. */
    readonly seconds: number;
    readonly pointsPerSec: number;
  };
  /** SQLite writes per second with the outbox / without it (same readings, same batches). */
  readonly outboxWriteRatio: number;
}

const CHANNELS = 100;
const WRITER_BATCH = 1000;

function channelsOf(prefix: string, count: number): ChannelInfo[] {
  return Array.from({ length: count }, (_, c) => ({
    id: `${prefix}${c.toString(16).toUpperCase().padStart(6, '0')}`,
    alias: `plug ${c}`,
    model: 'HS110(EU)',
    parentId: null,
    parentAlias: null,
  }));
}

/** Readings of every channel once a second, the newest one second ago. */
function readingsOf(channels: readonly ChannelInfo[], count: number): Reading[] {
  const rounds = Math.ceil(count / channels.length);
  const start = Date.now() - rounds * 1000;
  return Array.from({ length: count }, (_, i) => {
    const c = i % channels.length;
    const round = Math.floor(i / channels.length);
    const powerMw = 5000 + ((c * 7919 + round * 131) % 200_000);
    return {
      channel: (channels[c] as ChannelInfo).id,
      tsMs: start + round * 1000,
      powerMw,
      voltageMv: 228_000 + ((round * 97 + c * 13) % 4000),
      currentMa: Math.round((powerMw * 1000) / 230_000),
      totalWh: 1000 + round,
    };
  });
}

function sqliteOptions(path: string, outbox: boolean): SqliteOptions {
  return {
    path,
    journalMode: 'WAL',
    synchronous: 'FULL',
    cacheSize: -8000,
    tempStore: 'MEMORY',
    busyTimeoutMs: 100,
    outbox,
  };
}

/** A store holding `readings` (committed in batches of `batch`), ready for a forwarder. */
async function filledStore(
  path: string,
  channels: readonly ChannelInfo[],
  readings: readonly Reading[],
  batch = WRITER_BATCH,
  outbox = true,
): Promise<{ store: SqliteStore; writeMs: number }> {
  const store = new SqliteStore(sqliteOptions(path, outbox), createSilentLogger());
  await store.start();
  await store.upsertChannels(channels);
  const started = performance.now();
  for (let i = 0; i < readings.length; i += batch) await store.writeBatch(readings.slice(i, i + batch));
  return { store, writeMs: performance.now() - started };
}

function networkPolicy(): ResiliencePolicy {
  // The network preset's defaults (config/kasa-monitor.example.yaml).
  return new ResiliencePolicy(
    'influx.write',
    'network',
    {
      strategy: 'exponential',
      baseDelayMs: 1000,
      maxDelayMs: 30_000,
      jitter: true,
      maxAttempts: 5,
      timeoutMs: 10_000,
      breakerThreshold: 5,
      breakerHalfOpenAfterMs: 30_000,
    },
    createSilentLogger(),
  );
}

/** Runs a forwarder over what `store` holds; returns the milliseconds until everything was accepted. */
async function forwardAll(
  store: SqliteStore,
  vm: Victoria,
  batchSize: number,
  expected: number,
): Promise<number> {
  const logger = createSilentLogger();
  const forwarder = new InfluxForwarder(
    store,
    new InfluxHttpWriter(
      { url: vm.url, token: 'bench', org: 'home', bucket: 'kasa', timeoutMs: 11_000, gzip: false },
      logger,
    ),
    networkPolicy(),
    { batchSize, flushIntervalMs: 1000, tags: {} },
    logger,
  );
  const started = performance.now();
  await forwarder.start();
  while (forwarder.stats().queued > 0) {
    const failed = forwarder.stats().failedBatches;
    if (failed > 0) throw new Error(`forwarding failed: ${JSON.stringify(forwarder.stats().lastError)}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const elapsed = performance.now() - started;
  const stats = await forwarder.stop();
  if (stats.written !== expected) throw new Error(`forwarded ${stats.written} of ${expected}`);
  return elapsed;
}

/** The raw baseline: the same lines, `batchSize` a request, one request in flight, plain fetch. */
async function rawFetch(lines: readonly string[], vm: Victoria, batchSize: number): Promise<number> {
  const url = `${vm.url}/api/v2/write?org=home&bucket=kasa&precision=ms`;
  const started = performance.now();
  for (let i = 0; i < lines.length; i += batchSize) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: 'Token bench', 'content-type': 'text/plain; charset=utf-8' },
      body: lines.slice(i, i + batchSize).join('\n'),
    });
    await response.arrayBuffer();
    if (response.status !== 204) throw new Error(`raw write answered ${response.status}`);
  }
  return performance.now() - started;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export async function benchInflux(options: InfluxBenchOptions = {}): Promise<InfluxBenchResult> {
  const points = options.points ?? 200_000;
  const batchSize = options.batchSize ?? 5000;
  const repeats = Math.max(1, options.repeats ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-influx-'));
  const vm = await startVictoria();
  try {
    const forward: number[] = [];
    const raw: number[] = [];
    const ratios: number[] = [];
    const outboxRatios: number[] = [];
    for (let r = 0; r < repeats; r++) {
      // Raw: its own series, the same shape of lines.
      const rawChannels = channelsOf(`R${r}X`, CHANNELS);
      const rawReadings = readingsOf(rawChannels, points);
      const lines = rawReadings.map((reading, i) =>
        readingLine(
          { deviceId: reading.channel, alias: `plug ${i % CHANNELS}`, model: 'HS110(EU)', parentId: null },
          reading,
        ),
      );
      const rawMs = await rawFetch(lines, vm, batchSize);

      const fwdChannels = channelsOf(`F${r}X`, CHANNELS);
      const fwdReadings = readingsOf(fwdChannels, points);
      const { store, writeMs } = await filledStore(join(dir, `fwd-${r}.db`), fwdChannels, fwdReadings);
      const fwdMs = await forwardAll(store, vm, batchSize, points);
      await store.stop();

      // The outbox's cost: the same readings into a file without it.
      const plain = await filledStore(
        join(dir, `plain-${r}.db`),
        fwdChannels,
        fwdReadings,
        WRITER_BATCH,
        false,
      );
      await plain.store.stop();
      outboxRatios.push(plain.writeMs / writeMs);

      raw.push((points * 1000) / rawMs);
      forward.push((points * 1000) / fwdMs);
      ratios.push(rawMs / fwdMs);
    }

    // Catch-up after a 10-minute outage of 100 channels at 1 Hz: 600 commits of 100 readings.
    const outageSeconds = 600;
    const catchChannels = channelsOf('CUX', CHANNELS);
    const backlog = readingsOf(catchChannels, CHANNELS * outageSeconds);
    const catchStore = await filledStore(join(dir, 'catch-up.db'), catchChannels, backlog, CHANNELS);
    const catchMs = await forwardAll(catchStore.store, vm, batchSize, backlog.length);
    await catchStore.store.stop();

    return {
      forwardPointsPerSec: Math.round(median(forward)),
      rawFetchPointsPerSec: Math.round(median(raw)),
      ratio: Math.round(median(ratios) * 100) / 100,
      catchUp: {
        channels: CHANNELS,
        outageSeconds,
        readings: backlog.length,
        seconds: Math.round(catchMs) / 1000,
        pointsPerSec: Math.round((backlog.length * 1000) / catchMs),
      },
      outboxWriteRatio: Math.round(median(outboxRatios) * 100) / 100,
    };
  } finally {
    await vm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
