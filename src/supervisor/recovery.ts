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

/**
 * One action's lifecycle. Each state holds only what is valid in it: an idle action has no attempt
 * count, only a running one has a promise, an exhausted one never runs again.
 *
 *   idle ──request──▶ running ──settled──▶ waiting ──due──▶ running …
 *   waiting (attempts used up) ──escalate──▶ exhausted (terminal: the daemon exits)
 *                              ──otherwise──▶ gave-up (reported once; a reload that allows more
 *                                             attempts lets it run again)
 *   waiting / gave-up ──clear──▶ idle
 */
type ActionState =
  | { readonly kind: 'idle' }
  | {
      readonly kind: 'running';
      readonly attempts: number;
      readonly nextAtMs: number;
      readonly done: Promise<void>;
    }
  | { readonly kind: 'waiting'; readonly attempts: number; readonly nextAtMs: number }
  | { readonly kind: 'gave-up'; readonly attempts: number; readonly nextAtMs: number }
  | { readonly kind: 'exhausted'; readonly attempts: number };

/** Statistics of one action since start: they survive clear(). */
interface ActionStats {
  succeeded: number;
  failed: number;
  lastAtMs: number | null;
  lastError: string | null;
}

interface ActionEntry {
  state: ActionState;
  readonly stats: ActionStats;
}

function attemptsOf(state: ActionState): number {
  return state.kind === 'idle' ? 0 : state.attempts;
}

/** When the next attempt may run, as stats() reports it: null when none is due. */
function nextAttemptMs(state: ActionState): number | null {
  if (state.kind === 'idle' || state.kind === 'exhausted' || state.attempts === 0) return null;
  return state.nextAtMs;
}

export class Recovery {
  #options: RecoveryOptions;
  readonly #actions: ReadonlyMap<RecoveryName, RecoveryAction>;
  readonly #entries = new Map<RecoveryName, ActionEntry>();

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
    const entry = this.#entry(action);
    const state = entry.state;
    switch (state.kind) {
      case 'running':
        return state.done;
      case 'exhausted':
        return Promise.resolve();
      default:
        break;
    }
    const attempts = attemptsOf(state);
    if (attempts >= this.#options.attempts) {
      if (escalate) {
        entry.state = { kind: 'exhausted', attempts };
        const error = new RecoveryExhaustedError(action, check, reason, attempts);
        this.logger.fatal({ action, check, reason, attempts }, error.message);
        this.onExhausted(error);
      } else if (state.kind !== 'gave-up') {
        entry.state = { kind: 'gave-up', attempts, nextAtMs: state.kind === 'idle' ? 0 : state.nextAtMs };
        this.logger.error(
          { action, check, reason, attempts },
          `recovery gave up: ${action} did not help; ${check} stays reported (a restart would not fix it)`,
        );
      }
      return Promise.resolve();
    }
    if (state.kind !== 'idle' && nowMs < state.nextAtMs) return Promise.resolve();
    return this.#run(action, entry, run, attempts + 1, check, reason, nowMs);
  }

  /** No check asked for `action` in the last run: the problem cleared, its count starts again. */
  clear(action: RecoveryName): void {
    const entry = this.#entries.get(action);
    if (entry === undefined) return;
    // A running action settles first; an exhausted one is terminal (the daemon is exiting).
    const { state } = entry;
    if ((state.kind === 'waiting' || state.kind === 'gave-up') && state.attempts > 0) {
      entry.state = { kind: 'idle' };
    }
  }

  /** Waits for actions in progress (at shutdown). */
  async settle(): Promise<void> {
    await Promise.all(
      [...this.#entries.values()].map((e) => (e.state.kind === 'running' ? e.state.done : undefined)),
    );
  }

  stats(): Partial<Record<RecoveryName, RecoveryState>> {
    const out: Partial<Record<RecoveryName, RecoveryState>> = {};
    for (const [name, { state, stats }] of this.#entries) {
      out[name] = {
        attempts: attemptsOf(state),
        succeeded: stats.succeeded,
        failed: stats.failed,
        next_attempt_ms: nextAttemptMs(state),
        last_attempt_ms: stats.lastAtMs,
        last_error: stats.lastError,
        running: state.kind === 'running',
        exhausted: state.kind === 'exhausted',
      };
    }
    return out;
  }

  /** Attempt number `attempt`: running now, waiting for its backoff once it settles. */
  #run(
    action: RecoveryName,
    entry: ActionEntry,
    run: RecoveryAction,
    attempt: number,
    check: string,
    reason: string,
    nowMs: number,
  ): Promise<void> {
    const nextAtMs =
      nowMs + Math.min(this.#options.backoffMs * 2 ** (attempt - 1), this.#options.backoffMaxMs);
    entry.stats.lastAtMs = nowMs;
    this.logger.warn(
      { action, check, reason, attempt, of: this.#options.attempts },
      `recovering: ${action} (attempt ${attempt} of ${this.#options.attempts}) because ${check}: ${reason}`,
    );
    const done = run()
      .then(() => {
        entry.stats.succeeded++;
        this.logger.info({ action, attempt }, `recovery action ${action} done`);
      })
      .catch((error: unknown) => {
        entry.stats.failed++;
        entry.stats.lastError = error instanceof Error ? error.message : String(error);
        this.logger.error({ err: error, action, attempt }, `recovery action ${action} failed`);
      })
      .finally(() => {
        entry.state = { kind: 'waiting', attempts: attempt, nextAtMs };
      });
    entry.state = { kind: 'running', attempts: attempt, nextAtMs, done };
    return done;
  }

  #entry(action: RecoveryName): ActionEntry {
    let entry = this.#entries.get(action);
    if (entry === undefined) {
      entry = {
        state: { kind: 'idle' },
        stats: { succeeded: 0, failed: 0, lastAtMs: null, lastError: null },
      };
      this.#entries.set(action, entry);
    }
    return entry;
  }
}
