/**
 * The reader pool: read-only SQLite connections for the HTTP API, exports and health checks, each in
 * a worker thread of its own (reader-worker.js), with the original system's knobs:
 *
 * - `size`: connections kept open while idle;
 * - `maxOverflow`: extra connections opened under load and closed once they are idle again
 *   (at most size + maxOverflow at once);
 * - `timeoutMs`: how long `acquire` waits for a free connection before PoolTimeoutError;
 * - `recycleMs`: a connection older than this is closed at checkout and a new one opened;
 * - `idleTimeoutMs`: a worker connection nobody borrowed for this long is closed, kept ones
 *   included, so an idle daemon holds no reader isolate (about 3-9 MiB each) and the next request
 *   starts one (tens of ms). The health check's ping every 30 s then costs one short-lived worker
 *   instead of a resident one.
 *
 * If no worker can be started, the pool falls back to one synchronous connection on the main thread
 * (mode `single`), and says so in its stats so /health can report it. The writer keeps its own
 * connection (SqliteStore); nothing here writes.
 */
import type { Logger } from '../../../log/logger.js';
import { KasaStorageCode, StorageError } from '../../errors.js';
import { toStorageError } from '../errors.js';
import type { DailyEnergyResult, SeriesResult } from './dashboard-queries.js';
import type { EnergyReport, EnergyReportQuery, EnergyReportSettings } from './energy-report.js';
import type { ExportFormat } from './export-format.js';
import {
  POOL_EXPORTS_BUSY_CODE,
  type PoolMode,
  type PoolState,
  type PoolStats,
  PoolTimeoutError,
  READER_IDLE_TIMEOUT_MS,
  type ReaderPoolOptions,
  validatePoolOptions,
} from './pool-types.js';
import type { DashboardEnergyQuery, DashboardSeriesQuery, ExportQuery } from './query-types.js';
import type { StoredChannel } from './reader.js';
import { DirectConnection, type ReaderConnection, WorkerConnection } from './reader-connections.js';

export {
  POOL_EXPORTS_BUSY_CODE,
  POOL_TIMEOUT_CODE,
  type PoolMode,
  type PoolStats,
  PoolTimeoutError,
  READER_IDLE_TIMEOUT_MS,
  type ReaderPoolOptions,
  validatePoolOptions,
} from './pool-types.js';
export type { DashboardEnergyQuery, DashboardSeriesQuery, ExportQuery } from './query-types.js';
export type { ReaderConnection } from './reader-connections.js';

export interface PoolLease {
  readonly connection: ReaderConnection;
  /** Gives the connection back (idempotent). */
  release(): void;
}

interface Waiter {
  readonly resolve: (connection: ReaderConnection) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly sinceMs: number;
}

const DEFAULT_CHUNK_ROWS = 4096;
/** The fallback blocks the event loop: smaller chunks, and a short lock wait. */
const DIRECT_CHUNK_ROWS = 512;
const DIRECT_BUSY_TIMEOUT_MS = 100;

export class ReaderPool {
  readonly name = 'readers';
  readonly #options: ReaderPoolOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  #state: PoolState = { kind: 'new' };
  readonly #idle: ReaderConnection[] = [];
  readonly #inUse = new Set<ReaderConnection>();
  #opening = 0;
  readonly #waiters: Waiter[] = [];
  /** Bumped by reopen(): connections of an older generation are closed instead of reused. */
  #generation = 0;
  readonly #generationOf = new WeakMap<ReaderConnection, number>();
  #nextId = 1;
  /** suspend(): no connection is lent or opened; requests wait (bounded by the timeout). */
  #suspended = false;
  #peakInUse = 0;
  #acquisitions = 0;
  #opened = 0;
  #closed = 0;
  #recycled = 0;
  #timeouts = 0;
  #failedOpens = 0;
  #maxWaitMs = 0;
  #exports = 0;
  #exportsRefused = 0;
  readonly #closing = new Set<Promise<void>>();
  /** When each idle connection was last given back (monotonic ms), for idleTimeoutMs. */
  readonly #idleSince = new WeakMap<ReaderConnection, number>();
  #idleTimer: NodeJS.Timeout | null = null;
  #idleClosed = 0;
  /** The main-thread connection ping() uses; null until the first ping, and after reopen/suspend/stop. */
  #pingConnection: DirectConnection | null = null;

  constructor(options: ReaderPoolOptions, logger: Logger) {
    validatePoolOptions(options);
    this.#options = options;
    this.#logger = logger;
    this.#now = options.now ?? Date.now;
  }

  get mode(): PoolMode {
    return this.#state.kind;
  }

  /**
   * Opens the first connection. When no worker can start, falls back to one connection on the main
   * thread; when the database cannot be read at all, the pool stays up (mode `pool`) and every
   * request reports the database's error. Never throws for either.
   */
  async start(): Promise<void> {
    if (this.#state.kind !== 'new') return;
    let reason: string;
    try {
      const connection = await this.#openWorker();
      this.#state = { kind: 'pool' };
      this.#idle.push(connection);
      this.#markIdle(connection);
      return;
    } catch (error) {
      const storage = toStorageError(error, 'reader pool');
      if (storage.code !== KasaStorageCode.workerExited) {
        // The worker ran, the database did not open: a pool would not do better on one thread.
        this.#state = { kind: 'pool' };
        this.#logger.warn({ err: storage }, 'reader pool: the database cannot be read yet');
        return;
      }
      reason = `reader workers cannot start (${storage.message})`;
    }
    try {
      const connection = this.#openDirect();
      this.#state = { kind: 'single', reason };
      this.#idle.push(connection);
      this.#logger.warn({ reason }, 'reader pool could not start: using one connection on the main thread');
    } catch (error) {
      const unavailable = `${reason}; a main-thread connection failed too: ${toStorageError(error, 'reader').message}`;
      this.#state = { kind: 'unavailable', reason: unavailable };
      this.#logger.error({ reason: unavailable }, 'reader pool unavailable');
    }
  }

  /** Borrows a connection: an idle one, a new one (up to size + maxOverflow), or the next one freed. */
  async acquire(): Promise<PoolLease> {
    this.#acquisitions++;
    const connection = await this.#checkout();
    let released = false;
    return {
      connection,
      release: () => {
        if (released) return;
        released = true;
        this.#release(connection);
      },
    };
  }

  /** Runs `fn` on a borrowed connection and gives it back. */
  async use<T>(fn: (connection: ReaderConnection) => Promise<T>): Promise<T> {
    const lease = await this.acquire();
    try {
      return await fn(lease.connection);
    } finally {
      lease.release();
    }
  }

  /**
   * A query on the schema (channel count) and how long the round trip took, in ms. The health check
   * asks every 30 s: on a connection of the main thread kept for this alone (a count over the
   * channels table takes microseconds and never waits for a lock), so a daemon nobody reads from
   * starts no reader worker (an isolate, about 10 MiB) twice a minute. When that connection cannot
   * answer (a lock in a DELETE-journal database, a file being replaced), a pool connection does, and
   * its answer or error is the check's.
   */
  async ping(): Promise<{ readonly channels: number; readonly ms: number }> {
    const started = performance.now();
    if (this.#state.kind === 'pool' && !this.#suspended) {
      try {
        this.#pingConnection ??= new DirectConnection(0, this.#now(), this.#options.path, 0);
        const channels = await this.#pingConnection.ping();
        return { channels, ms: performance.now() - started };
      } catch {
        this.#closePingConnection();
      }
    }
    const channels = await this.use((c) => c.ping());
    return { channels, ms: performance.now() - started };
  }

  #closePingConnection(): void {
    const connection = this.#pingConnection;
    this.#pingConnection = null;
    connection?.close().catch(() => undefined);
  }

  /** `PRAGMA quick_check` (on a connection of the worker's own): ['ok'] when sound. */
  quickCheck(): Promise<string[]> {
    return this.use((c) => c.quickCheck());
  }

  channels(): Promise<StoredChannel[]> {
    return this.use((c) => c.channels());
  }

  /** The dashboard's power series (see dashboard-queries.ts). */
  series(query: DashboardSeriesQuery): Promise<SeriesResult> {
    return this.use((c) => c.series(query));
  }

  /** Energy per local day (see dashboard-queries.ts). */
  dailyEnergy(query: DashboardEnergyQuery): Promise<DailyEnergyResult> {
    return this.use((c) => c.dailyEnergy(query));
  }

  /**
   * Exports that may hold a connection at once: all but one, so a short query (the health checks'
   * own) always finds a connection however many clients stream or stall; with a single connection,
   * one export.
   */
  get exportLimit(): number {
    return Math.max(1, this.#limit() - 1);
  }

  /** Exports streaming (or waiting for a connection) now, and those refused so far for the limit. */
  exportStats(): { readonly running: number; readonly refused: number } {
    return { running: this.#exports, refused: this.#exportsRefused };
  }

  /**
   * Streams readings as export text (CSV or a JSON array) to `sink`, chunk by chunk; the next chunk
   * is read only after `sink` resolved, so a slow client holds back the reading, not memory. An
   * unknown or ambiguous device rejects before the first chunk. When `exportLimit` exports run
   * already, rejects at once (transient, POOL_EXPORTS_BUSY_CODE) instead of taking the connection
   * the checks need; a stalled client is the caller's to cut (the HTTP server's write timeout).
   */
  async exportReadings(
    query: ExportQuery,
    format: ExportFormat,
    sink: (bytes: Uint8Array) => Promise<void> | void,
  ): Promise<{ readonly rows: number }> {
    const limit = this.exportLimit;
    if (this.#exports >= limit) {
      this.#exportsRefused++;
      throw new StorageError(
        `${this.#exports} exports are running, as many as may at once (all reader connections but one, which is kept for the health checks); try again later`,
        { code: POOL_EXPORTS_BUSY_CODE, transient: true },
      );
    }
    this.#exports++;
    try {
      return await this.#streamExport(query, format, sink);
    } finally {
      this.#exports--;
    }
  }

  #streamExport(
    query: ExportQuery,
    format: ExportFormat,
    sink: (bytes: Uint8Array) => Promise<void> | void,
  ): Promise<{ readonly rows: number }> {
    return this.use(async (connection) => {
      const chunkRows =
        connection.threadId === null ? DIRECT_CHUNK_ROWS : (this.#options.chunkRows ?? DEFAULT_CHUNK_ROWS);
      let chunk = await connection.exportOpen(query, format, chunkRows);
      let rows = 0;
      try {
        for (;;) {
          rows += chunk.rows;
          if (chunk.bytes.byteLength > 0) await sink(chunk.bytes);
          if (chunk.done) return { rows };
          chunk = await connection.exportNext();
        }
      } finally {
        if (!chunk.done && !connection.broken) await connection.exportClose().catch(() => undefined);
      }
    });
  }

  /** Energy and cost per channel and period (GET /api/energy, the cost metric), in a reader worker. */
  energyReport(query: EnergyReportQuery, settings: EnergyReportSettings): Promise<EnergyReport> {
    return this.use((connection) => connection.energy(query, settings));
  }

  /**
   * Closes every connection (idle ones now, borrowed ones when given back), so the next requests
   * open the database afresh; after a fallback, tries the workers again.
   */
  async reopen(): Promise<void> {
    const kind = this.#state.kind;
    if (kind === 'stopped') return;
    this.#generation++;
    this.#closePingConnection();
    for (const connection of this.#idle.splice(0)) this.#close(connection);
    if (kind === 'single' || kind === 'unavailable' || kind === 'new') {
      this.#state = { kind: 'new' };
      await this.start();
    }
    this.#dispatch();
  }

  /**
   * Closes every connection now, borrowed ones included (their requests fail), and holds new
   * requests until resume(): while the database file is moved aside no connection may have it open
   * (SQLite finds its -wal and -shm by name, so a connection to a renamed file would touch the new
   * file's).
   */
  async suspend(): Promise<void> {
    if (this.#state.kind === 'stopped') return;
    this.#suspended = true;
    this.#generation++;
    this.#closePingConnection();
    for (const connection of [...this.#idle.splice(0), ...this.#inUse]) this.#close(connection);
    await Promise.all([...this.#closing]);
  }

  /** Lends connections again (opened afresh) after suspend(). */
  async resume(): Promise<void> {
    this.#suspended = false;
    await this.reopen();
  }

  /** Closes every connection, borrowed ones included; waiting requests are refused. Idempotent. */
  async stop(): Promise<void> {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#closePingConnection();
    if (this.#state.kind !== 'stopped') {
      this.#state = { kind: 'stopped', reason: this.#fallbackReason() };
      for (const waiter of this.#waiters.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(this.#notOpen());
      }
      for (const connection of [...this.#idle.splice(0), ...this.#inUse]) this.#close(connection);
    }
    await Promise.all([...this.#closing]);
  }

  stats(): PoolStats {
    return {
      mode: this.#state.kind,
      fallbackReason: this.#fallbackReason(),
      size: this.#options.size,
      maxOverflow: this.#options.maxOverflow,
      timeoutMs: this.#options.timeoutMs,
      recycleMs: this.#options.recycleMs,
      inUse: this.#inUse.size,
      idle: this.#idle.length,
      waiting: this.#waiters.length,
      open: this.#total(),
      peakInUse: this.#peakInUse,
      acquisitions: this.#acquisitions,
      opened: this.#opened,
      closed: this.#closed,
      recycled: this.#recycled,
      idleClosed: this.#idleClosed,
      timeouts: this.#timeouts,
      failedOpens: this.#failedOpens,
      maxWaitMs: Math.round(this.#maxWaitMs),
    };
  }

  /** Why the pool runs on one connection (or none); null when it runs as configured. */
  #fallbackReason(): string | null {
    return 'reason' in this.#state ? this.#state.reason : null;
  }

  /** Connections at once: size + maxOverflow, or 1 in the fallback. */
  #limit(): number {
    return this.#state.kind === 'single' ? 1 : this.#options.size + this.#options.maxOverflow;
  }

  /** Idle connections kept: size, or 1 in the fallback. */
  #keep(): number {
    return this.#state.kind === 'single' ? 1 : this.#options.size;
  }

  #total(): number {
    return this.#inUse.size + this.#idle.length + this.#opening;
  }

  #notOpen(): StorageError {
    const reason = this.#fallbackReason();
    return new StorageError(`the reader pool is ${this.#state.kind}${reason === null ? '' : `: ${reason}`}`, {
      code: KasaStorageCode.notOpen,
      transient: false,
    });
  }

  #checkout(): Promise<ReaderConnection> {
    if (this.#state.kind !== 'pool' && this.#state.kind !== 'single') return Promise.reject(this.#notOpen());
    if (!this.#suspended) {
      const idle = this.#takeIdle();
      if (idle !== null) {
        this.#lend(idle);
        return Promise.resolve(idle);
      }
      if (this.#total() < this.#limit()) return this.#openAndLend();
    }
    const sinceMs = performance.now();
    return new Promise<ReaderConnection>((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        this.#timeouts++;
        reject(
          new PoolTimeoutError(
            `no reader connection free within ${this.#options.timeoutMs} ms (${this.#inUse.size} in use, pool size ${this.#options.size} + overflow ${this.#options.maxOverflow})`,
          ),
        );
      }, this.#options.timeoutMs);
      const waiter: Waiter = { resolve, reject, timer, sinceMs };
      this.#waiters.push(waiter);
    });
  }

  /** An idle connection fit to lend, closing broken, outdated and expired ones on the way. */
  #takeIdle(): ReaderConnection | null {
    while (this.#idle.length > 0) {
      const connection = this.#idle.shift() as ReaderConnection;
      if (connection.broken || this.#generationOf.get(connection) !== this.#generation) {
        this.#close(connection);
        continue;
      }
      if (this.#now() - connection.openedAtMs >= this.#options.recycleMs) {
        this.#recycled++;
        this.#logger.debug({ connection: connection.id }, 'reader connection recycled');
        this.#close(connection);
        continue;
      }
      return connection;
    }
    return null;
  }

  #lend(connection: ReaderConnection): void {
    this.#inUse.add(connection);
    if (this.#inUse.size > this.#peakInUse) this.#peakInUse = this.#inUse.size;
  }

  async #openAndLend(): Promise<ReaderConnection> {
    const generation = this.#generation;
    this.#opening++;
    let connection: ReaderConnection;
    try {
      connection = this.#state.kind === 'single' ? this.#openDirect() : await this.#openWorker();
    } catch (error) {
      this.#failedOpens++;
      throw toStorageError(error, 'opening a reader connection');
    } finally {
      this.#opening--;
    }
    if (this.#state.kind === 'stopped') {
      this.#close(connection);
      throw this.#notOpen();
    }
    if (this.#suspended || generation !== this.#generation) {
      // Opened while the file was being replaced: it may see the old one.
      this.#close(connection);
      throw new StorageError('the database is being reopened; try again', {
        code: KasaStorageCode.notOpen,
        transient: true,
      });
    }
    this.#lend(connection);
    // A failed or closed open may have left room for a waiter.
    this.#dispatch();
    return connection;
  }

  async #openWorker(): Promise<ReaderConnection> {
    const id = this.#nextId++;
    const connection = await WorkerConnection.open(
      id,
      this.#now(),
      this.#options.workerUrl ?? new URL('./reader-worker.js', import.meta.url),
      this.#options.path,
      this.#options.busyTimeoutMs ?? 5000,
    );
    this.#opened++;
    this.#generationOf.set(connection, this.#generation);
    return connection;
  }

  #openDirect(): ReaderConnection {
    const connection = new DirectConnection(
      this.#nextId++,
      this.#now(),
      this.#options.path,
      Math.min(this.#options.busyTimeoutMs ?? DIRECT_BUSY_TIMEOUT_MS, DIRECT_BUSY_TIMEOUT_MS),
    );
    this.#opened++;
    this.#generationOf.set(connection, this.#generation);
    return connection;
  }

  #release(connection: ReaderConnection): void {
    if (!this.#inUse.delete(connection)) return;
    const outdated = this.#generationOf.get(connection) !== this.#generation;
    if (this.#state.kind === 'stopped' || connection.broken || outdated) this.#close(connection);
    else {
      this.#idle.push(connection);
      this.#markIdle(connection);
    }
    this.#dispatch();
    // Overflow connections are closed once nobody waits for them.
    while (this.#idle.length > this.#keep()) this.#close(this.#idle.pop() as ReaderConnection);
  }

  /** Hands idle (or new) connections to waiting requests, oldest request first. */
  #dispatch(): void {
    while (this.#waiters.length > 0 && !this.#suspended) {
      const idle = this.#takeIdle();
      if (idle === null && this.#total() >= this.#limit()) return;
      const waiter = this.#waiters.shift() as Waiter;
      clearTimeout(waiter.timer);
      const waited = performance.now() - waiter.sinceMs;
      if (waited > this.#maxWaitMs) this.#maxWaitMs = waited;
      if (idle !== null) {
        this.#lend(idle);
        waiter.resolve(idle);
      } else {
        this.#openAndLend().then(waiter.resolve, waiter.reject);
      }
    }
  }

  #idleTimeoutMs(): number {
    return this.#options.idleTimeoutMs ?? READER_IDLE_TIMEOUT_MS;
  }

  #markIdle(connection: ReaderConnection): void {
    this.#idleSince.set(connection, performance.now());
    this.#armIdleSweep(this.#idleTimeoutMs());
  }

  /** Closes worker connections idle for idleTimeoutMs (the main-thread fallback costs no isolate). */
  #armIdleSweep(delayMs: number): void {
    const timeoutMs = this.#idleTimeoutMs();
    if (timeoutMs <= 0 || this.#idleTimer !== null || this.#state.kind !== 'pool') return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (this.#state.kind !== 'pool') return;
      const now = performance.now();
      let next = Number.POSITIVE_INFINITY;
      for (const connection of [...this.#idle]) {
        const idleMs = now - (this.#idleSince.get(connection) ?? now);
        if (idleMs >= timeoutMs) {
          this.#idle.splice(this.#idle.indexOf(connection), 1);
          this.#idleClosed++;
          this.#close(connection);
        } else {
          next = Math.min(next, timeoutMs - idleMs);
        }
      }
      if (Number.isFinite(next)) this.#armIdleSweep(next);
    }, delayMs);
    this.#idleTimer.unref();
  }

  #close(connection: ReaderConnection): void {
    this.#closed++;
    this.#inUse.delete(connection);
    const closing = connection
      .close()
      .catch((error: unknown) => this.#logger.debug({ err: error }, 'closing a reader connection failed'))
      .finally(() => this.#closing.delete(closing));
    this.#closing.add(closing);
  }
}
