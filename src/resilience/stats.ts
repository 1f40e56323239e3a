/**
 * Retry statistics per operation, in the shape the original system exposed (snake_case, delays in
 * seconds): total_attempts, successful_attempts, failed_attempts, success_rate, average_delay and
 * retry_counts_by_operation, plus each operation's circuit-breaker state and transitions.
 */

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

export interface BreakerStats {
  readonly state: BreakerState;
  /** How often the breaker opened, let a trial call through, and closed again. */
  readonly transitions: { readonly opened: number; readonly half_opened: number; readonly closed: number };
  /** Wall-clock time of the last transition, UTC ms; null while it never left `closed`. */
  readonly last_transition_ms: number | null;
  /** When an open breaker lets the next trial call through, UTC ms; null unless open. */
  readonly next_trial_ms: number | null;
  /** Consecutive attempts that failed and count towards opening it (0 after any success). */
  readonly consecutive_failures: number;
}

export interface OperationStats {
  /** The preset the operation's policy was built from (database, network, file). */
  readonly preset: string;
  /** Attempts that reached the resource (a call retried twice is three attempts). */
  readonly total_attempts: number;
  readonly successful_attempts: number;
  readonly failed_attempts: number;
  /** successful / total attempts; 0 before the first attempt. */
  readonly success_rate: number;
  /** Mean delay before a retry, in seconds (a Retry-After included); 0 without retries. */
  readonly average_delay: number;
  /** Retries scheduled (attempts after the first). */
  readonly retries: number;
  /** Calls that ended in failure (retries exhausted, an error a retry cannot fix, or the breaker). */
  readonly failed_calls: number;
  /** Calls refused by the open breaker without touching the resource. */
  readonly short_circuited: number;
  /** Failed attempts by error code (SQLITE_BUSY, HTTP_503, KASA_TIMEOUT, ...). */
  readonly failures_by_code: Readonly<Record<string, number>>;
  readonly breaker: BreakerStats;
}

export interface RetryStatistics {
  readonly total_attempts: number;
  readonly successful_attempts: number;
  readonly failed_attempts: number;
  readonly success_rate: number;
  /** Seconds, over every operation's retries. */
  readonly average_delay: number;
  /** Retries per operation name. */
  readonly retry_counts_by_operation: Readonly<Record<string, number>>;
  readonly operations: Readonly<Record<string, OperationStats>>;
}

/** Counters of one operation; its policy feeds it from cockatiel's events. */
export class OperationRecorder {
  #attempts = 0;
  #successes = 0;
  #retries = 0;
  #delayTotalMs = 0;
  #failedCalls = 0;
  #shortCircuited = 0;
  readonly #failuresByCode = new Map<string, number>();
  #state: BreakerState = 'closed';
  #opened = 0;
  #halfOpened = 0;
  #closed = 0;
  #lastTransitionMs: number | null = null;
  #nextTrialMs: number | null = null;

  constructor(
    readonly operation: string,
    readonly preset: string,
    /** The breaker's count of consecutive failures. */
    private readonly consecutiveFailures: () => number = () => 0,
  ) {}

  attempt(ok: boolean, code?: string): void {
    this.#attempts++;
    if (ok) {
      this.#successes++;
      return;
    }
    const key = code ?? 'KASA_ERROR';
    this.#failuresByCode.set(key, (this.#failuresByCode.get(key) ?? 0) + 1);
  }

  retry(delayMs: number): void {
    this.#retries++;
    this.#delayTotalMs += delayMs;
  }

  failedCall(shortCircuited: boolean): void {
    this.#failedCalls++;
    if (shortCircuited) this.#shortCircuited++;
  }

  transition(state: BreakerState, nowMs: number, nextTrialMs: number | null = null): void {
    this.#state = state;
    this.#lastTransitionMs = nowMs;
    this.#nextTrialMs = state === 'open' ? nextTrialMs : null;
    if (state === 'open') this.#opened++;
    else if (state === 'half-open') this.#halfOpened++;
    else if (state === 'closed') this.#closed++;
  }

  /** An open breaker's trial moved (a reload changed how long it stays open); not a transition. */
  rescheduleTrial(nextTrialMs: number): void {
    if (this.#state === 'open') this.#nextTrialMs = nextTrialMs;
  }

  get state(): BreakerState {
    return this.#state;
  }

  get nextTrialMs(): number | null {
    return this.#nextTrialMs;
  }

  get retries(): number {
    return this.#retries;
  }

  get delayTotalMs(): number {
    return this.#delayTotalMs;
  }

  snapshot(): OperationStats {
    const failed = this.#attempts - this.#successes;
    return {
      preset: this.preset,
      total_attempts: this.#attempts,
      successful_attempts: this.#successes,
      failed_attempts: failed,
      success_rate: rate(this.#successes, this.#attempts),
      average_delay: averageSeconds(this.#delayTotalMs, this.#retries),
      retries: this.#retries,
      failed_calls: this.#failedCalls,
      short_circuited: this.#shortCircuited,
      failures_by_code: Object.fromEntries(this.#failuresByCode),
      breaker: {
        state: this.#state,
        transitions: { opened: this.#opened, half_opened: this.#halfOpened, closed: this.#closed },
        last_transition_ms: this.#lastTransitionMs,
        next_trial_ms: this.#nextTrialMs,
        consecutive_failures: this.consecutiveFailures(),
      },
    };
  }
}

function rate(part: number, total: number): number {
  return total === 0 ? 0 : part / total;
}

function averageSeconds(totalMs: number, count: number): number {
  return count === 0 ? 0 : totalMs / count / 1000;
}

/** Adds the operations up into the original's global shape. */
export function summarise(recorders: Iterable<OperationRecorder>): RetryStatistics {
  let attempts = 0;
  let successes = 0;
  let retries = 0;
  let delayMs = 0;
  const byOperation: Record<string, number> = {};
  const operations: Record<string, OperationStats> = {};
  for (const recorder of recorders) {
    const snapshot = recorder.snapshot();
    attempts += snapshot.total_attempts;
    successes += snapshot.successful_attempts;
    retries += recorder.retries;
    delayMs += recorder.delayTotalMs;
    byOperation[recorder.operation] = recorder.retries;
    operations[recorder.operation] = snapshot;
  }
  return {
    total_attempts: attempts,
    successful_attempts: successes,
    failed_attempts: attempts - successes,
    success_rate: rate(successes, attempts),
    average_delay: averageSeconds(delayMs, retries),
    retry_counts_by_operation: byOperation,
    operations,
  };
}
