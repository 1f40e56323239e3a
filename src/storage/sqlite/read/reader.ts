import { KasaStorageCode, StorageError } from '../../errors.js';
import { type Db, withReadableDatabase } from '../connection.js';

export interface StoredChannel {
  /** The plug's deviceId, or a strip outlet's full child id. */
  readonly deviceId: string;
  readonly alias: string;
  readonly model: string;
  readonly parentId: string | null;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
}

export interface StoredReading {
  readonly tsMs: number;
  readonly deviceId: string;
  readonly alias: string;
  readonly powerMw: number;
  /** Null when the plug does not measure it. */
  readonly voltageMv: number | null;
  readonly currentMa: number | null;
  readonly totalWh: number;
}

export interface ReadingsQuery {
  /** Inclusive lower bound, UTC ms. */
  readonly fromMs?: number;
  /** Exclusive upper bound, UTC ms. */
  readonly toMs?: number;
  /** Channel ids (deviceIds / child ids, as resolveDevice returns them); all channels when absent. */
  readonly channels?: readonly string[];
}

export interface ReadingsReader {
  listChannels(): StoredChannel[];
  /**
   * Channel ids selected by a device id or alias: a plug's deviceId or an outlet's child id selects
   * that channel, a strip's deviceId selects all its outlets, an alias selects the one channel that
   * has it. Unknown or ambiguous names throw a StorageError saying which.
   */
  resolveDevice(idOrAlias: string): string[];
  /** Readings oldest first across channels (ties in device id order), lazily, from one snapshot. */
  readings(query?: ReadingsQuery): Iterable<StoredReading>;
  close(): void;
}

interface ChannelRow {
  readonly id: number;
  readonly deviceId: string;
  readonly alias: string;
  readonly model: string;
  readonly parentId: string | null;
  readonly parentAlias: string | null;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
}

/** [ts_ms, power_mw, voltage_mv, current_ma, total_wh] */
type RawReading = [number, number, number | null, number | null, number];

interface Cursor {
  readonly channel: ChannelRow;
  readonly rows: IterableIterator<RawReading>;
  /** Position in device-id order: the tie-breaker for equal timestamps. */
  readonly order: number;
  head: RawReading;
}

const MIN_TS = Number.MIN_SAFE_INTEGER;
const MAX_TS = Number.MAX_SAFE_INTEGER;

/** Min-heap of cursors by (head timestamp, order): the k-way merge of per-channel scans. */
class CursorHeap {
  readonly #items: Cursor[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Cursor | undefined {
    return this.#items[0];
  }

  push(cursor: Cursor): void {
    const items = this.#items;
    items.push(cursor);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(items[i] as Cursor, items[parent] as Cursor)) break;
      [items[i], items[parent]] = [items[parent] as Cursor, items[i] as Cursor];
      i = parent;
    }
  }

  /** Removes the top cursor. */
  pop(): void {
    const items = this.#items;
    const last = items.pop();
    if (last === undefined || items.length === 0) return;
    items[0] = last;
    this.#siftDown();
  }

  /** Restores the heap after the top cursor's head advanced. */
  siftTop(): void {
    this.#siftDown();
  }

  #siftDown(): void {
    const items = this.#items;
    const n = items.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < n && this.#less(items[l] as Cursor, items[smallest] as Cursor)) smallest = l;
      if (r < n && this.#less(items[r] as Cursor, items[smallest] as Cursor)) smallest = r;
      if (smallest === i) return;
      [items[i], items[smallest]] = [items[smallest] as Cursor, items[i] as Cursor];
      i = smallest;
    }
  }

  #less(a: Cursor, b: Cursor): boolean {
    return a.head[0] < b.head[0] || (a.head[0] === b.head[0] && a.order < b.order);
  }
}

class SqliteReadingsReader implements ReadingsReader {
  readonly #db: Db;
  readonly #path: string;

  constructor(db: Db, path: string) {
    this.#db = db;
    this.#path = path;
  }

  listChannels(): StoredChannel[] {
    return this.#channelRows().map(({ id: _id, ...rest }) => rest);
  }

  resolveDevice(idOrAlias: string): string[] {
    const channels = this.#channelRows();
    const exact = channels.filter((c) => c.deviceId === idOrAlias).map((c) => c.deviceId);
    const outlets = channels.filter((c) => c.parentId === idOrAlias).map((c) => c.deviceId);
    if (exact.length > 0 || outlets.length > 0) return [...new Set([...exact, ...outlets])];
    const named = channels.filter((c) => c.alias === idOrAlias);
    if (named.length === 1) return [(named[0] as ChannelRow).deviceId];
    // A strip's alias selects all its outlets, when no outlet has that alias itself.
    const stripParents = new Set(channels.filter((c) => c.parentAlias === idOrAlias).map((c) => c.parentId));
    if (named.length === 0 && stripParents.size === 1) {
      return channels.filter((c) => c.parentAlias === idOrAlias).map((c) => c.deviceId);
    }
    if (named.length > 1) {
      throw new StorageError(
        `alias "${idOrAlias}" is ambiguous: ${named.length} channels have it (${named.map((c) => c.deviceId).join(', ')}); use a device id`,
        { code: KasaStorageCode.ambiguousDevice, transient: false },
      );
    }
    throw new StorageError(`no device with id or alias "${idOrAlias}" in ${this.#path}`, {
      code: KasaStorageCode.unknownDevice,
      transient: false,
    });
  }

  readings(query: ReadingsQuery = {}): Iterable<StoredReading> {
    // Validate now, not on the first next(): a bad channel should fail where the query is made.
    const all = this.#channelRows();
    let selected: ChannelRow[];
    if (query.channels === undefined) {
      selected = all;
    } else {
      const byDevice = new Map(all.map((c) => [c.deviceId, c]));
      const wanted = new Set(query.channels);
      selected = [];
      for (const deviceId of wanted) {
        const channel = byDevice.get(deviceId);
        if (channel === undefined) {
          throw new StorageError(`no channel "${deviceId}" in ${this.#path}`, {
            code: KasaStorageCode.unknownDevice,
            transient: false,
          });
        }
        selected.push(channel);
      }
      selected.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
    }
    const fromMs = query.fromMs ?? MIN_TS;
    const toMs = query.toMs ?? MAX_TS;
    return { [Symbol.iterator]: () => this.#merge(selected, fromMs, toMs) };
  }

  close(): void {
    this.#db.close();
  }

  *#merge(channels: readonly ChannelRow[], fromMs: number, toMs: number): Generator<StoredReading> {
    const db = this.#db;
    // One read transaction: every per-channel scan sees the same snapshot while the daemon writes.
    const began = !db.inTransaction;
    if (began) db.exec('BEGIN');
    const heap = new CursorHeap();
    const open: IterableIterator<RawReading>[] = [];
    try {
      channels.forEach((channel, order) => {
        // A cursor per channel; better-sqlite3 allows one iterator per statement, so one statement each.
        const rows = db
          .prepare<[number, number, number]>(
            `SELECT ts_ms, power_mw, voltage_mv, current_ma, total_wh FROM readings
             WHERE channel_id = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms`,
          )
          .raw()
          .iterate(channel.id, fromMs, toMs) as IterableIterator<RawReading>;
        open.push(rows);
        const first = rows.next();
        if (first.done !== true) heap.push({ channel, rows, order, head: first.value });
      });
      for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
        const [tsMs, powerMw, voltageMv, currentMa, totalWh] = top.head;
        yield {
          tsMs,
          deviceId: top.channel.deviceId,
          alias: top.channel.alias,
          powerMw,
          voltageMv,
          currentMa,
          totalWh,
        };
        const next = top.rows.next();
        if (next.done === true) heap.pop();
        else {
          top.head = next.value;
          heap.siftTop();
        }
      }
    } finally {
      for (const rows of open) rows.return?.();
      if (began && db.open && db.inTransaction) db.exec('COMMIT');
    }
  }

  #channelRows(): ChannelRow[] {
    return this.#db
      .prepare(
        `SELECT id, device_id AS deviceId, alias, model, parent_id AS parentId, parent_alias AS parentAlias,
                first_seen_ms AS firstSeenMs, last_seen_ms AS lastSeenMs
         FROM channels ORDER BY device_id`,
      )
      .all() as ChannelRow[];
  }
}

/**
 * Opens the database read-only for `export` and friends, in their own process: safe while the
 * daemon writes (WAL readers do not block the writer, and the writer does not block them).
 */
export function openReadingsReader(
  path: string,
  options: { readonly busyTimeoutMs?: number } = {},
): ReadingsReader {
  return withReadableDatabase(
    path,
    options.busyTimeoutMs ?? 5000,
    (db) => new SqliteReadingsReader(db, path),
  );
}
