/**
 * Feeds InfluxDB from SQLite. SQLite is the source of truth: every batch the writer commits also
 * lands in the outbox (same transaction), and the forwarder sends outbox readings after a cursor
 * persisted in the same database, in batches, under the network policy. The cursor moves only after
 * InfluxDB accepted a batch, so an outage of any length, or a crash at any moment, loses nothing;
 * what was sent but not yet acknowledged by the cursor is sent again as identical points.
 *
 * A batch the server refuses for its content (errors the client marks `rejectsContent`: HTTP 400
 * malformed, 413 too large, 422) is split in halves until the bad point stands alone; that point is
 * counted as rejected, logged, and the cursor moves past it, so one bad point never blocks the rest
 * and is never retried forever.
 */
import type { Logger } from '../../log/logger.js';
import { classifyError, type ExecutionPolicy, isOpenCircuitError } from '../../resilience/index.js';
import { isStorageError } from '../errors.js';
import type { CursorInfo, OutboxCursor, OutboxRead } from '../sqlite/index.js';
import { absentAsNull, OUTBOX_COLUMNS } from '../sqlite/index.js';
import type { LineWriter } from './client.js';
import { fieldsAndTime, seriesPrefix } from './line-protocol.js';

/** What the forwarder needs from SQLite (SqliteStore implements it). */
export interface OutboxSource {
  /** Whether committed batches are recorded in the outbox at all (SqliteOptions.outbox). */
  readonly outboxEnabled: boolean;
  loadCursor(sink: string): Promise<CursorInfo>;
  readOutbox(after: OutboxCursor, limit: number): Promise<OutboxRead>;
  saveCursor(sink: string, cursor: OutboxCursor): Promise<number>;
  onCommit(listener: (commit: { readonly inserted: number }) => void): () => void;
}

export interface ForwarderOptions {
  /** Points per write request at most. */
  readonly batchSize: number;
  /** How often to look for new readings when no commit woke the forwarder. */
  readonly flushIntervalMs: number;
  /** Global tags on every point (site, ...). */
  readonly tags: Readonly<Record<string, string>>;
  /** The longest pause between two tries after a batch failed for good (default 60 s). */
  readonly maxHoldMs?: number;
}

/** The cursor's name in SQLite. */
export const INFLUX_SINK = 'influx';

export interface ForwarderError {
  readonly message: string;
  readonly code: string | null;
  readonly atMs: number;
}

/**
 * Counters of this sink since start. At every moment: added = written + dropped + rejected + queued.
 * `queued` is what the outbox holds after the cursor (readings committed to SQLite, not yet in InfluxDB).
 */
export interface ForwarderStats {
  /** Readings queued for InfluxDB: those pending at start plus every reading committed since. */
  readonly added: number;
  /** Points InfluxDB accepted (a replay after a crash is counted again: it is sent again). */
  readonly written: number;
  /** Always 0: the forwarder never drops; kept so the accounting reads the same for every sink. */
  readonly dropped: number;
  /** Points InfluxDB refused as malformed, isolated by splitting; never retried. */
  readonly rejected: number;
  /** Readings in SQLite not yet accepted by InfluxDB. */
  readonly queued: number;
  /** Write requests that succeeded. */
  readonly batches: number;
  /** Times a rejected batch was split in two. */
  readonly splits: number;
  /** Batches that failed after the policy's retries (kept, tried again later). */
  readonly failedBatches: number;
  /** How far InfluxDB lags behind SQLite: age of the oldest reading not yet delivered (0 when none). */
  readonly lagMs: number;
  readonly cursor: OutboxCursor;
  readonly lastWriteAtMs: number | null;
  readonly lastError: ForwarderError | null;
  readonly running: boolean;
}

const DEFAULT_MAX_HOLD_MS = 60_000;

/** A batch prepared for sending: one line per reading, and where each reading sits in the outbox. */
interface Batch {
  readonly read: OutboxRead;
  readonly lines: string[];
  /** For reading i: the outbox row and position after it (the cursor once it is delivered). */
  readonly after: OutboxCursor[];
  /** For reading i: the commit time of its outbox row. */
  readonly committedMs: number[];
  /** Reading indexes whose channel is unknown (cannot be tagged): rejected without sending. */
  readonly unknown: Set<number>;
  /** The global tags the lines carry. */
  readonly tags: ForwarderOptions['tags'];
}

function validate(options: ForwarderOptions): void {
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
  }
  if (!(options.flushIntervalMs > 0)) {
    throw new RangeError(`flushIntervalMs must be positive, got ${options.flushIntervalMs}`);
  }
}

/**
 * The forwarder's lifecycle. Only a running forwarder has a loop, a commit subscription and an
 * abort signal for its requests; stop() is final.
 */
type Lifecycle =
  | { readonly kind: 'new' }
  /** start() is loading the persisted cursor. */
  | { readonly kind: 'starting' }
  | {
      readonly kind: 'running';
      readonly loop: Promise<void>;
      readonly unsubscribe: () => void;
      /** Aborted by stop(): the request on the wire is abandoned. */
      readonly abort: AbortController;
    }
  /** The loop ends (or has ended); `loop` is null when stop() came before the loop started. */
  | { readonly kind: 'stopped'; readonly loop: Promise<void> | null };

/** Whether InfluxDB takes our batches: a run of batches that failed for good is an outage. */
type Health =
  | { readonly kind: 'healthy' }
  | { readonly kind: 'failing'; readonly failures: number; readonly sinceMs: number };

/**
 * What the loop waits for between batches. Idle (nothing to send) it wakes on a commit, an option
 * change, resume() or stop(); paused (after a failure or at an open breaker) only on resume() or
 * stop(): new data does not make InfluxDB come back.
 */
type Wait =
  | { readonly kind: 'none' }
  | { readonly kind: 'idle'; readonly end: () => void }
  | { readonly kind: 'paused'; readonly end: () => void };

type WakeReason = 'commit' | 'options' | 'resume' | 'stop';

/** Where the forwarder is in the outbox, and what the outbox holds after it. */
interface Backlog {
  cursor: OutboxCursor;
  /** Readings after the cursor (committed to SQLite, not yet accepted by InfluxDB). */
  queued: number;
  /** Commit time of the oldest of them; null when none is known. */
  oldestPendingMs: number | null;
}

/** Counters reported by stats(). */
interface Counters {
  added: number;
  written: number;
  rejected: number;
  batches: number;
  splits: number;
  failedBatches: number;
  lastWriteAtMs: number | null;
  lastError: ForwarderError | null;
}

export class InfluxForwarder {
  readonly name = 'influx';
  #options: ForwarderOptions;
  #writer: LineWriter;
  #life: Lifecycle = { kind: 'new' };
  #health: Health = { kind: 'healthy' };
  #wait: Wait = { kind: 'none' };
  readonly #backlog: Backlog = { cursor: { seq: 0, position: 0 }, queued: 0, oldestPendingMs: null };
  readonly #counters: Counters = {
    added: 0,
    written: 0,
    rejected: 0,
    batches: 0,
    splits: 0,
    failedBatches: 0,
    lastWriteAtMs: null,
    lastError: null,
  };
  /** The cursor as last persisted, and the chain of saves (one after another, in order). */
  readonly #persisted: { cursor: OutboxCursor; saves: Promise<void> } = {
    cursor: { seq: 0, position: 0 },
    saves: Promise.resolve(),
  };

  constructor(
    private readonly source: OutboxSource,
    writer: LineWriter,
    private readonly policy: ExecutionPolicy,
    options: ForwarderOptions,
    private readonly logger: Logger,
  ) {
    validate(options);
    this.#options = options;
    this.#writer = writer;
  }

  /** Loads the persisted cursor and starts forwarding. Resolves once the cursor is loaded. */
  async start(): Promise<void> {
    if (this.#life.kind !== 'new') return;
    if (!this.source.outboxEnabled) {
      throw new RangeError('the InfluxDB forwarder needs a SQLite store opened with the outbox on');
    }
    this.#life = { kind: 'starting' };
    let info: CursorInfo;
    try {
      info = await this.source.loadCursor(INFLUX_SINK);
    } catch (error) {
      if (this.#life.kind === 'starting') this.#life = { kind: 'new' };
      throw error;
    }
    // stop() came while the cursor was loading: stay stopped.
    if (this.#life.kind !== 'starting') return;
    this.#backlog.cursor = info.cursor;
    this.#backlog.queued = info.pending;
    this.#backlog.oldestPendingMs = info.oldestCommittedMs;
    this.#persisted.cursor = info.cursor;
    this.#counters.added = info.pending;
    // Subscribed only now: commits before the load are in `pending`, later ones are announced.
    const unsubscribe = this.source.onCommit(({ inserted }) => this.#committed(inserted));
    this.logger.info(
      { pending: info.pending, cursor: info.cursor },
      info.pending > 0 ? 'forwarding to InfluxDB: catching up' : 'forwarding to InfluxDB',
    );
    const abort = new AbortController();
    // Running before the loop's first step, which checks for a stop.
    let run!: (loop: Promise<void>) => void;
    const loop = new Promise<void>((resolve) => {
      run = resolve;
    });
    this.#life = { kind: 'running', loop, unsubscribe, abort };
    run(this.#run(abort.signal));
  }

  /**
   * Applies reloaded options (batch size, interval, tags). New tags apply from the next batch sent:
   * a batch already on the wire goes out as it was formatted.
   */
  reconfigure(options: Partial<Pick<ForwarderOptions, 'batchSize' | 'flushIntervalMs' | 'tags'>>): void {
    const next = { ...this.#options, ...options };
    validate(next);
    this.#options = next;
    this.#wake('options');
  }

  /**
   * Sends to another InfluxDB (a reload changed the URL, token, org, bucket or gzip). The outbox
   * cursor is kept, so nothing is lost or sent twice: a request already on the wire finishes against
   * the old writer (if accepted there, the cursor moves past it), every later request, a retry of
   * that batch included, goes to the new one. A pause after a failure ends at once.
   */
  setLineWriter(writer: LineWriter): void {
    this.#writer = writer;
    this.resume();
  }

  /**
   * Ends a pause after a failure or an open breaker now, so reloaded retry settings or a new
   * destination are tried at once (the loop asks the policy again whether a call may go out).
   */
  resume(): void {
    this.#wake('resume');
  }

  /**
   * Stops: the write in flight is abandoned (its points stay in SQLite and are sent again next
   * time, identical), the latest cursor is saved. Nothing is lost. Idempotent.
   */
  async stop(): Promise<ForwarderStats> {
    const life = this.#life;
    if (life.kind === 'running') {
      this.#life = { kind: 'stopped', loop: life.loop };
      life.abort.abort();
      life.unsubscribe();
      this.#wake('stop');
    } else if (life.kind !== 'stopped') {
      this.#life = { kind: 'stopped', loop: null };
    }
    const stopped = this.#life;
    if (stopped.kind === 'stopped') await stopped.loop;
    this.#saveCursor();
    await this.#persisted.saves;
    const stats = this.stats();
    this.logger.info(
      { written: stats.written, rejected: stats.rejected, queued: stats.queued },
      'InfluxDB forwarder stopped',
    );
    return stats;
  }

  stats(): ForwarderStats {
    const c = this.#counters;
    const b = this.#backlog;
    return {
      added: c.added,
      written: c.written,
      dropped: 0,
      rejected: c.rejected,
      queued: b.queued,
      batches: c.batches,
      splits: c.splits,
      failedBatches: c.failedBatches,
      lagMs: b.queued > 0 && b.oldestPendingMs !== null ? Math.max(0, Date.now() - b.oldestPendingMs) : 0,
      cursor: b.cursor,
      lastWriteAtMs: c.lastWriteAtMs,
      lastError: c.lastError,
      running: this.#life.kind === 'running',
    };
  }

  get #stopping(): boolean {
    return this.#life.kind === 'stopped';
  }

  #committed(inserted: number): void {
    if (inserted <= 0) return;
    if (this.#backlog.queued === 0) this.#backlog.oldestPendingMs = Date.now();
    this.#counters.added += inserted;
    this.#backlog.queued += inserted;
    this.#wake('commit');
  }

  /** Ends the current wait if `reason` is one it waits for. */
  #wake(reason: WakeReason): void {
    const wait = this.#wait;
    if (wait.kind === 'idle' || (wait.kind === 'paused' && (reason === 'resume' || reason === 'stop'))) {
      wait.end();
    }
  }

  /** Waits `ms`, or less when a commit, an option change, resume() or stop() wakes it. */
  #sleep(ms: number): Promise<void> {
    return this.#waitFor('idle', ms);
  }

  /**
   * Sleeps without waking on commits (after a failure: new data does not make InfluxDB come back);
   * stop() and resume() end it.
   */
  #pause(ms: number): Promise<void> {
    return this.#waitFor('paused', ms);
  }

  #waitFor(kind: 'idle' | 'paused', ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const end = (): void => {
        clearTimeout(timer);
        if (this.#wait.kind !== 'none' && this.#wait.end === end) this.#wait = { kind: 'none' };
        resolve();
      };
      const timer = setTimeout(end, Math.max(0, ms));
      timer.unref();
      this.#wait = { kind, end };
    });
  }

  async #run(signal: AbortSignal): Promise<void> {
    /** The next batch, read and formatted while the current one was on the wire. */
    let prefetched: Promise<Batch> | null = null;
    while (!this.#stopping) {
      const trialIn = this.policy.msUntilTrial();
      if (trialIn > 0) {
        // The breaker is open: no request until it allows a trial.
        prefetched = null;
        await this.#pause(trialIn);
        continue;
      }
      let batch: Batch;
      try {
        batch = await (prefetched ?? this.#readBatch(this.#backlog.cursor));
      } catch (error) {
        prefetched = null;
        if (this.#stopping) break;
        this.logger.warn({ err: error }, 'could not read the outbox; trying again');
        await this.#pause(this.#holdDelay(1, error));
        continue;
      }
      prefetched = null;
      // Formatted before a reload changed the tags: format it again.
      if (batch.tags !== this.#options.tags) batch = this.#prepare(batch.read);
      if (batch.lines.length === 0) {
        await this.#sleep(this.#options.flushIntervalMs);
        continue;
      }
      this.#backlog.oldestPendingMs = batch.committedMs[0] ?? this.#backlog.oldestPendingMs;
      const end = batch.after[batch.after.length - 1] as OutboxCursor;
      // Read and format the next batch while this one is on the wire; used only if this one is delivered.
      const next = batch.lines.length >= this.#options.batchSize ? this.#readBatch(end) : null;
      next?.catch(() => undefined);
      const outcome = await this.#deliver(batch, 0, batch.lines.length, signal);
      this.#saveCursor();
      if (outcome.ok) {
        this.#delivered();
        prefetched = next;
        continue;
      }
      if (this.#stopping) break;
      await this.#pause(this.#holdDelay(this.#failed(outcome.error), outcome.error));
    }
  }

  /** A batch went through: an outage, if any, is over (failing → healthy). */
  #delivered(): void {
    const health = this.#health;
    if (health.kind !== 'failing') return;
    this.logger.info(
      { failedBatches: health.failures, outageMs: Date.now() - health.sinceMs },
      'InfluxDB writes recovered',
    );
    this.#health = { kind: 'healthy' };
  }

  /** A batch failed for good (healthy → failing, or one more failure). Returns the failures in a row. */
  #failed(error: unknown): number {
    const previous = this.#health;
    const failures = previous.kind === 'failing' ? previous.failures + 1 : 1;
    const nowMs = Date.now();
    this.#health = {
      kind: 'failing',
      failures,
      sinceMs: previous.kind === 'failing' ? previous.sinceMs : nowMs,
    };
    this.#counters.failedBatches++;
    const lastError: ForwarderError = {
      message: error instanceof Error ? error.message : String(error),
      code: classifyError(error).code,
      atMs: nowMs,
    };
    this.#counters.lastError = lastError;
    if (failures === 1) {
      this.logger.warn(
        { code: lastError.code, err: error, queued: this.#backlog.queued },
        'InfluxDB write failed; the readings stay in SQLite and are sent when it is back',
      );
    } else {
      this.logger.debug({ code: lastError.code, attempt: failures }, 'InfluxDB write failed again');
    }
    return failures;
  }

  async #readBatch(after: OutboxCursor): Promise<Batch> {
    return this.#prepare(await this.source.readOutbox(after, this.#options.batchSize));
  }

  /** Lines for a read; readings of a channel SQLite does not know are marked (cannot be tagged). */
  #prepare(read: OutboxRead): Batch {
    const tags = this.#options.tags;
    const prefixes = new Map<number, string>();
    for (const channel of read.channels) prefixes.set(channel.id, seriesPrefix(channel, tags));
    const values = read.values;
    const lines: string[] = new Array(read.count);
    const after: OutboxCursor[] = new Array(read.count);
    const committedMs: number[] = new Array(read.count);
    const unknown = new Set<number>();
    let i = 0;
    for (const slice of read.slices) {
      for (let k = 0; k < slice.count; k++, i++) {
        const at = i * OUTBOX_COLUMNS;
        const prefix = prefixes.get(values[at] as number);
        if (prefix === undefined) unknown.add(i);
        lines[i] =
          (prefix ?? '') +
          fieldsAndTime({
            tsMs: values[at + 1] as number,
            powerMw: values[at + 2] as number,
            voltageMv: absentAsNull(values[at + 3] as number),
            currentMa: absentAsNull(values[at + 4] as number),
            totalWh: values[at + 5] as number,
          });
        after[i] = { seq: slice.seq, position: slice.start + k + 1 };
        committedMs[i] = slice.committedMs;
      }
    }
    return { read, lines, after, committedMs, unknown, tags };
  }

  /** Sends readings [from, to) of the batch; splits on a rejection. Advances the cursor as it goes. */
  async #deliver(
    batch: Batch,
    from: number,
    to: number,
    signal: AbortSignal,
  ): Promise<{ ok: true } | { ok: false; error: unknown }> {
    if (batch.unknown.size > 0) {
      // Rare (a channel row is never deleted): send around the untaggable readings one range at a time.
      for (let i = from; i < to; i++) {
        if (!batch.unknown.has(i)) continue;
        if (i > from) {
          const before = await this.#deliver({ ...batch, unknown: new Set() }, from, i, signal);
          if (!before.ok) return before;
        }
        this.#reject(batch, i, 'the reading refers to a channel missing from SQLite');
        from = i + 1;
      }
      if (from >= to) return { ok: true };
      batch = { ...batch, unknown: new Set() };
    }
    const lines = from === 0 && to === batch.lines.length ? batch.lines : batch.lines.slice(from, to);
    try {
      // The writer is looked up per attempt: after setLineWriter() a retry goes to the new one.
      await this.policy.execute((attempt) => this.#writer.write(lines, attempt), signal);
    } catch (error) {
      if (this.#stopping && !isOpenCircuitError(error)) return { ok: false, error };
      // The client says whether InfluxDB refused the points themselves (malformed, too large):
      // then a smaller batch isolates the bad point. Any other failure keeps the batch whole.
      if (!isStorageError(error) || !error.rejectsContent) return { ok: false, error };
      if (to - from === 1) {
        this.#reject(batch, from, error.message);
        return { ok: true };
      }
      this.#counters.splits++;
      const mid = from + Math.ceil((to - from) / 2);
      const first = await this.#deliver(batch, from, mid, signal);
      if (!first.ok) return first;
      return this.#deliver(batch, mid, to, signal);
    }
    this.#counters.batches++;
    this.#counters.written += to - from;
    this.#counters.lastWriteAtMs = Date.now();
    this.#advance(batch, to - 1, to - from);
    return { ok: true };
  }

  #reject(batch: Batch, index: number, why: string): void {
    const rejected = ++this.#counters.rejected;
    const line = batch.lines[index] ?? '';
    // The line holds names and numbers only (never the token); cut it short for the log.
    this.logger.error(
      { point: line.slice(0, 300), reason: why.slice(0, 300), rejected },
      'InfluxDB rejected a point as malformed: counted as rejected and skipped, never retried',
    );
    this.#advance(batch, index, 1);
  }

  #advance(batch: Batch, lastIndex: number, delivered: number): void {
    const backlog = this.#backlog;
    backlog.cursor = batch.after[lastIndex] as OutboxCursor;
    backlog.queued = Math.max(0, backlog.queued - delivered);
    const next = batch.committedMs[lastIndex + 1];
    if (backlog.queued === 0) backlog.oldestPendingMs = null;
    else if (next !== undefined) backlog.oldestPendingMs = next;
  }

  /** Persists the cursor (one save at a time, in order); a failed save is retried with the next one. */
  #saveCursor(): void {
    const persisted = this.#persisted;
    const cursor = this.#backlog.cursor;
    const saved = (): boolean =>
      cursor.seq === persisted.cursor.seq && cursor.position === persisted.cursor.position;
    if (saved()) return;
    persisted.saves = persisted.saves.then(async () => {
      if (saved()) return;
      try {
        await this.source.saveCursor(INFLUX_SINK, cursor);
        persisted.cursor = cursor;
      } catch (error) {
        // Harmless for data: after a restart the forwarder resends from the older cursor.
        this.logger.warn({ err: error }, 'could not save the InfluxDB cursor; will try with the next batch');
      }
    });
  }

  /** How long to wait after a batch failed for good: the breaker's trial time, a Retry-After, or backoff. */
  #holdDelay(failures: number, error: unknown): number {
    const maxHold = this.#options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    if (isOpenCircuitError(error)) return Math.max(1, this.policy.msUntilTrial());
    const backoff = Math.min(maxHold, 500 * 2 ** Math.min(failures - 1, 20));
    const retryAfter = classifyError(error).retryAfterMs ?? 0;
    return Math.max(backoff, Math.min(retryAfter, maxHold * 10));
  }
}
