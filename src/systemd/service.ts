import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { type NotifyTransport, oneLine, SystemdNotifier } from './notify.js';
import { ProgressGate, type ProgressLimits, type ProgressSample, type Verdict } from './progress.js';
import { formatStatus, type StatusView, statusFacts } from './status.js';

/** What the service reads of the daemon's status: STATUS= and the start-up progress gate. */
export type ServiceStatus = StatusView;

import { Watchdog, type WatchdogSettings, watchdogSettings } from './watchdog.js';

/** STATUS= refresh period (a watchdog ping carries the STATUS= of its moment too). */
export const STATUS_REFRESH_MS = 10_000;
/** How long a due poll tick may be late before the scheduler counts as stopped. */
export const SCHEDULER_GRACE_MS = 30_000;
/** The writer may wait this long for a write to finish at least, whatever the retry settings. */
export const WRITER_STALL_MIN_MS = 3 * 60_000;
/** How long shutdown waits for the last notifications (STOPPING=1, the final STATUS). */
export const CLOSE_FLUSH_MS = 3_000;

/** What the service reads from the daemon. */
export interface SupervisedDaemon {
  readonly config: Config;
  status(): ServiceStatus | null;
}

/** How a reload ended. */
export type ReloadOutcome =
  | { readonly applied: readonly string[]; readonly needRestart: readonly string[] }
  | { readonly rejected: readonly string[] };

/** The largest number under `root` whose key matches `name` (durations are numbers of ms). */
function largest(root: unknown, name: RegExp): number {
  let best = 0;
  const visit = (value: unknown, key: string): void => {
    if (typeof value === 'number' && name.test(key)) best = Math.max(best, value);
    else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) visit(v, k);
    }
  };
  visit(root, '');
  return best;
}

/**
 * How long each part may go without progress before a restart would help. A write waits at most a
 * retry delay, a breaker's open time and an attempt timeout between two attempts; twice that, plus
 * SQLite's busy timeout and a flush interval, is still "retrying", not "stuck".
 */
export function progressLimits(config: Config): ProgressLimits {
  const retry = (config as unknown as Record<string, unknown>)['retry'];
  const between = largest(retry, /delay$/) + largest(retry, /after$/) + largest(retry, /timeout$/);
  return {
    schedulerGraceMs: SCHEDULER_GRACE_MS,
    writerStallMs: Math.max(
      WRITER_STALL_MIN_MS,
      2 * (between + config.storage.sqlite.busy_timeout + config.writer.flush_interval),
    ),
  };
}

/** The progress sample for the gate, from the daemon's status. */
export function progressSample(status: ServiceStatus): ProgressSample {
  const w = status.writer;
  return {
    ticks: status.poller.ticks,
    nextTickMs: status.poller.nextTickMs,
    writesSettled: w.written + w.duplicates + w.invalid + w.failedBatches,
    writesPending: status.queue.size + w.inFlight,
  };
}

export interface SystemdServiceOptions {
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Replaces the systemd-notify binary (tests). */
  readonly transport?: NotifyTransport;
  /** Replaces WATCHDOG_USEC/WATCHDOG_PID (tests). */
  readonly watchdog?: WatchdogSettings | null;
  readonly now?: () => number;
}

/**
 * Everything systemd hears from the daemon: READY=1 when it is up, STATUS= kept current, RELOADING=1
 * and READY=1 around a reload, STOPPING=1 when shutdown begins, and WATCHDOG=1 while it makes progress.
 * A no-op without NOTIFY_SOCKET. Never throws.
 */
export class SystemdService {
  readonly notifier: SystemdNotifier;
  readonly #logger: Logger;
  readonly #settings: WatchdogSettings | null;
  readonly #now: () => number;
  #daemon: SupervisedDaemon | null = null;
  #gate: ProgressGate | null = null;
  #watchdog: Watchdog | null = null;
  #statusTimer: NodeJS.Timeout | null = null;
  /** A rejected reload, shown until a reload succeeds. */
  #rejected: string | null = null;
  /** Keys changed by reloads that wait for a restart. */
  readonly #needRestart = new Set<string>();
  #stopping = false;

  constructor(options: SystemdServiceOptions) {
    const env = options.env ?? process.env;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.notifier = new SystemdNotifier({
      logger: options.logger,
      env,
      ...(options.transport === undefined ? {} : { transport: options.transport }),
    });
    this.#settings = options.watchdog === undefined ? watchdogSettings(env) : options.watchdog;
  }

  get enabled(): boolean {
    return this.notifier.enabled;
  }

  /** The watchdog systemd asked for, if any. */
  get watchdogSettings(): WatchdogSettings | null {
    return this.#settings;
  }

  /** Why watchdog pings are withheld right now, or null. */
  get withheld(): string | null {
    return this.#watchdog?.withheld ?? null;
  }

  /**
   * READY=1 with the first STATUS=: call once the configuration is loaded, the database is open and
   * checked, signal handlers are installed and the scheduler is armed. Starts the watchdog pings.
   */
  ready(daemon: SupervisedDaemon): void {
    if (this.#daemon !== null) return;
    this.#daemon = daemon;
    this.notifier.ready(this.statusLine());
    if (!this.enabled) return;
    const settings = this.#settings;
    if (settings !== null) {
      const gate = new ProgressGate(progressLimits(daemon.config));
      this.#gate = gate;
      this.#watchdog = new Watchdog(settings, {
        logger: this.#logger,
        check: () => this.#check(),
        ping: () => this.notifier.watchdog(this.statusLine()),
      });
      this.#watchdog.start();
      this.#logger.info(
        { watchdogMs: settings.periodMs, pingEveryMs: settings.pingEveryMs },
        'systemd watchdog armed',
      );
    }
    this.#statusTimer = setInterval(() => this.refresh(), STATUS_REFRESH_MS);
    this.#statusTimer.unref();
  }

  /** RELOADING=1 + MONOTONIC_USEC=: a SIGHUP reload begins. */
  reloading(): void {
    this.notifier.reloading('reloading the configuration');
  }

  /** READY=1 with a STATUS= that says how the reload ended (also when it was rejected). */
  reloaded(outcome: ReloadOutcome): void {
    if ('rejected' in outcome) {
      const [first, ...rest] = outcome.rejected;
      this.#rejected = `reload rejected, running on the previous configuration: ${first ?? 'invalid configuration'}${
        rest.length > 0 ? ` (+${rest.length} more, see journalctl -p err)` : ''
      }`;
    } else {
      this.#rejected = null;
      for (const key of outcome.needRestart) this.#needRestart.add(key);
      const daemon = this.#daemon;
      if (daemon !== null) {
        // Polling may have been rescheduled and limits may have changed: watch afresh.
        this.#gate?.setLimits(progressLimits(daemon.config));
        this.#gate?.reset();
      }
    }
    this.notifier.ready(this.statusLine());
  }

  /** STOPPING=1: shutdown begins. The watchdog stops (systemd no longer expects pings). */
  stopping(reason: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopTimers();
    this.notifier.stopping(`stopping (${reason}): draining the queue into the database`);
  }

  /** The last STATUS= before exit, e.g. why start-up failed. */
  finalStatus(text: string): void {
    this.notifier.status(text);
  }

  /** Sends the current STATUS= (only when it changed). */
  refresh(): void {
    if (this.#stopping) return;
    this.notifier.status(this.statusLine());
  }

  /** Stops the timers and waits (bounded) for the notifications still queued. Never rejects. */
  async close(timeoutMs: number = CLOSE_FLUSH_MS): Promise<void> {
    this.#stopTimers();
    await this.notifier.flush(timeoutMs);
  }

  /** The STATUS= text now. */
  statusLine(): string {
    const notes: string[] = [];
    if (this.#rejected !== null) notes.push(this.#rejected);
    const withheld = this.#watchdog?.withheld ?? null;
    if (withheld !== null) notes.push(`watchdog ping withheld: ${withheld}`);
    if (this.#needRestart.size > 0) notes.push(`restart needed for ${[...this.#needRestart].join(', ')}`);
    let status: ServiceStatus | null = null;
    try {
      status = this.#daemon?.status() ?? null;
    } catch (error) {
      this.#logger.debug({ err: error }, 'daemon status unavailable for STATUS=');
    }
    if (status === null) return oneLine([...notes, 'starting'].join('; '));
    const now = this.#now();
    return oneLine(formatStatus(statusFacts(status, now), notes, now));
  }

  #check(): Verdict {
    const status = this.#daemon?.status() ?? null;
    if (status === null || this.#gate === null) return { ok: true };
    return this.#gate.check(progressSample(status));
  }

  #stopTimers(): void {
    this.#watchdog?.stop();
    if (this.#statusTimer !== null) clearInterval(this.#statusTimer);
    this.#statusTimer = null;
  }
}
