/**
 * The energy end-to-end tests' shared path: the daemon's own recording path driven through simulated
 * time, the scheduled backfill run, the config the `energy` command reads, and the command itself
 * run as a separate process.
 *
 * Simulated time: only `Date` is mocked (node:test mock timers) and stepped before each
 * `poller.tick()`; real timers stay real, so sockets, the writer and KLAP sessions work as usual.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mock } from 'node:test';
import type { BackfillReport } from '../../src/backfill/backfill.js';
import { BackfillScheduler } from '../../src/backfill/scheduler.js';
import { Discovery, type DiscoveryOptions } from '../../src/discovery/discovery.js';
import type { DeviceRegistry } from '../../src/discovery/registry.js';
import type { Reading } from '../../src/domain/reading.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { Poller, type PollerStats } from '../../src/poller/poller.js';
import { BoundedQueue } from '../../src/queue/bounded-queue.js';
import { SqliteStore } from '../../src/storage/sqlite/index.js';
import { Writer } from '../../src/storage/writer.js';
import { captureLogger, type LogLine } from './capture-logger.js';
import { type CliResult, runCliProcess } from './cli.js';
import { testStoreOptions } from './sqlite.js';

const HOUR = 3_600_000;

/**
 * A discovery on the simulators' loopback broadcast that only runs when asked (`runRound()`): its
 * interval is an hour and no device is ever dropped, so simulated time cannot take plugs away.
 */
export function manualDiscovery(
  options: Pick<DiscoveryOptions, 'port' | 'timeoutMs'> & Partial<DiscoveryOptions>,
): Discovery {
  return new Discovery(
    {
      broadcast: ['127.255.255.255'],
      intervalMs: HOUR,
      hosts: [],
      offlineTolerance: 1_000_000,
      receiveBufferBytes: 1 << 20,
      ...options,
    },
    createSilentLogger(),
  );
}

export interface SimulatedRecording {
  /** A fresh discovery: its round is run first, and it is stopped at the end. */
  readonly discovery: Discovery;
  readonly dbPath: string;
  /** The time zone of the store's rollups. */
  readonly timeZone: string;
  /** Polls at every `stepMs` of simulated time in [from, to]. */
  readonly from: number;
  readonly to: number;
  readonly stepMs: number;
  readonly pollTimeoutMs: number;
  /** Sets the plugs' meters for simulated time `t`, just before the poll at `t`. */
  readonly setMeters: (t: number) => void;
  /** Called once discovery's round has run, before any poll. */
  readonly discovered?: (registry: DeviceRegistry) => void;
  /** Readings the network loses: they never reach the queue. */
  readonly lost?: (reading: Reading) => boolean;
  readonly queueCapacity?: number;
}

/**
 * Records through the daemon's own path (discovery, poller over UDP, bounded queue, writer,
 * SqliteStore with rollups) over simulated time; everything is stopped before it returns the
 * poller's stats.
 */
export async function recordSimulatedTime(recording: SimulatedRecording): Promise<PollerStats> {
  const { discovery, from, to, stepMs } = recording;
  const log = createSilentLogger();
  await discovery.runRound();
  recording.discovered?.(discovery.registry);
  const store = new SqliteStore(testStoreOptions(recording.dbPath, { timeZone: recording.timeZone }), log);
  await store.start();
  const queue = new BoundedQueue<Reading>(
    { capacity: recording.queueCapacity ?? 100_000, overflow: 'drop-newest' },
    log,
  );
  const writer = new Writer(queue, store, { batchSize: 1000, flushIntervalMs: 200 }, log);
  writer.start();
  const lost = recording.lost;
  const sink = lost === undefined ? queue : { offer: (r: Reading) => (lost(r) ? false : queue.offer(r)) };
  const poller = new Poller(
    discovery.registry,
    sink,
    { intervalMs: stepMs, timeoutMs: recording.pollTimeoutMs, concurrency: 8, transport: 'udp' },
    log,
  );
  mock.timers.enable({ apis: ['Date'], now: from });
  try {
    for (let t = from; t <= to; t += stepMs) {
      mock.timers.setTime(t);
      recording.setMeters(t);
      await poller.tick();
    }
  } finally {
    mock.timers.reset();
  }
  const stats = poller.stats();
  await poller.stop();
  await writer.stop();
  await store.stop();
  await discovery.stop();
  return stats;
}

/**
 * The daemon's scheduled backfill run, once, over the plugs `discovery` (fresh; stopped at the end)
 * finds; with the lines it logged at info and above.
 */
export async function runScheduledBackfill(
  discovery: Discovery,
  options: { readonly dbPath: string; readonly timeZone: string; readonly requestTimeoutMs: number },
): Promise<{ done: BackfillReport | null; lines: () => LogLine[] }> {
  const captured = captureLogger('info');
  try {
    await discovery.runRound();
    const scheduler = new BackfillScheduler(
      {
        dbPath: options.dbPath,
        timeZone: options.timeZone,
        gapLimitMs: 5 * 60_000,
        intervalMs: HOUR,
        request: { transport: 'udp', timeoutMs: options.requestTimeoutMs },
      },
      discovery.registry,
      captured.logger,
    );
    const done = await scheduler.runNow();
    await scheduler.stop();
    return { done, lines: captured.lines };
  } finally {
    await discovery.stop();
  }
}

/**
 * Writes the config the `energy` command reads: the time zone, the database with a 5-minute gap
 * limit, then `sections` (YAML lines: discovery, credentials, a tariff...). Returns `file`.
 */
export function writeEnergyConfig(
  file: string,
  config: { readonly timeZone: string; readonly dbPath: string; readonly sections?: readonly string[] },
): string {
  writeFileSync(
    file,
    [
      `time_zone: ${config.timeZone}`,
      'storage:',
      `  sqlite:\n    path: ${config.dbPath}`,
      '  rollups:\n    gap_limit: 5m',
      ...(config.sections ?? []),
      '',
    ].join('\n'),
  );
  return file;
}

/** `kasa-monitor energy -c config ...args` as a separate process; fails the test unless it exits 0. */
export async function runEnergy(config: string, args: readonly string[]): Promise<CliResult> {
  const result = await runCliProcess(['energy', '-c', config, ...args]);
  assert.equal(result.code, 0, result.stderr);
  return result;
}

/** A row of `energy --format json` (the fields the backfill tests read). */
export interface EnergyDayRow {
  period: string;
  device_id: string;
  energy_kwh: number;
  measured_kwh: number;
  device_kwh: number;
  estimated_kwh: number;
  source: string;
}

/** The rows of `energy --format json` for `period`s from `from` to `to` (days, YYYY-MM-DD). */
export async function energyRows<Row = EnergyDayRow>(
  config: string,
  range: { readonly period?: 'day' | 'month'; readonly from: string; readonly to: string },
): Promise<Row[]> {
  const period = range.period === undefined ? [] : ['--period', range.period];
  const result = await runEnergy(config, [
    '--format',
    'json',
    ...period,
    '--from',
    range.from,
    '--to',
    range.to,
  ]);
  return JSON.parse(result.stdout) as Row[];
}
