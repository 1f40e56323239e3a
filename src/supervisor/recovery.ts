/**
 * Recovery with bounded backoff. A bad check names an action (reopen SQLite, restart discovery, ...);
 * the action runs at once, then no sooner than `backoffMs`, 2 x backoffMs, ... (at most
 * `backoffMaxMs`) while the problem lasts, `attempts` times at most. When they are used up and a
 * process restart could fix the problem (`escalate`), `onExhausted` is called: the daemon exits
 * non-zero and the service manager restarts it. Otherwise the problem stays reported, and nothing
 * more is tried until it clears. An action's count starts again once no check asks for it.
 */
import type { Logger } from '../log/logger.js';
import type { RecoveryName } from './types.js';

export interface RecoveryOptions {
  readonly attempts: number;
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
}

export type RecoveryAction = () => Promise<void>;

export interface RecoveryState {
  readonly attempts: number;
  readonly succeeded: number;
  readonly failed: number;
  /** When the next attempt may run (UTC ms); null when none is due. */
  readonly next_attempt_ms: number | null;
  readonly last_attempt_ms: number | null;
  readonly last_error: string | null;
  readonly running: boolean;
  readonly exhausted: boolean;
}

export class RecoveryExhaustedError extends Error {
  override readonly name = 'RecoveryExhaustedError';
  constructor(
    readonly action: RecoveryName,
    readonly check: string,
    readonly reason: string,
    readonly attempts: number,
  ) {
    super(
      `recovery exhausted: ${action} tried ${attempts} times and ${check} is still bad (${reason}); exiting so the service manager restarts the daemon`,
    );
  }
}

interface State {
  attempts: number;
  succeeded: number;
  failed: number;
  nextAtMs: number;
  lastAtMs: number | null;
  lastError: string | null;
  running: Promise<void> | null;
  exhausted: boolean;
  gaveUpLogged: boolean;
}

export class Recovery {
  #options: RecoveryOptions;
  readonly #actions: ReadonlyMap<RecoveryName, RecoveryAction>;
  readonly #states = new Map<RecoveryName, State>();

  constructor(
    actions: Partial<Record<RecoveryName, RecoveryAction>>,
    options: RecoveryOptions,
    private readonly logger: Logger,
    private readonly onExhausted: (error: RecoveryExhaustedError) => void,
  ) {
    this.#actions = new Map(Object.entries(actions) as [RecoveryName, RecoveryAction][]);
    this.#options = options;
  }

  setOptions(options: RecoveryOptions): void {
    this.#options = options;
  }

  has(action: RecoveryName): boolean {
    return this.#actions.has(action);
  }

  /**
   * A check run asked for `action`. Runs it when due (not awaited by the caller's cycle unless it
   * awaits the returned promise), escalates when exhausted.
   */
  request(
    action: RecoveryName,
    check: string,
    reason: string,
    escalate: boolean,
    nowMs: number,
  ): Promise<void> {
    const run = this.#actions.get(action);
    if (run === undefined) return Promise.resolve();
    const state = this.#state(action);
    if (state.running !== null || state.exhausted) return state.running ?? Promise.resolve();
    if (state.attempts >= this.#options.attempts) {
      if (escalate) {
        state.exhausted = true;
        const error = new RecoveryExhaustedError(action, check, reason, state.attempts);
        this.logger.fatal({ action, check, reason, attempts: state.attempts }, error.message);
        this.onExhausted(error);
      } else if (!state.gaveUpLogged) {
        state.gaveUpLogged = true;
        this.logger.error(
          { action, check, reason, attempts: state.attempts },
          `recovery gave up: ${action} did not help; ${check} stays reported (a restart would not fix it)`,
        );
      }
      return Promise.resolve();
    }
    if (nowMs < state.nextAtMs) return Promise.resolve();
    state.attempts++;
    state.lastAtMs = nowMs;
    state.nextAtMs =
      nowMs + Math.min(this.#options.backoffMs * 2 ** (state.attempts - 1), this.#options.backoffMaxMs);
    this.logger.warn(
      { action, check, reason, attempt: state.attempts, of: this.#options.attempts },
      `recovering: ${action} (attempt ${state.attempts} of ${this.#options.attempts}) because ${check}: ${reason}`,
    );
    const running = run()
      .then(() => {
        state.succeeded++;
        this.logger.info({ action, attempt: state.attempts }, `recovery action ${action} done`);
      })
      .catch((error: unknown) => {
        state.failed++;
        state.lastError = error instanceof Error ? error.message : String(error);
        this.logger.error(
          { err: error, action, attempt: state.attempts },
          `recovery action ${action} failed`,
        );
      })
      .finally(() => {
        state.running = null;
      });
    state.running = running;
    return running;
  }

  /** No check asked for `action` in the last run: the problem cleared, its count starts again. */
  clear(action: RecoveryName): void {
    const state = this.#states.get(action);
    if (state === undefined || state.running !== null || state.attempts === 0) return;
    if (state.exhausted) return;
    state.attempts = 0;
    state.nextAtMs = 0;
    state.gaveUpLogged = false;
  }

  /** Waits for actions in progress (at shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.#states.values()].map((s) => s.running ?? Promise.resolve()));
  }

  stats(): Partial<Record<RecoveryName, RecoveryState>> {
    const out: Partial<Record<RecoveryName, RecoveryState>> = {};
    for (const [name, s] of this.#states) {
      out[name] = {
        attempts: s.attempts,
        succeeded: s.succeeded,
        failed: s.failed,
        next_attempt_ms: s.attempts === 0 || s.exhausted ? null : s.nextAtMs,
        last_attempt_ms: s.lastAtMs,
        last_error: s.lastError,
        running: s.running !== null,
        exhausted: s.exhausted,
      };
    }
    return out;
  }

  #state(action: RecoveryName): State {
    let state = this.#states.get(action);
    if (state === undefined) {
      state = {
        attempts: 0,
        succeeded: 0,
        failed: 0,
        nextAtMs: 0,
        lastAtMs: null,
        lastError: null,
        running: null,
        exhausted: false,
        gaveUpLogged: false,
      };
      this.#states.set(action, state);
    }
    return state;
  }
}
