/**
 * Writer throughput: the daemon's own path (BoundedQueue → Writer → SqliteStore's worker) against
 * plain better-sqlite3 batched inserts (prepared statement, transactions of 1000) into the same
 * schema with the same pragmas, in the same run; plus bytes per stored reading on disk.
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
import { runRawInsertBaseline } from './sqlite-baselines.js';

export interface WriterBenchOptions {
  /** Readings to write on each path (default 1,000,000). */
  readonly rows?: number;
  /** Meter channels the readings are spread over, polled round-robin (default 1000). */
  readonly channels?: number;
}

export interface WriterBenchResult {
  readonly daemonRowsPerSec: number;
  readonly rawRowsPerSec: number;
  /** daemon / raw; the target is ≥ 0.5. */
  readonly ratio: number;
  /** Database file size (WAL included, after checkpoint) / stored readings; the target is ≤ 32. */
  readonly bytesPerReading: number;
}

const BATCH = 1000;
const POLL_INTERVAL_MS = 10_000;
const START_MS = Date.UTC(2026, 10, 26);

function pragmas(path: string): SqliteOptions {
  return {
    path,
    journalMode: 'WAL',
    synchronous: 'FULL',
    cacheSize: -8000,
    tempStore: 'MEMORY',
    busyTimeoutMs: 5000,
  };
}

/** `count` single plugs with deviceId-shaped ids (shared by the writer and lifecycle benchmarks). */
export function channelsOf(count: number): ChannelInfo[] {
  return Array.from({ length: count }, (_, c) => ({
    id: `8006${c.toString(16).toUpperCase().padStart(36, '0')}`,
    alias: `plug ${c}`,
    model: 'HS110(EU)',
    parentId: null,
    parentAlias: null,
  }));
}

/** Readings as a poller makes them: every channel once per round, rounds POLL_INTERVAL_MS apart. */
function* readingsOf(rows: number, channels: readonly ChannelInfo[]): Generator<Reading> {
  const totals = channels.map((_, c) => (c * 37) % 5000);
  for (let i = 0; i < rows; i++) {
    const round = Math.floor(i / channels.length);
    const c = i % channels.length;
    const base = 5000 + ((c * 7919) % 200_000);
    const powerMw = base + ((round * 131 + c * 17) % Math.max(1, Math.floor(base / 20)));
    const voltageMv = 228_000 + ((round * 97 + c * 13) % 4000);
    const total = (totals[c] ?? 0) + (powerMw * POLL_INTERVAL_MS) / 3.6e9;
    totals[c] = total;
    yield {
      channel: (channels[c] as ChannelInfo).id,
      tsMs: START_MS + round * POLL_INTERVAL_MS + (c % 1000),
      powerMw,
      voltageMv,
      currentMa: Math.round((powerMw * 1000) / voltageMv),
      totalWh: Math.floor(total),
    };
  }
}

function fileBytes(path: string): number {
  let bytes = 0;
  for (const suffix of ['', '-wal']) {
    try {
      bytes += statSync(path + suffix).size;
    } catch {
      // no WAL after a clean close
    }
  }
  return bytes;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Offers every reading as the poller does, but waits while the queue has no room instead of letting
 * it overflow: a throughput benchmark must store every reading it times.
 */
export async function feedWithoutOverflow(
  queue: BoundedQueue<Reading>,
  source: Iterator<Reading>,
): Promise<void> {
  let next = source.next();
  while (next.done !== true) {
    while (next.done !== true && queue.size < queue.capacity) {
      queue.offer(next.value);
      next = source.next();
    }
    if (next.done !== true) await sleep(1);
  }
}

async function daemonPath(path: string, rows: number, channels: readonly ChannelInfo[]) {
  const logger = createSilentLogger();
  const store = new SqliteStore(pragmas(path), logger);
  await store.start();
  await store.upsertChannels(channels);
  const queue = new BoundedQueue<Reading>({ capacity: 10 * BATCH, overflow: 'drop-newest' }, logger);
  const writer = new Writer(queue, store, { batchSize: BATCH, flushIntervalMs: 50 }, logger);
  writer.start();
  const started = performance.now();
  await feedWithoutOverflow(queue, readingsOf(rows, channels));
  const stats = await writer.stop(Number.MAX_SAFE_INTEGER);
  const elapsedMs = performance.now() - started;
  await store.stop();
  const q = queue.stats();
  if (stats.written !== rows || q.dropped !== 0 || stats.droppedAtShutdown !== 0) {
    throw new Error(`daemon path lost readings: ${JSON.stringify({ rows, stats, queue: q })}`);
  }
  return { rowsPerSec: (rows * 1000) / elapsedMs, bytes: fileBytes(path) };
}

export async function benchWriter(opts: WriterBenchOptions = {}): Promise<WriterBenchResult> {
  const rows = opts.rows ?? 1_000_000;
  const channels = channelsOf(opts.channels ?? 1000);
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-writer-'));
  try {
    const daemon = await daemonPath(join(dir, 'daemon.db'), rows, channels);
    const raw = runRawInsertBaseline(
      pragmas(join(dir, 'raw.db')),
      channels,
      readingsOf(rows, channels),
      BATCH,
    );
    if (raw.inserted !== rows) throw new Error(`raw path stored ${raw.inserted} of ${rows}`);
    const rawRowsPerSec = (rows * 1000) / raw.elapsedMs;
    return {
      daemonRowsPerSec: Math.round(daemon.rowsPerSec),
      rawRowsPerSec: Math.round(rawRowsPerSec),
      ratio: Math.round((daemon.rowsPerSec / rawRowsPerSec) * 100) / 100,
      bytesPerReading: Math.round((daemon.bytes / rows) * 10) / 10,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
