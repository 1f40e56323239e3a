import { performance } from 'node:perf_hooks';
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../log/logger.js';
import { DurationHistogram, type DurationSummary } from '../poller/histogram.js';
import type { BoundedQueue } from '../queue/bounded-queue.js';
import { type ExecutionPolicy, isOpenCircuitError, unguarded } from '../resilience/index.js';
import { isStorageError } from './errors.js';
import type { ReadingSink } from './sink.js';

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

/**
 * Drains the bounded queue into a sink: batches by size (as soon as `batchSize` readings are queued)
 * or by time (`flushIntervalMs`), one batch in flight, one transaction per batch. A failed batch is
 * held, ahead of newer data, and written again after a growing delay; nothing is lost silently.
 * The producer never waits: it only offers to the queue.
 */
export class Writer {
  readonly name = 'writer';
  #options: WriterOptions;
  /** Taken from the queue and not settled yet: the batch being written or waiting for a retry. */
  #held: Reading[] | null = null;
  #writing: Promise<Outcome> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #flushTimer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #kickQueued = false;
  /** Set by the flush timer: keep writing until the queue is empty, not only while batches are full. */
  #flushAll = false;
  #stopping: Promise<WriterStats> | null = null;
  /** Consecutive failures of the held batch (0 = healthy). */
  #failures = 0;
  #episodeStartedMs = 0;

  #written = 0;
  #duplicates = 0;
  #invalid = 0;
  #failedBatches = 0;
  #droppedAtShutdown = 0;
  #lastCommitAtMs: number | null = null;
  #lastError: WriterError | null = null;
  #lastFailure: unknown = null;
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
    if (this.#stopping !== null || this.#unsubscribe !== null) return;
    validate(this.#options);
    this.#unsubscribe = this.queue.onOffer(() => {
      if (this.queue.size >= this.#options.batchSize) this.#queueKick();
    });
    this.#armFlushTimer();
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
    if (intervalChanged && this.#flushTimer !== null) this.#armFlushTimer();
    if (this.#unsubscribe !== null) this.#queueKick();
  }

  /**
   * Stops batching and writes everything queued, once, retrying failures until `deadlineMs` (a
   * budget from now) runs out. What is still unwritten then is counted as droppedAtShutdown and
   * logged; a write still running at the deadline settles later (inFlight until then). Idempotent.
   */
  stop(deadlineMs: number = DEFAULT_STOP_DEADLINE_MS): Promise<WriterStats> {
    this.#stopping ??= this.#stop(deadlineMs);
    return this.#stopping;
  }

  stats(): WriterStats {
    return {
      written: this.#written,
      duplicates: this.#duplicates,
      invalid: this.#invalid,
      failedBatches: this.#failedBatches,
      droppedAtShutdown: this.#droppedAtShutdown,
      inFlight: this.#held?.length ?? 0,
      lastCommitAtMs: this.#lastCommitAtMs,
      lastError: this.#lastError,
      commitLatency: this.#commitLatency.summary(),
    };
  }

  #armFlushTimer(): void {
    if (this.#flushTimer !== null) clearInterval(this.#flushTimer);
    this.#flushTimer = setInterval(() => {
      this.#flushAll = true;
      this.#kick();
    }, this.#options.flushIntervalMs);
    this.#flushTimer.unref();
  }

  /** Deferred so that a size-triggered flush never runs inside the producer's offer() call. */
  #queueKick(): void {
    if (this.#kickQueued) return;
    this.#kickQueued = true;
    queueMicrotask(() => {
      this.#kickQueued = false;
      this.#kick();
    });
  }

  /** Starts the next write if none is running or waiting for a retry and there is something to write. */
  #kick(): void {
    if (this.#stopping !== null || this.#writing !== null || this.#retryTimer !== null) return;
    if (this.#held === null) {
      const threshold = this.#flushAll ? 1 : this.#options.batchSize;
      if (this.queue.size < threshold) {
        this.#flushAll = false;
        return;
      }
      this.#held = this.queue.take(this.#options.batchSize);
    }
    void this.#writeHeld().then((outcome) => {
      if (this.#stopping !== null) return;
      if (outcome === 'ok') {
        this.#kick();
        return;
      }
      this.#retryTimer = setTimeout(
        () => {
          this.#retryTimer = null;
          this.#kick();
        },
        Math.min(MAX_TIMER_MS, this.#nextDelay()),
      );
      this.#retryTimer.unref();
    });
  }

  #nextDelay(): number {
    // An open breaker: the next write is its trial call, once it allows one.
    if (isOpenCircuitError(this.#lastFailure)) return Math.max(1, this.policy.msUntilTrial());
    const delay = this.retryDelay(this.#failures, this.#lastFailure);
    return Number.isFinite(delay) && delay >= 0
      ? delay
      : defaultRetryDelay(this.#failures, this.#lastFailure);
  }

  /** Writes the held batch once. Never rejects. */
  #writeHeld(): Promise<Outcome> {
    const batch = this.#held as Reading[];
    const write = (async (): Promise<Outcome> => {
      try {
        const result = await this.policy.execute(() => this.sink.writeBatch(batch));
        this.#held = null;
        this.#written += result.inserted;
        this.#duplicates += result.duplicates;
        this.#invalid += result.invalid ?? 0;
        const committedMs = Date.now();
        this.#lastCommitAtMs = committedMs;
        for (const reading of batch) this.#commitLatency.record(Math.max(0, committedMs - reading.tsMs));
        for (const listener of this.#commitListeners) {
          try {
            listener(batch);
          } catch (error) {
            this.logger.error({ err: error }, 'commit listener failed; the batch is stored');
          }
        }
        if (this.#failures > 0) {
          this.logger.info(
            {
              failedAttempts: this.#failures,
              outageMs: Math.round(performance.now() - this.#episodeStartedMs),
            },
            'storage writes recovered; the held batch is written',
          );
          this.#failures = 0;
        }
        return 'ok';
      } catch (error) {
        this.#failedBatches++;
        this.#failures++;
        this.#lastError = describe(error, Date.now());
        this.#lastFailure = error;
        if (this.#failures === 1) {
          this.#episodeStartedMs = performance.now();
          this.logger.warn(
            {
              err: error,
              code: this.#lastError.code,
              transient: this.#lastError.transient,
              batch: batch.length,
            },
            'storage write failed; holding the batch and retrying with backoff',
          );
        } else {
          this.logger.debug(
            { attempt: this.#failures, code: this.#lastError.code },
            'storage write failed again',
          );
        }
        return 'failed';
      }
    })();
    this.#writing = write;
    void write.then(() => {
      if (this.#writing === write) this.#writing = null;
    });
    return write;
  }

  async #stop(budgetMs: number): Promise<WriterStats> {
    const deadline = performance.now() + Math.max(0, budgetMs);
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#flushTimer !== null) clearInterval(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;

    for (;;) {
      const left = deadline - performance.now();
      if (this.#writing !== null) {
        const outcome = await within(this.#writing, left);
        if (outcome === 'timeout') break;
        if (outcome === 'failed')
          await sleep(Math.min(this.#nextDelay(), Math.max(0, deadline - performance.now())));
        continue;
      }
      if (this.#held === null) {
        if (this.queue.size === 0) break;
        this.#held = this.queue.take(this.#options.batchSize);
      }
      if (left <= 0) break;
      void this.#writeHeld();
    }

    let dropped = this.queue.take(this.queue.size).length;
    const running = this.#writing;
    if (running === null) {
      dropped += this.#held?.length ?? 0;
      this.#held = null;
    } else {
      // Cannot be cancelled: it may still commit. Count it when it settles.
      void running.then((outcome) => {
        if (outcome === 'ok' || this.#held === null) return;
        const late = this.#held.length;
        this.#held = null;
        this.#droppedAtShutdown += late;
        this.logger.error(
          { dropped: late },
          'a batch still being written at the shutdown deadline failed: dropped',
        );
      });
    }
    this.#droppedAtShutdown += dropped;
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
