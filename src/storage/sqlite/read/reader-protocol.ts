import type { SerializedStorageError } from '../errors.js';
import type { DailyEnergyQuery, DailyEnergyResult, SeriesQuery, SeriesResult } from './dashboard-queries.js';
import type { EnergyReport, EnergyReportQuery, EnergyReportSettings } from './energy-report.js';
import type { ExportChunk, ExportFormat } from './export-format.js';
import type { StoredChannel } from './reader.js';

/** Messages between a pooled reader connection (main thread) and its reader worker. */

export interface ExportQuery {
  /** Inclusive lower bound, UTC ms. */
  readonly fromMs?: number;
  /** Exclusive upper bound, UTC ms. */
  readonly toMs?: number;
  /** A plug's id, a strip's id (all its outlets), an outlet's child id, or an alias. All channels when absent. */
  readonly device?: string;
}

/** A series query naming its channels as the export does (a device id or alias; all when absent). */
export type DashboardSeriesQuery = Omit<SeriesQuery, 'channels'> & { readonly device?: string };
export type DashboardEnergyQuery = Omit<DailyEnergyQuery, 'channels'> & { readonly device?: string };

export type ReaderRequest =
  | { readonly id: number; readonly op: 'open'; readonly path: string; readonly busyTimeoutMs: number }
  | { readonly id: number; readonly op: 'ping' }
  | { readonly id: number; readonly op: 'quickCheck' }
  | { readonly id: number; readonly op: 'channels' }
  | {
      readonly id: number;
      readonly op: 'exportOpen';
      readonly query: ExportQuery;
      readonly format: ExportFormat;
      readonly chunkRows: number;
    }
  | { readonly id: number; readonly op: 'series'; readonly query: DashboardSeriesQuery }
  | { readonly id: number; readonly op: 'dailyEnergy'; readonly query: DashboardEnergyQuery }
  | {
      readonly id: number;
      readonly op: 'energy';
      readonly query: EnergyReportQuery;
      readonly settings: EnergyReportSettings;
    }
  | { readonly id: number; readonly op: 'exportNext' }
  | { readonly id: number; readonly op: 'exportClose' }
  | { readonly id: number; readonly op: 'close' };

export interface ReaderOpenInfo {
  /** The worker's thread id: tells connections apart (a recycled connection gets a new one). */
  readonly threadId: number;
}

export type ReaderResultOf = {
  open: ReaderOpenInfo;
  /** Channels in the database (the ping query). */
  ping: number;
  quickCheck: string[];
  channels: StoredChannel[];
  series: SeriesResult;
  dailyEnergy: DailyEnergyResult;
  exportOpen: ExportChunk;
  exportNext: ExportChunk;
  exportClose: undefined;
  energy: EnergyReport;
  close: undefined;
};

export type ReaderResponse =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedStorageError };
