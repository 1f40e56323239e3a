/**
 * The policy every guarded operation runs under: retry (outermost) → circuit breaker → timeout →
 * the call. Built with cockatiel; this folder is its only importer.
 *
 * - The retry handles only failures a retry can fix (classifyError(...).retry): never an open
 *   circuit, never a permanent error, never a full disk (that waits for the breaker's trial call).
 * - The breaker is consecutive-failure based (a sampling breaker never opens at a daemon's request
 *   rate) and counts only failures of the resource (transient or after-recovery), so one malformed
 *   point or a 401 never opens it.
 * - Each attempt has its own timeout; its timer is unref'd and cleared when the attempt settles.
 */
import type {
  CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  RetryPolicy,
  TimeoutPolicy,
} from 'cockatiel';
import type { Logger } from '../log/logger.js';
import { type DelaySettings, type RandomSource, StrategyBackoff } from './backoff.js';
import { cockatiel } from './cockatiel.js';
import { classifyError, isOpenCircuitError } from './errors.js';
import { type BreakerState, OperationRecorder } from './stats.js';

const {
  CircuitState: Circuit,
  ConsecutiveBreaker: Consecutive,
  circuitBreaker,
  handleWhen,
  retry,
  TimeoutStrategy,
  timeout,
} = cockatiel;

export interface PolicySettings extends DelaySettings {
  /** Attempts per call, the first one included (1 = no retry). */
  readonly maxAttempts: number;
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Consecutive failed attempts that open the breaker. */
  readonly breakerThreshold: number;
  /** How long the breaker stays open before a trial call. */
  readonly breakerHalfOpenAfterMs: number;
}

/** What a component needs from a policy; tests and unguarded setups use `unguarded`. */
export interface ExecutionPolicy {
  /**
   * Runs `fn` under the policy. `fn` gets an AbortSignal that fires when its attempt timed out or
   * the caller's `signal` aborted. Rejects with the last failure, or with cockatiel's
   * BrokenCircuitError (see isOpenCircuitError) when the breaker refused the call.
   */
  execute<T>(fn: (signal: AbortSignal) => Promise<T> | T, signal?: AbortSignal): Promise<T>;
  /** Milliseconds until an open breaker lets a trial call through; 0 when it would now. */
  msUntilTrial(): number;
  readonly state: BreakerState;
}

/** No retry, no breaker, no timeout: the call as it is. */
export const unguarded: ExecutionPolicy = {
  execute: <T>(fn: (signal: AbortSignal) => Promise<T> | T, signal?: AbortSignal): Promise<T> =>
    Promise.resolve().then(() => fn(signal ?? new AbortController().signal)),
  msUntilTrial: () => 0,
  state: 'closed',
};

/** Thrown into `execute`'s caller when its own signal aborted (a stop). Permanent: never retried. */
export class OperationAbortedError extends Error {
  override readonly name = 'OperationAbortedError';
  readonly transient = false;
  readonly failureKind = 'permanent';
  readonly code = 'KASA_ABORTED';
}

function stateName(state: CircuitState): BreakerState {
  switch (state) {
    case Circuit.Open:
      return 'open';
    case Circuit.HalfOpen:
      return 'half-open';
    case Circuit.Isolated:
      return 'isolated';
    default:
      return 'closed';
  }
}

export function validatePolicySettings(settings: PolicySettings): void {
  const problems: string[] = [];
  if (!Number.isInteger(settings.maxAttempts) || settings.maxAttempts < 1) problems.push('maxAttempts');
  if (!(settings.baseDelayMs >= 0)) problems.push('baseDelayMs');
  if (!(settings.maxDelayMs >= 0)) problems.push('maxDelayMs');
  if (!(settings.timeoutMs > 0)) problems.push('timeoutMs');
  if (!Number.isInteger(settings.breakerThreshold) || settings.breakerThreshold < 1)
    problems.push('breakerThreshold');
  if (!(settings.breakerHalfOpenAfterMs >= 0)) problems.push('breakerHalfOpenAfterMs');
  if (problems.length > 0) throw new RangeError(`invalid policy settings: ${problems.join(', ')}`);
}

/**
 * The cockatiel parts built from one set of settings. A reload replaces the engine as a whole; a call
 * keeps the engine it started with, so calls in flight finish under the old settings.
 */
interface Engine {
  readonly settings: PolicySettings;
  readonly counter: ConsecutiveBreaker;
  readonly breaker: CircuitBreakerPolicy;
  readonly retry: RetryPolicy;
  readonly timeout: TimeoutPolicy;
  /** Detaches the breaker's listeners: a replaced engine no longer reports transitions. */
  readonly retire: () => void;
}

/**
 * One operation's policy (for example `sqlite.write` under the database preset). Its breaker is its
 * own: a down InfluxDB never stops SQLite writes. Statistics go to `recorder`.
 *
 * The object is stable for the daemon's lifetime (the writer and the forwarder hold it); a reload
 * gives it new settings through reconfigure(), and its statistics carry on across the change.
 */
export class ResiliencePolicy implements ExecutionPolicy {
  readonly recorder: OperationRecorder;
  #engine: Engine;
  #openedAtMs = 0;
  #lastFailureCode: string | null = null;

  constructor(
    readonly operation: string,
    readonly preset: string,
    settings: PolicySettings,
    private readonly logger: Logger,
    private readonly random: RandomSource = Math.random,
  ) {
    validatePolicySettings(settings);
    this.recorder = new OperationRecorder(operation, preset, () => this.#engine.counter.state);
    this.#engine = this.#build(settings, undefined);
  }

  get settings(): PolicySettings {
    return this.#engine.settings;
  }

  get state(): BreakerState {
    return stateName(this.#engine.breaker.state);
  }

  msUntilTrial(): number {
    if (this.#engine.breaker.state !== Circuit.Open) return 0;
    return Math.max(0, this.#openedAtMs + this.settings.breakerHalfOpenAfterMs - Date.now());
  }

  /**
   * Applies new settings from the next call on (calls in flight finish under the old ones); the
   * statistics carry on. The breaker keeps its state, as a user expects of a settings change: a
   * closed breaker keeps its count of consecutive failures (checked against the new threshold at the
   * next failure); an open breaker stays open and lets its trial call through once the new
   * `breakerHalfOpenAfterMs` has passed since it opened, so a shorter wait set during an outage
   * applies at once and a reload never hammers a resource that is down. A half-open breaker (its
   * trial call in flight) lets the next call through as a new trial. Returns whether anything changed.
   */
  reconfigure(settings: PolicySettings): boolean {
    validatePolicySettings(settings);
    const previous = this.#engine;
    if (sameSettings(previous.settings, settings)) return false;
    const wasHalfOpen = previous.breaker.state === Circuit.HalfOpen;
    this.#engine = this.#build(settings, previous.breaker.toJSON());
    previous.retire();
    if (wasHalfOpen) this.#openedAtMs = 0;
    if (this.#engine.breaker.state === Circuit.Open) {
      this.recorder.rescheduleTrial(this.#openedAtMs + settings.breakerHalfOpenAfterMs);
    }
    this.logger.info(
      {
        operation: this.operation,
        preset: this.preset,
        breaker: this.state,
        ...changedSettings(previous.settings, settings),
      },
      'retry settings reloaded',
    );
    return true;
  }

  /**
   * Closes the breaker and forgets its failure count, keeping the settings and the statistics: for
   * when the resource itself was replaced (a new InfluxDB URL), so its predecessor's outage does not
   * hold back the first call. Calls in flight finish under the old breaker.
   */
  reset(reason: string): void {
    const previous = this.#engine;
    const wasState = this.state;
    this.#engine = this.#build(previous.settings, undefined);
    previous.retire();
    if (wasState !== 'closed') {
      this.recorder.transition('closed', Date.now());
      this.logger.info({ operation: this.operation, was: wasState, reason }, 'circuit breaker reset');
    }
  }

  async execute<T>(fn: (signal: AbortSignal) => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    const engine = this.#engine;
    const aborted = () => signal?.aborted === true;
    const attempt = async (): Promise<T> => {
      if (aborted()) throw new OperationAbortedError(`${this.operation} aborted`);
      try {
        const value = await engine.timeout.execute(({ signal: attemptSignal }) => fn(attemptSignal));
        this.recorder.attempt(true);
        return value;
      } catch (error) {
        const failure = classifyError(error);
        this.#lastFailureCode = failure.code;
        this.recorder.attempt(false, failure.code);
        throw error;
      }
    };
    const run = engine.retry.execute(() => engine.breaker.execute(attempt));
    try {
      return await (signal === undefined ? run : raceAbort(run, signal, this.operation));
    } catch (error) {
      this.recorder.failedCall(isOpenCircuitError(error));
      throw error;
    }
  }

  /** Retry → breaker → timeout for `settings`; the breaker starts from `initialState` when given. */
  #build(settings: PolicySettings, initialState: unknown): Engine {
    const operation = this.operation;
    const counter = new Consecutive(settings.breakerThreshold);
    const breaker = circuitBreaker(
      handleWhen((error) => classifyError(error).breaker),
      {
        halfOpenAfter: settings.breakerHalfOpenAfterMs,
        breaker: counter,
        ...(initialState === undefined ? {} : { initialState }),
      },
    );
    const retryPolicy = retry(
      handleWhen((error) => classifyError(error).retry),
      { maxAttempts: settings.maxAttempts - 1, backoff: new StrategyBackoff(settings, this.random) },
    ).dangerouslyUnref();
    const timeoutPolicy = timeout(settings.timeoutMs, TimeoutStrategy.Aggressive).dangerouslyUnref();

    // Retries of a call in flight are counted even after a reload replaced this engine.
    retryPolicy.onRetry((event) => {
      this.recorder.retry(event.delay);
      this.logger.debug(
        { operation, attempt: event.attempt, delayMs: event.delay, code: this.#lastFailureCode },
        'retrying',
      );
    });
    const listeners = [
      breaker.onBreak(() => {
        this.#openedAtMs = Date.now();
        this.recorder.transition(
          'open',
          this.#openedAtMs,
          this.#openedAtMs + settings.breakerHalfOpenAfterMs,
        );
        this.logger.warn(
          {
            operation,
            code: this.#lastFailureCode,
            consecutiveFailures: counter.state,
            trialInMs: settings.breakerHalfOpenAfterMs,
          },
          'circuit breaker open: calls fail at once until a trial call succeeds',
        );
      }),
      breaker.onHalfOpen(() => {
        this.recorder.transition('half-open', Date.now());
        this.logger.debug({ operation }, 'circuit breaker half-open: trial call');
      }),
      breaker.onReset(() => {
        const openMs = Date.now() - this.#openedAtMs;
        this.recorder.transition('closed', Date.now());
        this.logger.info({ operation, openMs }, 'circuit breaker closed: the trial call succeeded');
      }),
    ];
    return {
      settings,
      counter,
      breaker,
      retry: retryPolicy,
      timeout: timeoutPolicy,
      retire: () => {
        for (const listener of listeners) listener.dispose();
      },
    };
  }
}

const SETTING_KEYS = [
  'strategy',
  'maxAttempts',
  'baseDelayMs',
  'maxDelayMs',
  'jitter',
  'timeoutMs',
  'breakerThreshold',
  'breakerHalfOpenAfterMs',
] as const satisfies readonly (keyof PolicySettings)[];

function sameSettings(a: PolicySettings, b: PolicySettings): boolean {
  return SETTING_KEYS.every((key) => a[key] === b[key]);
}

/** The settings that differ, as { key: new value }, for the log. */
function changedSettings(a: PolicySettings, b: PolicySettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) if (a[key] !== b[key]) out[key] = b[key];
  return out;
}

/** The promise, or an OperationAbortedError as soon as `signal` aborts (the work itself goes on). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, operation: string): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(new OperationAbortedError(`${operation} aborted`));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => undefined);
      reject(new OperationAbortedError(`${operation} aborted`));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
