/**
 * Per-device protection: a plug that stops answering is backed off on its own, so a dead plug costs
 * a request now and then instead of a timeout on every tick, and the others never notice.
 *
 * After `after` consecutive polls without an answer (timeout, refused, network error) the plug is
 * paused for `baseMs`; each further unanswered trial doubles the pause, up to `maxMs`. The first
 * answer ends the backoff. An answer that could not be used (garbage, an error code) is still an
 * answer: it resets the count, because backing off cannot help a plug that is there.
 */

export interface DeviceBackoffOptions {
  /** Consecutive unanswered polls before the plug is paused (≥ 1). */
  readonly after: number;
  /** The first pause (the poll interval is a natural choice). */
  readonly baseMs: number;
  /** The longest pause. */
  readonly maxMs: number;
}

export interface DeviceBackoffState {
  /** Consecutive unanswered polls. */
  readonly failures: number;
  /** Until when polls are skipped, UTC ms (0 when not paused). */
  readonly pausedUntilMs: number;
}

export interface DeviceBackoffStats {
  /** Plugs paused right now. */
  readonly paused: number;
  /** Plugs that reached the threshold and have not answered since. */
  readonly backingOff: number;
  /** Polls not sent because the plug was paused. */
  readonly skippedPolls: number;
  /** Times a plug entered backoff. */
  readonly episodes: number;
  /** Times a backed-off plug answered again. */
  readonly recoveries: number;
}

interface Entry {
  failures: number;
  pausedUntilMs: number;
}

export type Clock = () => number;

export function validateDeviceBackoffOptions(options: DeviceBackoffOptions): void {
  if (!Number.isInteger(options.after) || options.after < 1) {
    throw new RangeError(`backoff threshold must be a positive integer, got ${options.after}`);
  }
  if (!(options.baseMs > 0) || !(options.maxMs > 0)) {
    throw new RangeError(`backoff pauses must be positive, got ${options.baseMs} / ${options.maxMs}`);
  }
}

export class DeviceBackoff {
  #options: DeviceBackoffOptions;
  readonly #entries = new Map<string, Entry>();
  #skipped = 0;
  #episodes = 0;
  #recoveries = 0;

  constructor(
    options: DeviceBackoffOptions,
    private readonly clock: Clock = Date.now,
  ) {
    validateDeviceBackoffOptions(options);
    this.#options = options;
  }

  setOptions(options: DeviceBackoffOptions): void {
    validateDeviceBackoffOptions(options);
    this.#options = options;
  }

  /** Whether to poll the plug now; false (counted as skipped) while it is paused. */
  allow(deviceId: string): boolean {
    const entry = this.#entries.get(deviceId);
    if (entry === undefined || entry.pausedUntilMs <= this.clock()) return true;
    this.#skipped++;
    return false;
  }

  /** The plug answered (with a usable reading or not). Returns true when this ended a backoff. */
  answered(deviceId: string): boolean {
    const entry = this.#entries.get(deviceId);
    if (entry === undefined) return false;
    this.#entries.delete(deviceId);
    if (entry.failures < this.#options.after) return false;
    this.#recoveries++;
    return true;
  }

  /**
   * The plug did not answer. Returns the pause now imposed (ms), 0 while under the threshold.
   */
  unanswered(deviceId: string): number {
    let entry = this.#entries.get(deviceId);
    if (entry === undefined) {
      entry = { failures: 0, pausedUntilMs: 0 };
      this.#entries.set(deviceId, entry);
    }
    entry.failures++;
    const { after, baseMs, maxMs } = this.#options;
    if (entry.failures < after) return 0;
    if (entry.failures === after) this.#episodes++;
    const level = entry.failures - after;
    const pause = Math.min(maxMs, baseMs * 2 ** Math.min(level, 52));
    entry.pausedUntilMs = this.clock() + pause;
    return pause;
  }

  /** Something else saw the plug (discovery): its next poll is a trial, whatever is left of the pause. */
  wake(deviceId: string): void {
    const entry = this.#entries.get(deviceId);
    if (entry !== undefined) entry.pausedUntilMs = 0;
  }

  state(deviceId: string): DeviceBackoffState | undefined {
    const entry = this.#entries.get(deviceId);
    return entry === undefined ? undefined : { ...entry };
  }

  stats(): DeviceBackoffStats {
    const now = this.clock();
    let paused = 0;
    let backingOff = 0;
    for (const entry of this.#entries.values()) {
      if (entry.pausedUntilMs > now) paused++;
      if (entry.failures >= this.#options.after) backingOff++;
    }
    return {
      paused,
      backingOff,
      skippedPolls: this.#skipped,
      episodes: this.#episodes,
      recoveries: this.#recoveries,
    };
  }
}
