/**
 * The reader pool's connections: a worker connection (a reader worker with its own read-only
 * connection, reader-service.ts) or, when no worker can start, the single fallback connection on
 * the main thread. The pool lends them out; each serves one caller at a time.
 */
import { Worker } from 'node:worker_threads';
import { toStorageError } from '../errors.js';
import { WorkerClient } from '../rpc/client.js';
import type { DailyEnergyResult, SeriesResult } from './dashboard-queries.js';
import type { EnergyReport, EnergyReportQuery, EnergyReportSettings } from './energy-report.js';
import type { ExportChunk, ExportFormat } from './export-format.js';
import type { DashboardEnergyQuery, DashboardSeriesQuery, ExportQuery } from './query-types.js';
import type { StoredChannel } from './reader.js';
import type { ReaderHandlers } from './reader-service.js';
import { ReaderSession } from './reader-session.js';

/** One connection of the pool: a worker (or, in the fallback, the main thread) with its session. */
export interface ReaderConnection {
  /** The pool's number for it, in opening order. */
  readonly id: number;
  /** The worker's thread id; null for the main-thread fallback. */
  readonly threadId: number | null;
  readonly openedAtMs: number;
  /** The worker died: the pool closes it instead of lending it again. */
  readonly broken: boolean;
  ping(): Promise<number>;
  quickCheck(): Promise<string[]>;
  channels(): Promise<StoredChannel[]>;
  series(query: DashboardSeriesQuery): Promise<SeriesResult>;
  dailyEnergy(query: DashboardEnergyQuery): Promise<DailyEnergyResult>;
  exportOpen(query: ExportQuery, format: ExportFormat, chunkRows: number): Promise<ExportChunk>;
  exportNext(): Promise<ExportChunk>;
  exportClose(): Promise<void>;
  energy(query: EnergyReportQuery, settings: EnergyReportSettings): Promise<EnergyReport>;
  close(): Promise<void>;
}

/** A reader worker: its death fails its calls with a transient error (the pool opens another). */
export class WorkerConnection implements ReaderConnection {
  readonly #client: WorkerClient<ReaderHandlers>;
  #threadId: number | null = null;

  private constructor(
    readonly id: number,
    readonly openedAtMs: number,
    url: URL,
  ) {
    this.#client = new WorkerClient(new Worker(url), { name: 'reader', deathIsTransient: true });
  }

  static async open(
    id: number,
    openedAtMs: number,
    url: URL,
    path: string,
    busyTimeoutMs: number,
  ): Promise<WorkerConnection> {
    const connection = new WorkerConnection(id, openedAtMs, url);
    try {
      const info = await connection.#client.call('open', { path, busyTimeoutMs });
      connection.#threadId = info.threadId;
      return connection;
    } catch (error) {
      await connection.#client.terminate();
      throw error;
    }
  }

  get threadId(): number | null {
    return this.#threadId;
  }

  get broken(): boolean {
    return this.#client.gone;
  }

  ping(): Promise<number> {
    return this.#client.call('ping');
  }

  quickCheck(): Promise<string[]> {
    return this.#client.call('quickCheck');
  }

  channels(): Promise<StoredChannel[]> {
    return this.#client.call('channels');
  }

  series(query: DashboardSeriesQuery): Promise<SeriesResult> {
    return this.#client.call('series', { query });
  }

  dailyEnergy(query: DashboardEnergyQuery): Promise<DailyEnergyResult> {
    return this.#client.call('dailyEnergy', { query });
  }

  exportOpen(query: ExportQuery, format: ExportFormat, chunkRows: number): Promise<ExportChunk> {
    return this.#client.call('exportOpen', { query, format, chunkRows });
  }

  exportNext(): Promise<ExportChunk> {
    return this.#client.call('exportNext');
  }

  exportClose(): Promise<void> {
    return this.#client.call('exportClose');
  }

  energy(query: EnergyReportQuery, settings: EnergyReportSettings): Promise<EnergyReport> {
    return this.#client.call('energy', { query, settings });
  }

  async close(): Promise<void> {
    if (!this.#client.gone) {
      try {
        await this.#client.call('close');
      } catch {
        // Closing anyway.
      }
    }
    await this.#client.terminate();
  }
}

/** The fallback: one session on the main thread (blocks the event loop while it reads). */
export class DirectConnection implements ReaderConnection {
  readonly threadId = null;
  readonly broken = false;
  readonly #session: ReaderSession;

  constructor(
    readonly id: number,
    readonly openedAtMs: number,
    path: string,
    busyTimeoutMs: number,
  ) {
    this.#session = new ReaderSession(path, busyTimeoutMs);
  }

  ping(): Promise<number> {
    return this.#run(() => this.#session.ping());
  }

  quickCheck(): Promise<string[]> {
    return this.#run(() => this.#session.quickCheck());
  }

  channels(): Promise<StoredChannel[]> {
    return this.#run(() => this.#session.channels());
  }

  series(query: DashboardSeriesQuery): Promise<SeriesResult> {
    return this.#run(() => this.#session.series(query));
  }

  dailyEnergy(query: DashboardEnergyQuery): Promise<DailyEnergyResult> {
    return this.#run(() => this.#session.dailyEnergy(query));
  }

  exportOpen(query: ExportQuery, format: ExportFormat, chunkRows: number): Promise<ExportChunk> {
    return this.#run(() => this.#session.exportOpen(query, format, chunkRows));
  }

  exportNext(): Promise<ExportChunk> {
    return this.#run(() => this.#session.exportNext());
  }

  exportClose(): Promise<void> {
    return this.#run(() => this.#session.exportClose());
  }

  energy(query: EnergyReportQuery, settings: EnergyReportSettings): Promise<EnergyReport> {
    return this.#run(() => this.#session.energy(query, settings));
  }

  close(): Promise<void> {
    return this.#run(() => this.#session.close());
  }

  async #run<T>(fn: () => T): Promise<T> {
    // Yield first, so a chunked export lets other work in between its chunks.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      return fn();
    } catch (error) {
      throw toStorageError(error, 'reader');
    }
  }
}
