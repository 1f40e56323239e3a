/** `export --resolution minute|hour|day`: rollup buckets instead of raw readings. */
import { once } from 'node:events';
import type { Config } from '../../config/index.js';
import type { Bucket, Tier } from '../../energy/index.js';
import { csvField, milliToDecimal } from '../../shared/decimal.js';
import { openReadingsReader, openRollupReader, type RollupChannel } from '../../storage/sqlite/index.js';

export const ROLLUP_CSV_HEADER =
  'time,device_id,alias,readings,power_w,power_min_w,power_max_w,energy_wh,covered_s,complete';

export const RESOLUTIONS = ['raw', 'minute', 'hour', 'day'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

type Row = Bucket & { readonly partial: boolean };

interface Cursor {
  readonly channel: RollupChannel;
  readonly order: number;
  readonly rows: Iterator<Row>;
  head: Row;
}

/** Min-heap of cursors by (bucket start, channel order). */
class CursorHeap {
  readonly #items: Cursor[] = [];

  peek(): Cursor | undefined {
    return this.#items[0];
  }

  push(cursor: Cursor): void {
    const items = this.#items;
    items.push(cursor);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(items[i] as Cursor, items[parent] as Cursor)) break;
      [items[i], items[parent]] = [items[parent] as Cursor, items[i] as Cursor];
      i = parent;
    }
  }

  pop(): void {
    const last = this.#items.pop();
    if (last === undefined || this.#items.length === 0) return;
    this.#items[0] = last;
    this.siftTop();
  }

  siftTop(): void {
    const items = this.#items;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < items.length && less(items[l] as Cursor, items[smallest] as Cursor)) smallest = l;
      if (r < items.length && less(items[r] as Cursor, items[smallest] as Cursor)) smallest = r;
      if (smallest === i) return;
      [items[i], items[smallest]] = [items[smallest] as Cursor, items[i] as Cursor];
      i = smallest;
    }
  }
}

function less(a: Cursor, b: Cursor): boolean {
  return a.head.startMs < b.head.startMs || (a.head.startMs === b.head.startMs && a.order < b.order);
}

function meanMw(b: Bucket): number | null {
  return b.readings === 0 ? null : Math.round(b.powerSumMw / b.readings);
}

function csvRow(channel: RollupChannel, b: Row): string {
  const mw = (v: number | null) => (v === null ? '' : milliToDecimal(v));
  return [
    new Date(b.startMs).toISOString(),
    csvField(channel.deviceId),
    csvField(channel.alias),
    String(b.readings),
    mw(meanMw(b)),
    mw(b.powerMinMw),
    mw(b.powerMaxMw),
    (Math.round(b.energyWh * 1000) / 1000).toString(),
    (b.coveredMs / 1000).toString(),
    String(!b.partial),
  ].join(',');
}

function jsonRow(channel: RollupChannel, b: Row): string {
  const w = (v: number | null) => (v === null ? null : v / 1000);
  return JSON.stringify({
    time: new Date(b.startMs).toISOString(),
    device_id: channel.deviceId,
    alias: channel.alias,
    readings: b.readings,
    power_w: w(meanMw(b)),
    power_min_w: w(b.powerMinMw),
    power_max_w: w(b.powerMaxMw),
    energy_wh: Math.round(b.energyWh * 1000) / 1000,
    covered_s: b.coveredMs / 1000,
    complete: !b.partial,
  });
}

/** Stored rows (lazily) followed by the computed tail, for one channel. */
function* channelRows(stored: Iterable<Bucket>, tail: readonly Row[]): Generator<Row> {
  for (const b of stored) yield { ...b, partial: false };
  yield* tail;
}

/**
 * Writes the buckets of every selected channel, oldest first across channels (ties in device id
 * order), in chunks with back-pressure: a year of minutes is never held in memory.
 */
export async function exportRollups(options: {
  readonly config: Config;
  readonly tier: Tier;
  readonly fromMs: number | undefined;
  readonly toMs: number | undefined;
  readonly device: string | undefined;
  readonly format: 'csv' | 'json';
  readonly out: NodeJS.WritableStream;
  readonly warn: (text: string) => void;
}): Promise<void> {
  const { config, tier, format, out } = options;
  const path = config.storage.sqlite.path;
  let wanted: Set<string> | null = null;
  if (options.device !== undefined) {
    const names = openReadingsReader(path);
    try {
      wanted = new Set(names.resolveDevice(options.device));
    } finally {
      names.close();
    }
  }
  const reader = openRollupReader(path, {
    timeZone: config.time_zone,
    gapLimitMs: config.storage.rollups.gap_limit,
  });
  try {
    if (tier === 'day' && reader.dayZone !== config.time_zone) {
      options.warn(
        `note: the day rollups are local days of ${reader.dayZone}; the daemon rebuilds them for ${config.time_zone} when it restarts\n`,
      );
    }
    const fromMs = options.fromMs ?? Number.MIN_SAFE_INTEGER;
    const toMs = options.toMs ?? Number.MAX_SAFE_INTEGER;
    const channels = reader.channels().filter((c) => wanted === null || wanted.has(c.deviceId));
    // The computed tails first, then one lazy row iterator per channel, merged by time.
    const sources = channels.map((channel) => ({ channel, tail: reader.tail(channel, tier, fromMs, toMs) }));
    const heap = new CursorHeap();
    sources.forEach(({ channel, tail }, order) => {
      const rows = channelRows(
        reader.stored(channel, tier, fromMs, Math.min(toMs, tail.floorMs)),
        tail.buckets,
      );
      const first = rows.next();
      if (first.done !== true) heap.push({ channel, order, rows, head: first.value });
    });
    let chunk = format === 'csv' ? `${ROLLUP_CSV_HEADER}\n` : '[';
    let first = true;
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      if (format === 'csv') chunk += `${csvRow(top.channel, top.head)}\n`;
      else {
        chunk += `${first ? '\n' : ',\n'}${jsonRow(top.channel, top.head)}`;
        first = false;
      }
      const next = top.rows.next();
      if (next.done === true) heap.pop();
      else {
        top.head = next.value;
        heap.siftTop();
      }
      if (chunk.length >= 65536) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
    if (format === 'json') chunk += first ? ']\n' : '\n]\n';
    if (!out.write(chunk)) await once(out, 'drain');
  } finally {
    reader.close();
  }
}
