import { performance } from 'node:perf_hooks';

/**
 * The two clocks the daemon reads. The wall clock (Date.now()) says what time it is and stamps
 * readings; it can step either way at any moment (NTP correcting a Raspberry Pi that booted without a
 * real-time clock, an operator's `date -s`, a resume from suspend). The monotonic clock
 * (performance.now(), CLOCK_MONOTONIC) never steps; timers (setTimeout) run on it too. So: plan on
 * the monotonic clock, label with the wall clock, and notice when the two stop agreeing.
 */
export interface Clock {
  wallMs(): number;
  monotonicMs(): number;
}

export const SYSTEM_CLOCK: Clock = {
  wallMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};

/** Longest delay setTimeout honours: Node turns anything above 2^31-1 ms (24.8 days) into 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A wall-clock change smaller than this between two looks is not called a step. NTP slews the clock
 * by at most 0.5 ms/s, and the looks are about a second apart, so nothing ordinary comes near it.
 */
export const CLOCK_STEP_THRESHOLD_MS = 500;

export interface ClockStep {
  /** Signed: positive when the wall clock jumped ahead, negative when it went back. */
  readonly stepMs: number;
  /** The wall time the clock would have shown without the step, and what it shows. */
  readonly expectedWallMs: number;
  readonly wallMs: number;
}

/**
 * Watches the difference between the wall clock and the monotonic clock. Between two looks it only
 * drifts (slewing); a jump beyond the threshold is a step. Every look takes the current difference as
 * the new reference, so slow drift never adds up to a false step and each step is reported once.
 */
export class ClockStepDetector {
  readonly #clock: Clock;
  readonly #thresholdMs: number;
  #offsetMs: number;

  constructor(clock: Clock = SYSTEM_CLOCK, thresholdMs = CLOCK_STEP_THRESHOLD_MS) {
    this.#clock = clock;
    this.#thresholdMs = thresholdMs;
    this.#offsetMs = clock.wallMs() - clock.monotonicMs();
  }

  /** The step since the previous look, or null when the clocks still agree. */
  look(): ClockStep | null {
    const wall = this.#clock.wallMs();
    const offset = wall - this.#clock.monotonicMs();
    const stepMs = offset - this.#offsetMs;
    this.#offsetMs = offset;
    if (Math.abs(stepMs) < this.#thresholdMs) return null;
    return { stepMs, expectedWallMs: wall - stepMs, wallMs: wall };
  }
}

/** "back by 2 min 0 s" / "ahead by 1 d 0 h": how a step reads in a log line. */
export function describeStep(stepMs: number): string {
  const abs = Math.abs(stepMs);
  const direction = stepMs < 0 ? 'back' : 'ahead';
  const s = Math.round(abs / 1000);
  let text: string;
  if (s < 60) text = `${(abs / 1000).toFixed(1)} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min ${s % 60} s`;
  else if (s < 86_400) text = `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  else text = `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
  return `${direction} by ${text}`;
}
