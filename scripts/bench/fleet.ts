/**
 * Fleet benchmark: discovery, poll cost and missed cycles against simulated plugs that run in a
 * separate child process (scripts/bench/fleet-child.ts), so this process measures only our side.
 *
 * (a) discovery: time until all N plugs have answered one broadcast (target < 1 s, all found);
 * (b) CPU seconds per 1,000 readings: our poller end to end (library request, our validation and
 *     normalisation, offer to a BoundedQueue) versus the bare library (`plug.emeter.getRealtime()`),
 *     same devices, same transport, same concurrency, same run, interleaved (target ratio ≤ 1.3);
 * (c) missed cycles: the poller on its 1 s interval timer over all channels for `durationS`
 *     (target 0 missed ticks, 0 skipped for overlap, every expected reading produced).
 *
 * Run on its own: `node dist/scripts/bench/fleet.js [--quick]`; prints the figures as JSON.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Discovery } from '../../src/discovery/discovery.js';
import { KasaConnection, probe, type Transport } from '../../src/discovery/kasa.js';
import type { Reading } from '../../src/domain/reading.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { Poller } from '../../src/poller/poller.js';
import { BoundedQueue } from '../../src/queue/bounded-queue.js';
import { BareLibrary, type BareLibraryPlug } from './bare-library.js';

export interface FleetBenchOptions {
  /** Plugs and strips in the fleet (default 500). */
  readonly devices?: number;
  /** Every n-th device is an HS300 with 6 outlets (default 5: 100 strips + 400 plugs = 1,000 channels). */
  readonly stripEvery?: number;
  /** UDP/TCP port of the simulated plugs (default 20900). */
  readonly port?: number;
  /** First loopback address (default 127.0.17.1). */
  readonly firstAddress?: string;
  /** Discovery rounds measured (default 5). */
  readonly discoveryRuns?: number;
  /** Transports for the CPU comparison (default udp and tcp). */
  readonly transports?: readonly Transport[];
  /** Poll rounds over all channels per measurement (default 10). */
  readonly cpuRounds?: number;
  /** Alternating measurements of ours vs bare per transport (default 5; medians reported). */
  readonly cpuRepeats?: number;
  /** Requests (devices) in flight at once, for both sides (default 64). */
  readonly concurrency?: number;
  /** Length of the 1 Hz run (default 30 s). */
  readonly durationS?: number;
  /** Transport for the 1 Hz run (default udp). */
  readonly cycleTransport?: Transport;
}

export interface FleetBenchResult {
  readonly fleet: {
    readonly devices: number;
    readonly channels: number;
    readonly childPid: number | undefined;
  };
  readonly discovery: {
    readonly expected: number;
    /** Devices found in each round. */
    readonly found: readonly number[];
    /** Time from the broadcast to the last reply, per round. */
    readonly msToAll: readonly number[];
    readonly medianMsToAll: number;
    readonly receiveBufferBytes: number;
    /** The same with the kernel's default buffer (what the library's own discovery socket gets). */
    readonly defaultBuffer: { readonly found: number; readonly receiveBufferBytes: number };
    readonly targetMet: boolean;
  };
  readonly cpu: readonly {
    readonly transport: Transport;
    readonly readingsPerMeasurement: number;
    /** CPU seconds (user + system of this process) per 1,000 readings, each repeat. */
    readonly ours: readonly number[];
    readonly bare: readonly number[];
    readonly oursMedian: number;
    readonly bareMedian: number;
    readonly ratio: number;
    readonly oursFailures: number;
    readonly bareFailures: number;
    readonly targetMet: boolean;
  }[];
  readonly cycles: {
    readonly transport: Transport;
    readonly durationS: number;
    readonly channels: number;
    readonly ticks: number;
    readonly missedTicks: number;
    readonly lateTicks: number;
    readonly maxTickLateMs: number;
    readonly skippedOverlap: number;
    readonly readings: number;
    readonly expectedReadings: number;
    readonly rejected: Readonly<Record<string, number>>;
    readonly pollP50Ms: number | null;
    readonly pollP99Ms: number | null;
    readonly eventLoopDelayP99Ms: number;
    readonly cpuSecondsPerSecond: number;
    readonly targetMet: boolean;
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

export function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export interface ChildFleet {
  readonly child: ChildProcess;
  readonly devices: number;
  readonly channels: number;
  /** Where each simulated device listens, and its outlets' child ids (the bare loop polls them). */
  readonly targets: readonly { host: string; port: number; childIds: readonly string[] }[];
  stop(): Promise<void>;
}

export function startChildFleet(options: {
  port: number;
  count: number;
  stripEvery: number;
  firstAddress: string;
}): Promise<ChildFleet> {
  const script = fileURLToPath(new URL('./fleet-child.js', import.meta.url));
  const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`fleet child exited early (${code})`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.on(
      'message',
      (message: {
        type: string;
        devices?: number;
        channels?: number;
        targets?: ChildFleet['targets'];
        message?: string;
      }) => {
        if (message.type === 'ready') {
          child.off('exit', onExit);
          resolve({
            child,
            devices: message.devices ?? 0,
            channels: message.channels ?? 0,
            targets: message.targets ?? [],
            stop: () =>
              new Promise<void>((done) => {
                if (child.exitCode !== null) return done();
                child.once('exit', () => done());
                child.send({ type: 'stop' });
                setTimeout(() => child.kill(), 10_000).unref();
              }),
          });
        } else if (message.type === 'error') {
          child.kill();
          reject(new Error(`fleet child: ${message.message}`));
        }
      },
    );
    child.send({ type: 'start', ...options });
  });
}

/** Runs `work` over `items` with at most `limit` at once. */
export async function pool<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await work(item);
    }
  });
  await Promise.all(runners);
}

export async function benchFleet(options: FleetBenchOptions = {}): Promise<FleetBenchResult> {
  const count = options.devices ?? 500;
  const stripEvery = options.stripEvery ?? 5;
  const port = options.port ?? 20900;
  const firstAddress = options.firstAddress ?? '127.0.17.1';
  const concurrency = options.concurrency ?? 64;
  const transports = options.transports ?? ['udp', 'tcp'];
  const cpuRounds = options.cpuRounds ?? 10;
  const cpuRepeats = options.cpuRepeats ?? 5;
  const durationS = options.durationS ?? 30;
  const cycleTransport = options.cycleTransport ?? 'udp';
  const logger = createSilentLogger();

  const fleet = await startChildFleet({ port, count, stripEvery, firstAddress });
  try {
    // (a) discovery of the whole fleet, one broadcast per round.
    const broadcast = ['127.255.255.255'];
    const big = 4 * 1024 * 1024;
    const found: number[] = [];
    const msToAll: number[] = [];
    let granted = 0;
    for (let i = 0; i < (options.discoveryRuns ?? 5); i++) {
      const r = await probe({ broadcast, hosts: [], port, timeoutMs: 1_500, receiveBufferBytes: big });
      found.push(r.replies.length);
      msToAll.push(round(Math.max(0, ...r.replies.map((x) => x.elapsedMs)), 1));
      granted = r.receiveBufferBytes;
    }
    const small = await probe({ broadcast, hosts: [], port, timeoutMs: 1_500, receiveBufferBytes: 212_992 });

    // The registry the poller uses, from one discovery round.
    const discovery = new Discovery(
      {
        broadcast,
        port,
        intervalMs: 3_600_000,
        timeoutMs: 1_500,
        hosts: [],
        offlineTolerance: 1_000_000,
        receiveBufferBytes: big,
      },
      logger,
    );
    await discovery.runRound();
    const registry = discovery.registry;
    const channels = registry.counts().channels;

    // (b) CPU per 1,000 readings, ours vs bare library, interleaved.
    const bareLibrary = new BareLibrary(logger);
    const sysinfos = registry.snapshot();
    const barePlugs: BareLibraryPlug[] = [];
    for (const device of sysinfos) {
      if (!device.polled) continue;
      const target = registry.pollTargets().find((t) => t.deviceId === device.id);
      if (target === undefined) continue;
      const { connection } = target;
      if (!(connection instanceof KasaConnection)) continue; // the bare library speaks legacy only
      for (const ch of target.channels) {
        barePlugs.push(bareLibrary.plug(connection.sysinfo, connection.endpoint, ch.childId));
      }
    }

    const cpu: FleetBenchResult['cpu'][number][] = [];
    for (const transport of transports) {
      const queue = new BoundedQueue<Reading>({ capacity: 1_000_000, overflow: 'drop-oldest' }, logger);
      const poller = new Poller(
        registry,
        queue,
        { intervalMs: 3_600_000, timeoutMs: 2_000, concurrency, transport },
        logger,
      );
      const ours: number[] = [];
      const bare: number[] = [];
      let oursFailures = 0;
      let bareFailures = 0;
      const measureOurs = async (rounds: number): Promise<number> => {
        const before = poller.stats();
        const start = process.cpuUsage();
        for (let i = 0; i < rounds; i++) await poller.tick();
        const spent = cpuSeconds(start);
        const after = poller.stats();
        const readings = after.pollsOk - before.pollsOk;
        oursFailures += after.requests - before.requests - readings;
        queue.take(queue.size);
        return (spent / readings) * 1000;
      };
      const measureBare = async (rounds: number): Promise<number> => {
        let readings = 0;
        const start = process.cpuUsage();
        for (let i = 0; i < rounds; i++) {
          await pool(barePlugs, concurrency, async (plug) => {
            try {
              await plug.getRealtime({ transport, timeoutMs: 2_000 });
              readings++;
            } catch {
              bareFailures++;
            }
          });
        }
        return (cpuSeconds(start) / readings) * 1000;
      };
      // Warm-up (JIT, sockets), not counted.
      await measureOurs(1);
      await measureBare(1);
      oursFailures = 0;
      bareFailures = 0;
      for (let i = 0; i < cpuRepeats; i++) {
        ours.push(round(await measureOurs(cpuRounds)));
        bare.push(round(await measureBare(cpuRounds)));
      }
      await poller.stop();
      registry.close();
      for (const plug of barePlugs) plug.close();
      const oursMedian = median(ours);
      const bareMedian = median(bare);
      const ratio = round(oursMedian / bareMedian, 3);
      cpu.push({
        transport,
        readingsPerMeasurement: channels * cpuRounds,
        ours,
        bare,
        oursMedian,
        bareMedian,
        ratio,
        oursFailures,
        bareFailures,
        targetMet: ratio <= 1.3,
      });
    }

    // (c) 1 Hz over every channel for durationS: missed cycles.
    const queue = new BoundedQueue<Reading>({ capacity: 100_000, overflow: 'drop-oldest' }, logger);
    const drain = setInterval(() => queue.take(queue.size), 200);
    const poller = new Poller(
      registry,
      queue,
      { intervalMs: 1_000, timeoutMs: 900, concurrency, transport: cycleTransport },
      logger,
    );
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const cpuStart = process.cpuUsage();
    const t0 = performance.now();
    poller.start();
    await new Promise((resolve) => setTimeout(resolve, durationS * 1000));
    await poller.stop();
    const elapsedS = (performance.now() - t0) / 1000;
    const cpuPerS = cpuSeconds(cpuStart) / elapsedS;
    loopDelay.disable();
    clearInterval(drain);
    const stats = poller.stats();
    const expectedReadings = stats.ticks * channels;
    await discovery.stop();

    const medianMsToAll = median(msToAll);
    return {
      fleet: { devices: fleet.devices, channels, childPid: fleet.child.pid },
      discovery: {
        expected: count,
        found,
        msToAll,
        medianMsToAll,
        receiveBufferBytes: granted,
        defaultBuffer: { found: small.replies.length, receiveBufferBytes: small.receiveBufferBytes },
        targetMet: found.every((n) => n === count) && medianMsToAll < 1000,
      },
      cpu,
      cycles: {
        transport: cycleTransport,
        durationS,
        channels,
        ticks: stats.ticks,
        missedTicks: stats.missedTicks,
        lateTicks: stats.lateTicks,
        maxTickLateMs: stats.maxTickLateMs,
        skippedOverlap: stats.skippedOverlap,
        readings: stats.pollsOk,
        expectedReadings,
        rejected: stats.rejected,
        pollP50Ms: stats.pollDuration.p50Ms === null ? null : round(stats.pollDuration.p50Ms, 2),
        pollP99Ms: stats.pollDuration.p99Ms === null ? null : round(stats.pollDuration.p99Ms, 2),
        eventLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6, 2),
        cpuSecondsPerSecond: round(cpuPerS, 3),
        targetMet:
          stats.missedTicks === 0 && stats.skippedOverlap === 0 && stats.pollsOk === expectedReadings,
      },
    };
  } finally {
    await fleet.stop();
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const quick = process.argv.includes('--quick');
  benchFleet(quick ? { durationS: 5, cpuRepeats: 1, discoveryRuns: 2 } : {}).then(
    (result) => {
      console.log(JSON.stringify(result, null, 2));
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
