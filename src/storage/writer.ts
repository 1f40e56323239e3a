import { performance } from 'node:perf_hooks';
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../log/logger.js';
import { DurationHistogram, type DurationSummary } from '../poller/histogram.js';
import type { BoundedQueue } from '../queue/bounded-queue.js';
import { type ExecutionPolicy, isOpenCircuitError, unguarded } from '../resilience/index.js';
import { isStorageError } from './errors.js';
import type { ReadingSink, SinkWriteResult } from './sink.js';

export interface WriterOptions {
  /** Readings per batch (= per transaction); a full batch is flushed at once. */
  readonly batchSize: number;
  /** Everything queued is flushed at least this often. */
  readonly flushIntervalMs: number;
}

/**
 * After the `failures`-th consecutive failure of the held batch (each failure being a whole policy
 * run: its retries exhausted, or an open breaker), how long to wait before writing it again. An open
 * breaker overrides it: the writer then waits for the breaker's trial call.
 */
export type RetryDelay = (failures: number, error: unknown) => number;

/** 250 ms, doubling, capped at 5 s. */
export const defaultRetryDelay: RetryDelay = (failures) =>
  Math.min(250 * 2 ** Math.max(0, failures - 1), 5000);

/** How long stop() keeps trying to write what is queued when no deadline is given. */
export const DEFAULT_STOP_DEADLINE_MS = 10_000;

export interface WriterError {
  readonly message: string;
  readonly code: string | null;
  readonly transient: boolean | null;
  readonly atMs: number;
}

/**
 * Counters. Every reading the queue ever accepted is accounted for:
 * queue.offered = written + duplicates + invalid + droppedAtShutdown + inFlight + queue.dropped + queue.size
 */
export interface WriterStats {
  /** Readings newly stored. */
  readonly written: number;
  /** Readings the sink already had (a replay); acknowledged, not stored twice. */
  readonly duplicates: number;
  /** Readings the sink refused as malformed. */
  readonly invalid: number;
  /** Write attempts that failed (the batch was kept and retried). */
  readonly failedBatches: number;
  /** Readings still unwritten when stop()'s deadline passed. */
  readonly droppedAtShutdown: number;
  /** Readings taken from the queue and not yet settled: being written, or held for a retry. */
  readonly inFlight: number;
  /** Wall-clock time of the last successful batch, UTC ms; null before the first. */
  readonly lastCommitAtMs: number | null;
  readonly lastError: WriterError | null;
  /**
   * Poll-to-commit latency: for every reading of a committed batch, the wall-clock time from its
   * `tsMs` (poll time) to the commit. p50/p99 are over the most recent COMMIT_LATENCY_WINDOW readings.
   */
  readonly commitLatency: DurationSummary;
}

/** Readings whose poll-to-commit latency the p50/p99 of `commitLatency` are computed over. */
export const COMMIT_LATENCY_WINDOW = 8192;

type Outcome = 'ok' | 'failed';

function validate(options: WriterOptions): void {
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
  }
  if (!(Number.isFinite(options.flushIntervalMs) && options.flushIntervalMs > 0)) {
    throw new RangeError(`flushIntervalMs must be a positive number, got ${options.flushIntervalMs}`);
  }
}

function describe(error: unknown, atMs: number): WriterError {
  return {
    message: error instanceof Error ? error.message : String(error),
    code: isStorageError(error) ? error.code : null,
    transient: isStorageError(error) ? error.transient : null,
    atMs,
  };
}

/** A run of consecutive failures of the held batch. */
interface Outage {
  /** Failed writes of the held batch so far (each a whole policy run). */
  readonly failures: number;
  /** performance.now() at the first failure, for the recovery log line. */
  readonly startedMs: number;
  readonly lastFailure: unknown;
}

/**
 * The writer's lifecycle. Only a running writer listens to the queue and has a flush timer; stop()
 * is final and remembers its result (stop is idempotent).
 */
type Lifecycle =
  | { readonly kind: 'new' }
  | {
      readonly kind: 'running';
      readonly unsubscribe: () => void;
      readonly flushTimer: NodeJS.Timeout;
      /** A kick is queued as a microtask (several offers in a row make one). */
      kickQueued: boolean;
      /** Set by the flush timer: keep writing until the queue is empty, not only while batches are full. */
      flushAll: boolean;
    }
  | { readonly kind: 'stopped'; readonly result: Promise<WriterStats> };

/**
 * The batch taken from the queue and not settled yet. One batch at a time: it is either on its way
 * to the sink, or held after a failure (with the outage it belongs to) until its retry is due.
 */
type BatchState =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'writing';
      readonly batch: readonly Reading[];
      readonly write: Promise<Outcome>;
      /** The outage this write may end; null for a first try. */
      readonly outage: Outage | null;
    }
  | {
      readonly kind: 'held';
      readonly batch: readonly Reading[];
      readonly outage: Outage;
      /** The retry's timer while running; null once stop() took over the retries. */
      readonly retry: NodeJS.Timeout | null;
    };

/** Counters reported by stats(), kept apart from the state they describe. */
interface Counters {
  written: number;
  duplicates: number;
  invalid: number;
  failedBatches: number;
  droppedAtShutdown: number;
  lastCommitAtMs: number | null;
  lastError: WriterError | null;
}

/**
 * Drains the bounded queue into a sink: batches by size (as soon as `batchSize` readings are queued)
 * or by time (`flushIntervalMs`), one batch in flight, one transaction per batch. A failed batch is
 * held, ahead of newer data, and written again after a growing delay; nothing is lost silently.
 * The producer never waits: it only offers to the queue.
 */
export class Writer {
  readonly name = 'writer';
  #options: WriterOptions;
  #life: Lifecycle = { kind: 'new' };
  #batch: BatchState = { kind: 'none' };
  readonly #counters: Counters = {
    written: 0,
    duplicates: 0,
    invalid: 0,
    failedBatches: 0,
    droppedAtShutdown: 0,
    lastCommitAtMs: null,
    lastError: null,
  };
  readonly #commitListeners = new Set<(batch: readonly Reading[]) => void>();
  readonly #commitLatency = new DurationHistogram(COMMIT_LATENCY_WINDOW);

  constructor(
    private readonly queue: BoundedQueue<Reading>,
    private readonly sink: ReadingSink,
    options: WriterOptions,
    private readonly logger: Logger,
    private readonly retryDelay: RetryDelay = defaultRetryDelay,
    /** The database policy: retries, breaker and timeout around every batch write. */
    private readonly policy: ExecutionPolicy = unguarded,
  ) {
    this.#options = options;
  }

  start(): void {
    if (this.#life.kind !== 'new') return;
    validate(this.#options);
    const unsubscribe = this.queue.onOffer(() => {
      if (this.queue.size >= this.#options.batchSize) this.#queueKick();
    });
    this.#life = {
      kind: 'running',
      unsubscribe,
      flushTimer: this.#flushTimer(),
      kickQueued: false,
      flushAll: false,
    };
    this.#queueKick();
  }

  /**
   * Told after every batch the sink committed, with the batch itself (replays included: a listener
   * that wants only new states skips readings not newer than what it has). Runs on the writer's
   * path: a listener must only hand work off, never block. Returns the unsubscribe function.
   */
  onCommit(listener: (batch: readonly Reading[]) => void): () => void {
    this.#commitListeners.add(listener);
    return () => {
      this.#commitListeners.delete(listener);
    };
  }

  /** Applies reloaded options; takes effect from the next batch. */
  reconfigure(options: Partial<WriterOptions>): void {
    const next = { ...this.#options, ...options };
    validate(next);
    const intervalChanged = next.flushIntervalMs !== this.#options.flushIntervalMs;
    this.#options = next;
    const life = this.#life;
    if (life.kind !== 'running') return;
    if (intervalChanged) {
      clearInterval(life.flushTimer);
      this.#life = { ...life, flushTimer: this.#flushTimer() };
    }
    this.#queueKick();
  }

  /**
   * Stops batching and writes everything queued, once, retrying failures until `deadlineMs` (a
   * budget from now) runs out. What is still unwritten then is counted as droppedAtShutdown and
   * logged; a write still running at the deadline settles later (inFlight until then). Idempotent.
   */
  stop(deadlineMs: number = DEFAULT_STOP_DEADLINE_MS): Promise<WriterStats> {
    const life = this.#life;
    if (life.kind === 'stopped') return life.result;
    if (life.kind === 'running') {
      life.unsubscribe();
      clearInterval(life.flushTimer);
    }
    const held = this.#batch;
    if (held.kind === 'held' && held.retry !== null) {
      clearTimeout(held.retry);
      this.#batch = { ...held, retry: null };
    }
    // Stopped before the drain starts, so nothing it sets off (a settled write) sees a running writer.
    let drain!: (stats: Promise<WriterStats>) => void;
    const result = new Promise<WriterStats>((resolve) => {
      drain = resolve;
    });
    this.#life = { kind: 'stopped', result };
    drain(this.#drain(deadlineMs));
    return result;
  }

  stats(): WriterStats {
    const c = this.#counters;
    return {
      written: c.written,
      duplicates: c.duplicates,
      invalid: c.invalid,
      failedBatches: c.failedBatches,
      droppedAtShutdown: c.droppedAtShutdown,
      inFlight: this.#batch.kind === 'none' ? 0 : this.#batch.batch.length,
      lastCommitAtMs: c.lastCommitAtMs,
      lastError: c.lastError,
      commitLatency: this.#commitLatency.summary(),
    };
  }

  #flushTimer(): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (this.#life.kind !== 'running') return;
      this.#life.flushAll = true;
      this.#kick();
    }, this.#options.flushIntervalMs);
    timer.unref();
    return timer;
  }

  /** Deferred so that a size-triggered flush never runs inside the producer's offer() call. */
  #queueKick(): void {
    const life = this.#life;
    if (life.kind !== 'running' || life.kickQueued) return;
    life.kickQueued = true;
    queueMicrotask(() => {
      life.kickQueued = false;
      this.#kick();
    });
  }

  /** Starts the next write if none is running or waiting for a retry and there is something to write. */
  #kick(): void {
    const life = this.#life;
    if (life.kind !== 'running') return;
    const current = this.#batch;
    if (current.kind === 'writing' || (current.kind === 'held' && current.retry !== null)) return;
    if (current.kind === 'held') {
      this.#write(current.batch, current.outage);
      return;
    }
    const threshold = life.flushAll ? 1 : this.#options.batchSize;
    if (this.queue.size < threshold) {
      life.flushAll = false;
      return;
    }
    this.#write(this.queue.take(this.#options.batchSize), null);
  }

  #nextDelay(outage: Outage): number {
    // An open breaker: the next write is its trial call, once it allows one.
    if (isOpenCircuitError(outage.lastFailure)) return Math.max(1, this.policy.msUntilTrial());
    const delay = this.retryDelay(outage.failures, outage.lastFailure);
    return Number.isFinite(delay) && delay >= 0
      ? delay
      : defaultRetryDelay(outage.failures, outage.lastFailure);
  }

  /**
   * Writes `batch` once: writing → none (committed) or held (failed). A running writer then goes on
   * with the next batch, or arms the held batch's retry. Never rejects.
   */
  #write(batch: readonly Reading[], outage: Outage | null): Promise<Outcome> {
    let attempt: Promise<SinkWriteResult>;
    try {
      attempt = Promise.resolve(this.policy.execute(() => this.sink.writeBatch(batch)));
    } catch (error) {
      attempt = Promise.reject(error);
    }
    const write = attempt.then(
      (result) => this.#committed(batch, result, outage),
      (error: unknown) => this.#failed(batch, error, outage),
    );
    this.#batch = { kind: 'writing', batch, write, outage };
    return write;
  }

  #committed(batch: readonly Reading[], result: SinkWriteResult, outage: Outage | null): Outcome {
    this.#batch = { kind: 'none' };
    const c = this.#counters;
    c.written += result.inserted;
    c.duplicates += result.duplicates;
    c.invalid += result.invalid ?? 0;
    const committedMs = Date.now();
    c.lastCommitAtMs = committedMs;
    for (const reading of batch) this.#commitLatency.record(Math.max(0, committedMs - reading.tsMs));
    for (const listener of this.#commitListeners) {
      try {
        listener(batch);
      } catch (error) {
        this.logger.error({ err: error }, 'commit listener failed; the batch is stored');
      }
    }
    if (outage !== null) {
      this.logger.info(
        {
          failedAttempts: outage.failures,
          outageMs: Math.round(performance.now() - outage.startedMs),
        },
        'storage writes recovered; the held batch is written',
      );
    }
    this.#kick();
    return 'ok';
  }

  #failed(batch: readonly Reading[], error: unknown, previous: Outage | null): Outcome {
    const c = this.#counters;
    c.failedBatches++;
    c.lastError = describe(error, Date.now());
    const outage: Outage = {
      failures: (previous?.failures ?? 0) + 1,
      startedMs: previous?.startedMs ?? performance.now(),
      lastFailure: error,
    };
    if (previous === null) {
      this.logger.warn(
        { err: error, code: c.lastError.code, transient: c.lastError.transient, batch: batch.length },
        'storage write failed; holding the batch and retrying with backoff',
      );
    } else {
      this.logger.debug({ attempt: outage.failures, code: c.lastError.code }, 'storage write failed again');
    }
    // A stopping writer retries from its drain loop, not from a timer.
    const retry = this.#life.kind === 'running' ? this.#retryTimer(outage) : null;
    this.#batch = { kind: 'held', batch, outage, retry };
    return 'failed';
  }

  /** The held batch's retry: when it fires, the batch is written again (held → writing). */
  #retryTimer(outage: Outage): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        const current = this.#batch;
        if (current.kind !== 'held' || current.retry !== timer) return;
        this.#batch = { ...current, retry: null };
        this.#kick();
      },
      Math.min(MAX_TIMER_MS, this.#nextDelay(outage)),
    );
    timer.unref();
    return timer;
  }

  /** stop()'s work: writes what is queued until the budget runs out, then counts what is left. */
  async #drain(budgetMs: number): Promise<WriterStats> {
    const deadline = performance.now() + Math.max(0, budgetMs);
    for (;;) {
      const left = deadline - performance.now();
      const current = this.#batch;
      if (current.kind === 'writing') {
        const outcome = await within(current.write, left);
        if (outcome === 'timeout') break;
        const after = this.#batch;
        if (outcome === 'failed' && after.kind === 'held')
          await sleep(Math.min(this.#nextDelay(after.outage), Math.max(0, deadline - performance.now())));
        continue;
      }
      if (current.kind === 'none' && this.queue.size === 0) break;
      if (left <= 0) break;
      if (current.kind === 'held') this.#write(current.batch, current.outage);
      else this.#write(this.queue.take(this.#options.batchSize), null);
    }

    let dropped = this.queue.take(this.queue.size).length;
    const current = this.#batch;
    if (current.kind === 'held') {
      dropped += current.batch.length;
      this.#batch = { kind: 'none' };
    } else if (current.kind === 'writing') {
      // Cannot be cancelled: it may still commit. Count it when it settles.
      void current.write.then(() => {
        const settled = this.#batch;
        if (settled.kind !== 'held') return;
        const late = settled.batch.length;
        this.#batch = { kind: 'none' };
        this.#counters.droppedAtShutdown += late;
        this.logger.error(
          { dropped: late },
          'a batch still being written at the shutdown deadline failed: dropped',
        );
      });
    }
    this.#counters.droppedAtShutdown += dropped;
    const stats = this.stats();
    if (dropped > 0) {
      this.logger.error(
        { dropped, inFlight: stats.inFlight, lastError: stats.lastError?.message },
        'shutdown deadline passed: readings not written were dropped',
      );
    } else {
      this.logger.info({ written: stats.written, inFlight: stats.inFlight }, 'writer stopped');
    }
    return stats;
  }
}

/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(MAX_TIMER_MS, ms)));
}

/** The promise's value, or 'timeout' once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), Math.min(MAX_TIMER_MS, Math.max(0, ms)));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
