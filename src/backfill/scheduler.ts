/**
 * The daemon's scheduled backfill: shortly after start (the daemon itself may have been the gap)
 * and then every `intervalMs`, one run in a worker thread over the plugs online now. A run asks a
 * plug only when one of its channels has a gap touching a complete day that has no fill yet, so
 * after each gap the first run after the gap's last day ends fills it, and otherwise runs send
 * nothing. Runs never overlap; a failed run is logged and the next one tries again.
 */
import { Worker } from 'node:worker_threads';
import type { EnergyStatsSource } from '../discovery/energy-stats.js';
import type { DeviceRegistry } from '../discovery/registry.js';
import type { Logger } from '../log/logger.js';
import { serve, WorkerClient } from '../storage/sqlite/index.js';
import { type BackfillOptions, type BackfillReport, logBackfill } from './backfill.js';
import type { BackfillHandlers, BackfillWorkerData, BackfillWorkerTarget } from './backfill-worker.js';
import { statsHandlers } from './remote-stats.js';
import { legacyPollTargets, smartPollTargets } from './targets.js';

export interface BackfillSchedulerOptions extends BackfillOptions {
  readonly intervalMs: number;
  /** Wait before the first run after start. */
  readonly firstRunAfterMs?: number;
  readonly request: { readonly transport: 'udp' | 'tcp'; readonly timeoutMs: number };
}

export class BackfillScheduler {
  readonly name = 'backfill';
  readonly #options: BackfillSchedulerOptions;
  readonly #registry: DeviceRegistry;
  readonly #logger: Logger;
  readonly #warned = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<BackfillReport | null> | null = null;
  #worker: WorkerClient<BackfillHandlers> | null = null;
  #stopped = false;

  constructor(options: BackfillSchedulerOptions, registry: DeviceRegistry, logger: Logger) {
    this.#options = options;
    this.#registry = registry;
    this.#logger = logger;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule(this.#options.firstRunAfterMs ?? 60_000);
  }

  /** Stops the schedule; a run in progress is ended at once (what it stored stays, the rest waits). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#worker?.terminate();
    await this.#running;
  }

  /** Whether a run is in progress now. */
  stats(): { readonly running: boolean } {
    return { running: this.#running !== null };
  }

  /** Runs now (or joins the run in progress); null when the run failed. */
  runNow(nowMs: number = Date.now()): Promise<BackfillReport | null> {
    this.#running ??= this.#run(nowMs).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.runNow().finally(() => this.#schedule(this.#options.intervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  async #run(nowMs: number): Promise<BackfillReport | null> {
    const targets: BackfillWorkerTarget[] = legacyPollTargets(this.#registry).map((t) => ({
      deviceId: t.deviceId,
      host: t.connection.endpoint.host,
      port: t.connection.endpoint.port,
      sysinfo: t.connection.sysinfo,
      channels: t.channels,
    }));
    // Newer plugs are asked on this thread, through the fleet's sessions (see remote-stats.ts).
    const smart = smartPollTargets(this.#registry);
    const sources = new Map<string, EnergyStatsSource>(
      smart.map((t) => [t.deviceId, t.connection.statsSource(this.#options.request.timeoutMs)]),
    );
    const remote = smart.map((t) => ({ deviceId: t.deviceId, channels: t.channels }));
    if (targets.length === 0 && remote.length === 0) return null;
    const { intervalMs: _interval, firstRunAfterMs: _first, request, ...options } = this.#options;
    const data: BackfillWorkerData = { options, request, targets, remote, nowMs };
    const worker = new Worker(new URL('./backfill-worker.js', import.meta.url));
    // The worker asks the newer plugs' statistics through this thread (remote-stats.ts).
    serve(worker, statsHandlers(sources));
    const client = new WorkerClient<BackfillHandlers>(worker, { name: 'backfill', deathIsTransient: false });
    this.#worker = client;
    try {
      const report = await client.call('run', data);
      logBackfill(report, this.#logger, this.#options.timeZone, this.#warned);
      return report;
    } catch (error) {
      if (!this.#stopped) this.#logger.warn({ err: error }, 'backfill run failed; the next one tries again');
      return null;
    } finally {
      this.#worker = null;
      await client.terminate();
    }
  }
}
