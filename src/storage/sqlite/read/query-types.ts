/** The queries the reader pool takes: devices named as the export names them (an id or an alias). */
import type { DailyEnergyQuery, SeriesQuery } from './dashboard-queries.js';

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

export interface ReaderOpenInfo {
  /** The worker's thread id: tells connections apart (a recycled connection gets a new one). */
  readonly threadId: number;
}
