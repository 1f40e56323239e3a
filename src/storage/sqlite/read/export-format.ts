/**
 * Readings as export text (the columns and units of `kasa-monitor export`), built where the rows are
 * read: in a reader worker, so the daemon's event loop only moves finished bytes to the socket.
 */

import { milliToUnit } from '../../../domain/reading.js';
import { csvField, milliToDecimal } from '../../../shared/decimal.js';
import type { StoredReading } from './reader.js';

export type ExportFormat = 'csv' | 'json';

export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'json'];

export const CSV_HEADER = 'time,device_id,alias,power_w,voltage_v,current_a,total_wh';

export function csvRow(r: StoredReading): string {
  return [
    new Date(r.tsMs).toISOString(),
    csvField(r.deviceId),
    csvField(r.alias),
    milliToDecimal(r.powerMw),
    // An unmeasured voltage or current is an empty cell, never 0.
    r.voltageMv === null ? '' : milliToDecimal(r.voltageMv),
    r.currentMa === null ? '' : milliToDecimal(r.currentMa),
    String(r.totalWh),
  ].join(',');
}

export function jsonRow(r: StoredReading): string {
  return JSON.stringify({
    time: new Date(r.tsMs).toISOString(),
    device_id: r.deviceId,
    alias: r.alias,
    power_w: r.powerMw / 1000,
    voltage_v: milliToUnit(r.voltageMv),
    current_a: milliToUnit(r.currentMa),
    total_wh: r.totalWh,
  });
}

/** One piece of an export: UTF-8 text, the rows it holds, and whether it is the last piece. */
export interface ExportChunk {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly rows: number;
  readonly done: boolean;
}

const encoder = new TextEncoder();

/**
 * Pulls rows from an iterator and frames them: a CSV header, or a JSON array (`[` ... `]`, one
 * object a line). Each `next()` returns up to `chunkRows` rows, so a year of readings is never
 * held in memory.
 */
export class ExportCursor {
  readonly #rows: Iterator<StoredReading>;
  readonly #format: ExportFormat;
  readonly #chunkRows: number;
  #started = false;
  #done = false;
  #total = 0;

  constructor(rows: Iterable<StoredReading>, format: ExportFormat, chunkRows: number) {
    this.#rows = rows[Symbol.iterator]();
    this.#format = format;
    this.#chunkRows = Math.max(1, Math.floor(chunkRows));
  }

  get total(): number {
    return this.#total;
  }

  get done(): boolean {
    return this.#done;
  }

  next(): ExportChunk {
    if (this.#done) return { bytes: new Uint8Array(0), rows: 0, done: true };
    const csv = this.#format === 'csv';
    let text = '';
    if (!this.#started) {
      text = csv ? `${CSV_HEADER}\n` : '[';
      this.#started = true;
    }
    let rows = 0;
    while (rows < this.#chunkRows) {
      const next = this.#rows.next();
      if (next.done === true) {
        this.#done = true;
        break;
      }
      if (csv) text += `${csvRow(next.value)}\n`;
      else text += `${this.#total + rows === 0 ? '\n' : ',\n'}${jsonRow(next.value)}`;
      rows++;
    }
    this.#total += rows;
    if (this.#done && !csv) text += this.#total === 0 ? ']\n' : '\n]\n';
    return { bytes: encoder.encode(text), rows, done: this.#done };
  }

  /** Ends the iteration early (the statement cursors and the read transaction close). */
  close(): void {
    if (!this.#done) this.#rows.return?.();
    this.#done = true;
  }
}
