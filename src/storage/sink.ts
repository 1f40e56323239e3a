import type { Reading } from '../domain/reading.js';

/** What a sink reports for one committed batch. */
export interface SinkWriteResult {
  /** Readings newly stored. */
  readonly inserted: number;
  /** Readings that were already stored (a replay): acknowledged, not stored twice. */
  readonly duplicates: number;
  /** Readings the sink refused as malformed (logged by the sink, never stored). */
  readonly invalid?: number;
}

/**
 * Where the writer puts batches. One call = one transaction: it resolves once the batch is durable
 * and rejects (with a StorageError saying whether a retry can help) having stored nothing.
 */
export interface ReadingSink {
  writeBatch(readings: readonly Reading[]): Promise<SinkWriteResult>;
}
