/**
 * One read-only connection and the work done on it: what a reader worker runs, and what the pool's
 * single-connection fallback runs on the main thread. Synchronous (better-sqlite3).
 */
import { BetterSqlite3, type Db, openReadonly } from '../connection.js';
import { toStorageError } from '../errors.js';
import {
  type DailyEnergyQuery,
  type DailyEnergyResult,
  dailyEnergy,
  powerSeries,
  type SeriesQuery,
  type SeriesResult,
} from './dashboard-queries.js';
import {
  type EnergyReport,
  type EnergyReportQuery,
  type EnergyReportSettings,
  energyReport,
} from './energy-report.js';
import { type ExportChunk, ExportCursor, type ExportFormat } from './export-format.js';
import type { ExportQuery } from './query-types.js';
import { openReadingsReader, type ReadingsReader, type StoredChannel } from './reader.js';

export class ReaderSession {
  readonly #reader: ReadingsReader;
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  #export: ExportCursor | null = null;
  /** The dashboard's connection, opened on first use. */
  #dashboardDb: Db | null = null;

  constructor(path: string, busyTimeoutMs: number) {
    this.#path = path;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.#reader = openReadingsReader(path, { busyTimeoutMs });
  }

  /** A real query on the schema: how many channels the database knows. */
  ping(): number {
    return this.#reader.listChannels().length;
  }

  channels(): StoredChannel[] {
    return this.#reader.listChannels();
  }

  /**
   * `PRAGMA quick_check` on a connection of its own (read-only, closed afterwards): the problems
   * found, or ['ok'].
   */
  quickCheck(): string[] {
    let db: Db | undefined;
    try {
      db = new BetterSqlite3(this.#path, {
        readonly: true,
        fileMustExist: true,
        timeout: this.#busyTimeoutMs,
      });
      return (db.pragma('quick_check(20)') as { quick_check: string }[]).flatMap((row) =>
        row.quick_check.split('\n'),
      );
    } catch (error) {
      throw toStorageError(error, `quick_check of ${this.#path}`);
    } finally {
      db?.close();
    }
  }

  /** A device id or alias as the channel ids it selects (see ReadingsReader.resolveDevice). */
  resolve(device: string | undefined): string[] | undefined {
    return device === undefined ? undefined : this.#reader.resolveDevice(device);
  }

  /** Power of the selected channels over a range, bounded to `points` buckets each. */
  series(query: Omit<SeriesQuery, 'channels'> & { readonly device?: string }): SeriesResult {
    try {
      const channels = this.resolve(query.device);
      this.#dashboardDb ??= openReadonly(this.#path, this.#busyTimeoutMs);
      return powerSeries(this.#dashboardDb, { ...query, ...(channels === undefined ? {} : { channels }) });
    } catch (error) {
      throw toStorageError(error, `series from ${this.#path}`);
    }
  }

  /** Energy per local day of the selected channels. */
  dailyEnergy(query: Omit<DailyEnergyQuery, 'channels'> & { readonly device?: string }): DailyEnergyResult {
    try {
      const channels = this.resolve(query.device);
      return dailyEnergy(this.#path, this.#busyTimeoutMs, {
        ...query,
        ...(channels === undefined ? {} : { channels }),
      });
    } catch (error) {
      throw toStorageError(error, `daily energy from ${this.#path}`);
    }
  }

  /** Starts an export (ending one still open) and returns its first chunk. */
  exportOpen(query: ExportQuery, format: ExportFormat, chunkRows: number): ExportChunk {
    this.exportClose();
    try {
      const channels = query.device === undefined ? undefined : this.#reader.resolveDevice(query.device);
      const rows = this.#reader.readings({
        ...(query.fromMs === undefined ? {} : { fromMs: query.fromMs }),
        ...(query.toMs === undefined ? {} : { toMs: query.toMs }),
        ...(channels === undefined ? {} : { channels }),
      });
      this.#export = new ExportCursor(rows, format, chunkRows);
      return this.exportNext();
    } catch (error) {
      this.exportClose();
      throw toStorageError(error, `export from ${this.#path}`);
    }
  }

  exportNext(): ExportChunk {
    const cursor = this.#export;
    if (cursor === null) return { bytes: new Uint8Array(0), rows: 0, done: true };
    try {
      const chunk = cursor.next();
      if (chunk.done) this.#export = null;
      return chunk;
    } catch (error) {
      this.exportClose();
      throw toStorageError(error, `export from ${this.#path}`);
    }
  }

  /** Energy and cost per channel and period (its own read transaction on this file). */
  energy(query: EnergyReportQuery, settings: EnergyReportSettings): EnergyReport {
    try {
      return energyReport(this.#path, query, { ...settings, busyTimeoutMs: this.#busyTimeoutMs });
    } catch (error) {
      throw toStorageError(error, `energy report from ${this.#path}`);
    }
  }

  exportClose(): void {
    this.#export?.close();
    this.#export = null;
  }

  close(): void {
    this.exportClose();
    this.#dashboardDb?.close();
    this.#dashboardDb = null;
    this.#reader.close();
  }
}
