/**
 * Decides whether the daemon makes progress, for the systemd watchdog: a ping is withheld only when
 * a restart would help. The event loop is checked by the ping itself (it is sent from a timer, so a
 * blocked loop sends none); this module checks the poll scheduler and the writer.
 *
 * What counts as stalled, and what does not:
 * - scheduler: a tick that was due has not happened `schedulerGraceMs` after its due time. A quiet
 *   schedule (a cron expression that fires hourly) is not a stall: only a missed due time is.
 * - writer: readings are waiting (queued or held for a retry) and no write has finished, successfully
 *   or not, for `writerStallMs`. A write that fails (disk full, locked database) finishes, and so is
 *   progress: that state is shown in STATUS and the log, and a restart would not fix it.
 *
 * Time is measured on the monotonic clock, so a wall-clock jump (NTP on a Raspberry Pi without an RTC)
 * neither fakes a stall nor hides one.
 */

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export const OK: Verdict = { ok: true };

/** What the gate reads from the daemon on every check. */
export interface ProgressSample {
  /** Poll ticks so far. */
  readonly ticks: number;
  /** When the scheduler says the next tick is due (UTC ms); null while it is not running. */
  readonly nextTickMs: number | null;
  /** Writes finished so far, successful or failed (any counter that moves when a write settles). */
  readonly writesSettled: number;
  /** Readings waiting to be written: queued plus held for a retry. */
  readonly writesPending: number;
}

export interface ProgressLimits {
  /** How late past its due time a tick may be before the scheduler counts as stalled. */
  readonly schedulerGraceMs: number;
  /** How long readings may wait without any write finishing before the writer counts as stalled. */
  readonly writerStallMs: number;
}

export interface ProgressClock {
  /** Monotonic milliseconds (performance.now()). */
  monotonicMs(): number;
  /** Wall-clock UTC milliseconds (Date.now()), to read the scheduler's due time. */
  wallMs(): number;
}

export const SYSTEM_CLOCK: ProgressClock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

export class ProgressGate {
  #limits: ProgressLimits;
  readonly #clock: ProgressClock;
  /** The tick count when the due time below was read, the time left until it then, and when that was. */
  #tick: { ticks: number; dueInMs: number | null; atMs: number } | null = null;
  #writer: { settled: number; atMs: number } | null = null;

  constructor(limits: ProgressLimits, clock: ProgressClock = SYSTEM_CLOCK) {
    this.#limits = limits;
    this.#clock = clock;
  }

  /** New limits (after a reload). */
  setLimits(limits: ProgressLimits): void {
    this.#limits = limits;
  }

  /** Forgets what was seen: after a reload that rescheduled polling, the old due time no longer holds. */
  reset(): void {
    this.#tick = null;
    this.#writer = null;
  }

  check(sample: ProgressSample): Verdict {
    const now = this.#clock.monotonicMs();
    return this.#checkScheduler(sample, now) ?? this.#checkWriter(sample, now) ?? OK;
  }

  #checkScheduler(sample: ProgressSample, now: number): Verdict | undefined {
    const held = this.#tick;
    // A tick happened (or nothing was held yet): the next due time becomes the one to watch. While no
    // tick happens the held due time stays, whatever the scheduler now predicts.
    if (held === null || held.ticks !== sample.ticks || held.dueInMs === null) {
      const dueInMs =
        sample.nextTickMs === null ? null : Math.max(0, sample.nextTickMs - this.#clock.wallMs());
      this.#tick = { ticks: sample.ticks, dueInMs, atMs: now };
      return undefined;
    }
    const overdue = now - held.atMs - held.dueInMs;
    if (overdue <= this.#limits.schedulerGraceMs) return undefined;
    return {
      ok: false,
      reason: `the poll scheduler stopped: a tick due ${seconds(overdue)} ago has not run`,
    };
  }

  #checkWriter(sample: ProgressSample, now: number): Verdict | undefined {
    const held = this.#writer;
    if (held === null || held.settled !== sample.writesSettled || sample.writesPending === 0) {
      this.#writer = { settled: sample.writesSettled, atMs: now };
      return undefined;
    }
    const waited = now - held.atMs;
    if (waited <= this.#limits.writerStallMs) return undefined;
    return {
      ok: false,
      reason: `the writer stalled: ${sample.writesPending} readings waiting and no write finished for ${seconds(waited)}`,
    };
  }
}
