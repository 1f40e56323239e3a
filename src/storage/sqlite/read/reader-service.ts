/**
 * What a reader worker serves: the handler map of one read-only connection of the reader pool (its
 * protocol, see rpc/messages.ts). Calls are handled one at a time; export text is built here and its
 * bytes transferred, not copied.
 */
import { KasaStorageCode, StorageError } from '../../errors.js';
import { transferring } from '../rpc/messages.js';
import type { EnergyReportQuery, EnergyReportSettings } from './energy-report.js';
import type { ExportChunk, ExportFormat } from './export-format.js';
import type { DashboardEnergyQuery, DashboardSeriesQuery, ExportQuery } from './query-types.js';
import { ReaderSession } from './reader-session.js';

/** An export chunk whose bytes move to the main thread. */
function chunkReply(chunk: ExportChunk) {
  return transferring(chunk, [chunk.bytes.buffer]);
}

export class ReaderService {
  #session: ReaderSession | null = null;

  constructor(
    /** The worker's thread id: tells connections apart (a recycled connection gets a new one). */
    private readonly threadId: number,
  ) {}

  readonly handlers = {
    open: (args: {
      readonly path: string;
      readonly busyTimeoutMs: number;
    }): { readonly threadId: number } => {
      this.#session?.close();
      this.#session = new ReaderSession(args.path, args.busyTimeoutMs);
      return { threadId: this.threadId };
    },
    /** Channels in the database (the ping query). */
    ping: () => this.#open().ping(),
    quickCheck: () => this.#open().quickCheck(),
    channels: () => this.#open().channels(),
    series: ({ query }: { readonly query: DashboardSeriesQuery }) => this.#open().series(query),
    dailyEnergy: ({ query }: { readonly query: DashboardEnergyQuery }) => this.#open().dailyEnergy(query),
    exportOpen: (args: {
      readonly query: ExportQuery;
      readonly format: ExportFormat;
      readonly chunkRows: number;
    }) => chunkReply(this.#open().exportOpen(args.query, args.format, args.chunkRows)),
    exportNext: () => chunkReply(this.#open().exportNext()),
    exportClose: (): void => this.#open().exportClose(),
    energy: (args: { readonly query: EnergyReportQuery; readonly settings: EnergyReportSettings }) =>
      this.#open().energy(args.query, args.settings),
    close: (): void => {
      this.#session?.close();
      this.#session = null;
    },
  };

  #open(): ReaderSession {
    if (this.#session === null) {
      throw new StorageError('reader connection is not open', {
        code: KasaStorageCode.notOpen,
        transient: false,
      });
    }
    return this.#session;
  }
}

/** A reader worker's protocol: its handler map, from which the pool's calls are typed. */
export type ReaderHandlers = ReaderService['handlers'];
