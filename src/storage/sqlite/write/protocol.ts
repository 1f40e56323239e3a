import type { Reading } from '../../../domain/reading.js';

/**
 * What travels between SqliteStore (main thread) and the writer worker besides the handler map's
 * own argument types (writer-service.ts). Readings travel columnar:
 * the distinct channel ids once per batch as strings, and the numbers in one Float64Array whose
 * buffer is transferred, not copied (integers up to 2^53 are exact in a double).
 */
export interface EncodedBatch {
  /** Distinct channel ids of the batch. */
  readonly channels: readonly string[];
  /** For each reading, its index into `channels`. */
  readonly channelIndex: Uint32Array<ArrayBuffer>;
  /**
   * Five columns of `count` values each: tsMs, powerMw, voltageMv, currentMa, totalWh. NaN marks a
   * value the plug did not measure (voltage, current); SQLite stores NULL for it.
   */
  readonly values: Float64Array<ArrayBuffer>;
  readonly count: number;
}

export const COLUMNS = 5;

export interface WriteResult {
  readonly inserted: number;
  readonly duplicates: number;
  /** The outbox row holding this batch's new readings; null when none (nothing new, or no outbox). */
  readonly outboxSeq: number | null;
}

/** A place in the outbox: the next reading not yet delivered is number `position` of row `seq`. */
export interface OutboxCursor {
  readonly seq: number;
  readonly position: number;
}

/** Values per reading in an outbox row and in OutboxRead.values. */
export const OUTBOX_COLUMNS = 6;

/** Part of one outbox row in an OutboxRead: readings `start` to `start + count - 1` of row `seq`. */
export interface OutboxSlice {
  readonly seq: number;
  readonly start: number;
  readonly count: number;
  /** Readings in the whole row. */
  readonly rowCount: number;
  readonly committedMs: number;
}

/** A channel as the outbox reader reports it (names as they are when read). */
export interface OutboxChannel {
  readonly id: number;
  readonly deviceId: string;
  readonly alias: string;
  readonly model: string;
  readonly parentId: string | null;
}

export interface OutboxRead {
  /**
   * OUTBOX_COLUMNS values a reading: channel id, ts_ms, power_mw, voltage_mv, current_ma, total_wh.
   * NaN for a voltage or current the plug did not measure (see `absentAsNull`).
   */
  readonly values: Float64Array<ArrayBuffer>;
  readonly count: number;
  readonly slices: readonly OutboxSlice[];
  /** Every channel the readings refer to. */
  readonly channels: readonly OutboxChannel[];
}

export interface CursorInfo {
  /** Where the sink stopped; { seq: 0, position: 0 } when it never saved a cursor. */
  readonly cursor: OutboxCursor;
  /** Readings in the outbox after the cursor. */
  readonly pending: number;
  /** Commit time of the oldest of them, UTC ms; null when none. */
  readonly oldestCommittedMs: number | null;
}

export interface Encoded {
  readonly batch: EncodedBatch;
  /** Readings left out because a field is not a finite number or the channel is empty. */
  readonly invalid: number;
}

/**
 * How an absent value (voltage or current the plug does not measure) travels in the float64 columns
 * and the outbox: NaN, which no reading can hold otherwise (non-finite values are rejected).
 */
export const ABSENT = Number.NaN;

/** A float column value back as the reading's `number | null`. */
export function absentAsNull(value: number): number | null {
  return Number.isNaN(value) ? null : value;
}

/** An optional quantity as a float column value: rounded, or ABSENT. */
function optionalColumn(value: number | null): number {
  return value === null ? ABSENT : Math.round(value);
}

function isValidReading(r: Reading): boolean {
  return (
    typeof r.channel === 'string' &&
    r.channel.length > 0 &&
    Number.isFinite(r.tsMs) &&
    Number.isFinite(r.powerMw) &&
    (r.voltageMv === null || Number.isFinite(r.voltageMv)) &&
    (r.currentMa === null || Number.isFinite(r.currentMa)) &&
    Number.isFinite(r.totalWh)
  );
}

/** Packs readings for the worker. Values are rounded to integers (the canonical units are integers). */
export function encodeBatch(readings: readonly Reading[]): Encoded {
  const n = readings.length;
  const channelIndex = new Uint32Array(n);
  const values = new Float64Array(n * COLUMNS);
  const index = new Map<string, number>();
  const channels: string[] = [];
  let count = 0;
  for (let i = 0; i < n; i++) {
    const r = readings[i] as Reading;
    if (!isValidReading(r)) continue;
    let c = index.get(r.channel);
    if (c === undefined) {
      c = channels.length;
      channels.push(r.channel);
      index.set(r.channel, c);
    }
    channelIndex[count] = c;
    values[count] = Math.round(r.tsMs);
    values[n + count] = Math.round(r.powerMw);
    values[2 * n + count] = optionalColumn(r.voltageMv);
    values[3 * n + count] = optionalColumn(r.currentMa);
    values[4 * n + count] = Math.round(r.totalWh);
    count++;
  }
  // Columns keep their stride n (= channelIndex.length) even when invalid readings left a tail unused.
  return { batch: { channels, channelIndex, values, count }, invalid: n - count };
}
