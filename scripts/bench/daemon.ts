/**
 * End-to-end fleet benchmark: the whole Daemon (discovery, poller, bounded queue, writer worker,
 * SQLite commit) in this process, the simulated plugs in a child process (fleet-child.ts), so that
 * process.cpuUsage() (all threads of this process, the writer worker included) counts only our side.
 *
 * - discovery: Discovery.runRound() over the fleet, time to the last reply (target < 1 s, all found);
 * - CPU seconds per 1,000 readings at 1 Hz over every channel: the Daemon end to end versus the bare
 *   library (`plug.emeter.getRealtime()`, same transport, same devices, same concurrency, also paced
 *   at 1 Hz), alternating windows in the same run (target ratio ≤ 1.3);
 * - missed cycles of the Daemon's poller at 1 Hz (target 0) and the writer's p99 poll-to-commit
 *   latency (target < 2 s);
 * - optionally, RSS of the daemon as a separate process against the same fleet (rss.ts).
 *
 * Run on its own: `node dist/scripts/bench/daemon.js [--quick]`; prints the figures as JSON.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { type Config, loadConfig } from '../../src/config/index.js';
import { Discovery } from '../../src/discovery/discovery.js';
import { KasaConnection, type Transport } from '../../src/discovery/kasa.js';
import { createRootLogger, createSilentLogger, type Logger } from '../../src/log/logger.js';
import { Daemon, type DaemonStatus } from '../../src/main.js';
import { BareLibrary, type BareLibraryPlug } from './bare-library.js';
import { cpuSeconds, median, pool, round, startChildFleet } from './fleet.js';
import { type DaemonRssResult, measureDaemonRss, UNIT_ENV } from './rss.js';

export interface DaemonBenchOptions {
  /** Plugs and strips (default 500). */
  readonly devices?: number;
  /** Every n-th device is an HS300 with 6 outlets (default 5: 400 plugs + 100 strips = 1,000 channels). */
  readonly stripEvery?: number;
  /** Simulator port (default 23100). */
  readonly port?: number;
  /** First loopback address (default 127.0.50.1). */
  readonly firstAddress?: string;
  /** Discovery rounds measured (default 5; 0 skips discovery). */
  readonly discoveryRuns?: number;
  /** Alternating Daemon / bare-library windows (default 3; 0 skips the end-to-end part). */
  readonly repeats?: number;
  /** Length of one measured window (default 30 s). */
  readonly windowS?: number;
  /** Daemon running with every plug found, before its window starts (default 5 s). */
  readonly warmupS?: number;
  /** Length of the separate-process RSS run against this fleet (default 0: skipped). */
  readonly rssS?: number;
}

export interface DaemonBenchResult {
  readonly fleet: { readonly devices: number; readonly channels: number };
  readonly discovery: {
    readonly expected: number;
    readonly found: readonly number[];
    readonly msToAll: readonly number[];
    readonly medianMsToAll: number;
    readonly receiveBufferBytes: number;
    readonly targetMet: boolean;
  } | null;
  readonly e2e: {
    readonly transport: Transport;
    readonly concurrency: number;
    readonly windowS: number;
    /** CPU seconds (process.cpuUsage: every thread) per 1,000 readings, each window. */
    readonly daemon: readonly number[];
    readonly bare: readonly number[];
    readonly daemonMedian: number;
    readonly bareMedian: number;
    /** daemonMedian / bareMedian; target ≤ 1.3. */
    readonly ratio: number;
    readonly daemonReadings: number;
    readonly daemonCommitted: number;
    readonly bareReadings: number;
    readonly bareFailures: number;
    readonly cycles: {
      /** Ticks over every Daemon run, startup included. */
      readonly ticks: number;
      readonly missedTicks: number;
      readonly lateTicks: number;
      readonly maxTickLateMs: number;
      /** In the measured windows: device polls skipped because the previous one still ran. */
      readonly skippedOverlap: number;
      readonly readings: number;
      readonly expectedReadings: number;
      readonly pollFailures: number;
      readonly droppedFromQueue: number;
    };
    readonly commitLatency: {
      /** Largest p50 / p99 of the writer's recent window, sampled every 2 s over all windows. */
      readonly p50Ms: number | null;
      readonly p99Ms: number | null;
      readonly maxMs: number;
    };
  } | null;
  /** null: not run; a string: why it failed. */
  readonly rss: DaemonRssResult | string | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The daemon's configuration, as a user would write it: defaults plus loopback broadcast and 1 Hz. */
function benchConfig(port: number, databasePath: string): Config {
  return loadConfig({
    env: {},
    defaultFile: '/nonexistent/kasa-monitor.yaml',
    overrides: {
      'discovery.broadcast': ['127.255.255.255'],
      'discovery.port': port,
      'polling.interval': '1s',
      'polling.timeout': '900ms',
      'storage.sqlite.path': databasePath,
      'http.listen': '127.0.0.1:0',
      'log.level': 'warn',
    },
  }).config;
}

/**
 * Sleeps until `phaseMs` past a whole second (UTC). Poll ticks fall on whole seconds and a round over
 * every channel takes well under `phaseMs`, so counters read then are not in the middle of a round.
 */
function sleepToPhase(phaseMs: number): Promise<void> {
  return sleep((1000 + phaseMs - (Date.now() % 1000)) % 1000);
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

export async function benchDaemon(options: DaemonBenchOptions = {}): Promise<DaemonBenchResult> {
  const count = options.devices ?? 500;
  const stripEvery = options.stripEvery ?? 5;
  const port = options.port ?? 23100;
  const firstAddress = options.firstAddress ?? '127.0.50.1';
  const repeats = options.repeats ?? 3;
  const windowS = options.windowS ?? 30;
  const warmupS = options.warmupS ?? 5;
  const discoveryRuns = options.discoveryRuns ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-daemon-'));
  const config = benchConfig(port, join(dir, 'kasa-monitor.db'));
  // Warnings and errors only, to stderr (stdout carries the table or the JSON).
  const logger: Logger = createRootLogger({ level: 'warn', format: 'json', destination: process.stderr });
  const quiet = createSilentLogger();

  const fleet = await startChildFleet({ port, count, stripEvery, firstAddress });
  try {
    // The bench's own Discovery, with the daemon's options: the discovery figure, and the devices
    // the bare library polls.
    const d = config.discovery;
    const discovery = new Discovery(
      {
        broadcast: d.broadcast,
        port,
        intervalMs: 3_600_000,
        timeoutMs: 1_500,
        hosts: [],
        offlineTolerance: 1_000_000,
        receiveBufferBytes: d.receive_buffer,
      },
      quiet,
    );
    const found: number[] = [];
    const msToAll: number[] = [];
    let granted = 0;
    for (let i = 0; i < Math.max(1, discoveryRuns); i++) {
      const r = await discovery.runRound();
      found.push(r?.replies.length ?? 0);
      msToAll.push(round(Math.max(0, ...(r?.replies ?? []).map((x) => x.elapsedMs)), 1));
      granted = r?.receiveBufferBytes ?? 0;
    }
    const channels = discovery.registry.counts().channels;
    const medianMsToAll = median(msToAll);
    const discoveryResult =
      discoveryRuns === 0
        ? null
        : {
            expected: count,
            found,
            msToAll,
            medianMsToAll,
            receiveBufferBytes: granted,
            targetMet: found.every((n) => n === count) && medianMsToAll < 1000,
          };

    let e2e: DaemonBenchResult['e2e'] = null;
    if (repeats > 0) {
      const transport = config.polling.transport;
      const concurrency = config.polling.concurrency;
      const timeoutMs = config.polling.timeout;
      const bareLibrary = new BareLibrary(quiet);
      const barePlugs: BareLibraryPlug[] = [];
      for (const target of discovery.registry.pollTargets()) {
        const { connection } = target;
        if (!(connection instanceof KasaConnection)) continue; // the bare library speaks legacy only
        for (const ch of target.channels) {
          barePlugs.push(bareLibrary.plug(connection.sysinfo, connection.endpoint, ch.childId));
        }
      }
      let bareReadings = 0;
      let bareFailures = 0;
      const bareRound = () =>
        pool(barePlugs, concurrency, async (plug) => {
          try {
            await plug.getRealtime({ transport, timeoutMs });
            bareReadings++;
          } catch {
            bareFailures++;
          }
        });
      /** The bare library at 1 Hz for `seconds`: CPU seconds per 1,000 readings. */
      const measureBare = async (seconds: number): Promise<number> => {
        const before = bareReadings;
        const start = process.cpuUsage();
        const t0 = performance.now();
        for (let i = 0; i < seconds; i++) {
          await sleep(Math.max(0, t0 + i * 1000 - performance.now()));
          await bareRound();
        }
        await sleep(Math.max(0, t0 + seconds * 1000 - performance.now()));
        return (cpuSeconds(start) / (bareReadings - before)) * 1000;
      };

      const daemonCpu: number[] = [];
      const bareCpu: number[] = [];
      let daemonReadings = 0;
      let daemonCommitted = 0;
      let ticks = 0;
      let missedTicks = 0;
      let lateTicks = 0;
      let maxTickLateMs = 0;
      let skippedOverlap = 0;
      let expectedReadings = 0;
      let pollFailures = 0;
      let droppedFromQueue = 0;
      let p50 = 0;
      let p99 = 0;
      let maxLatency = 0;
      let latencySamples = 0;

      // Warm-up of the bare path (JIT, shared socket), not counted.
      await bareRound();
      bareReadings = 0;
      bareFailures = 0;

      for (let r = 0; r < repeats; r++) {
        const daemon = new Daemon(config, logger);
        await daemon.start();
        let final: DaemonStatus | null = null;
        try {
          const status = () => daemon.status() as DaemonStatus;
          await waitFor(
            () => status().devices.onlineChannels >= channels,
            20_000,
            'the daemon to find every plug',
          );
          await sleep(warmupS * 1000);
          await sleepToPhase(600);
          const s0 = status();
          const cpu0 = process.cpuUsage();
          const sample = () => {
            const latency = status().writer.commitLatency;
            if (latency.p50Ms !== null) p50 = Math.max(p50, latency.p50Ms);
            if (latency.p99Ms !== null) p99 = Math.max(p99, latency.p99Ms);
            latencySamples++;
          };
          const sampler = setInterval(sample, 2_000);
          await sleep(windowS * 1000 - 100);
          await sleepToPhase(600);
          const spent = cpuSeconds(cpu0);
          clearInterval(sampler);
          sample();
          const s1 = status();
          const readings = s1.poller.pollsOk - s0.poller.pollsOk;
          daemonCpu.push(round((spent / readings) * 1000));
          daemonReadings += readings;
          daemonCommitted += s1.writer.written - s0.writer.written;
          skippedOverlap += s1.poller.skippedOverlap - s0.poller.skippedOverlap;
          expectedReadings += (s1.poller.ticks - s0.poller.ticks) * channels;
          pollFailures += sum(Object.values(s1.poller.rejected)) - sum(Object.values(s0.poller.rejected));
        } finally {
          final = await daemon.stop();
        }
        if (final !== null) {
          ticks += final.poller.ticks;
          missedTicks += final.poller.missedTicks;
          lateTicks += final.poller.lateTicks;
          maxTickLateMs = Math.max(maxTickLateMs, final.poller.maxTickLateMs);
          droppedFromQueue += final.queue.dropped + final.writer.droppedAtShutdown;
          maxLatency = Math.max(maxLatency, final.writer.commitLatency.maxMs);
        }
        bareCpu.push(round(await measureBare(windowS)));
      }
      for (const plug of barePlugs) plug.close();
      const daemonMedian = median(daemonCpu);
      const bareMedian = median(bareCpu);
      e2e = {
        transport,
        concurrency,
        windowS,
        daemon: daemonCpu,
        bare: bareCpu,
        daemonMedian,
        bareMedian,
        ratio: round(daemonMedian / bareMedian, 3),
        daemonReadings,
        daemonCommitted,
        bareReadings,
        bareFailures,
        cycles: {
          ticks,
          missedTicks,
          lateTicks,
          maxTickLateMs,
          skippedOverlap,
          readings: daemonReadings,
          expectedReadings,
          pollFailures,
          droppedFromQueue,
        },
        commitLatency: {
          p50Ms: latencySamples === 0 ? null : round(p50, 1),
          p99Ms: latencySamples === 0 ? null : round(p99, 1),
          maxMs: round(maxLatency, 1),
        },
      };
    }
    await discovery.stop();

    let rss: DaemonBenchResult['rss'] = null;
    if ((options.rssS ?? 0) > 0) {
      try {
        rss = await measureDaemonRss({ port, durationS: options.rssS ?? 0, env: UNIT_ENV });
      } catch (error) {
        rss = error instanceof Error ? error.message : String(error);
      }
    }
    return { fleet: { devices: fleet.devices, channels }, discovery: discoveryResult, e2e, rss };
  } finally {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const quick = process.argv.includes('--quick');
  benchDaemon(quick ? { repeats: 1, windowS: 10, warmupS: 2, discoveryRuns: 2 } : {}).then(
    (result) => console.log(JSON.stringify(result, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
