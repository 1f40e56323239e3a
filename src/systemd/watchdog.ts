import type { Logger } from '../log/logger.js';
import { notifySocketSet } from './notify.js';
import { OK, type Verdict } from './progress.js';

export interface WatchdogSettings {
  /** WatchdogSec= of the unit, in ms. */
  readonly periodMs: number;
  /** How often a ping goes out: half the period, as sd_watchdog_enabled(3) recommends. */
  readonly pingEveryMs: number;
}

/**
 * The watchdog systemd asks for: WATCHDOG_USEC (µs), for this process (WATCHDOG_PID, when set, must be
 * our PID), and only when notifications can be sent at all. null: no watchdog.
 */
export function watchdogSettings(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
): WatchdogSettings | null {
  if (!notifySocketSet(env)) return null;
  const usec = env['WATCHDOG_USEC'];
  if (usec === undefined || !/^\d+$/.test(usec)) return null;
  const watchdogPid = env['WATCHDOG_PID'];
  if (watchdogPid !== undefined && watchdogPid !== '' && watchdogPid !== String(pid)) return null;
  const periodMs = Number(usec) / 1000;
  if (!(periodMs >= 1)) return null;
  return { periodMs, pingEveryMs: Math.max(1, Math.floor(periodMs / 2)) };
}

export interface WatchdogDeps {
  /** Sends WATCHDOG=1. */
  readonly ping: () => void;
  /** Whether the daemon makes progress; OK unless a restart would help. */
  readonly check: () => Verdict;
  readonly logger: Logger;
  /** Monotonic ms, for measuring how late a ping timer fired (a blocked event loop). */
  readonly now?: () => number;
}

/**
 * Pings the systemd watchdog every half period while the daemon makes progress. The ping timer runs
 * on the event loop, so a wedged loop sends nothing and systemd kills and restarts the process after
 * WatchdogSec; a ping withheld because the scheduler or the writer stalled has the same effect, and
 * the reason is logged at error level first (and shown in STATUS by the caller).
 */
export class Watchdog {
  readonly #settings: WatchdogSettings;
  readonly #deps: WatchdogDeps;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #lastTickMs: number | null = null;
  #withheld: string | null = null;
  #pings = 0;

  constructor(settings: WatchdogSettings, deps: WatchdogDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#now = deps.now ?? (() => performance.now());
  }

  /** Pings at once, then every half period. */
  start(): void {
    if (this.#timer !== null) return;
    this.tick();
    this.#timer = setInterval(() => this.tick(), this.#settings.pingEveryMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#lastTickMs = null;
  }

  /** Why pings are being withheld, or null while they go out. */
  get withheld(): string | null {
    return this.#withheld;
  }

  get pings(): number {
    return this.#pings;
  }

  /** One check-and-ping; the timer calls it, tests call it directly. */
  tick(): void {
    const now = this.#now();
    if (this.#lastTickMs !== null) {
      const lateMs = now - this.#lastTickMs - this.#settings.pingEveryMs;
      if (lateMs > this.#settings.periodMs / 4) {
        this.#deps.logger.warn(
          { lateMs: Math.round(lateMs), watchdogMs: this.#settings.periodMs },
          'the event loop was blocked: a watchdog ping went out late',
        );
      }
    }
    this.#lastTickMs = now;

    let verdict: Verdict;
    try {
      verdict = this.#deps.check();
    } catch (error) {
      this.#deps.logger.error({ err: error }, 'watchdog progress check failed; pinging anyway');
      verdict = OK;
    }
    if (verdict.ok) {
      if (this.#withheld !== null) {
        this.#deps.logger.info({ was: this.#withheld }, 'progress resumed: watchdog pings resumed');
        this.#withheld = null;
      }
      this.#pings++;
      this.#deps.ping();
      return;
    }
    if (this.#withheld === null) {
      this.#deps.logger.error(
        { reason: verdict.reason, watchdogMs: this.#settings.periodMs },
        `withholding the watchdog ping: ${verdict.reason}; systemd restarts the service if this lasts`,
      );
    }
    this.#withheld = verdict.reason;
  }
}
