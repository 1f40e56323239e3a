/**
 * The daemon's writing connection: stores batches (with their outbox row and rollups, in one
 * transaction), upserts channels, and serves the outbox and sink cursors to the forwarders. Runs in
 * the writer worker (writer-service.ts); synchronous, like better-sqlite3.
 */
import type { ChannelInfo } from '../../../domain/channel.js';
import type { Db } from '../connection.js';
import type { Rollups } from '../maintenance/rollups.js';
import {
  absentAsNull,
  type CursorInfo,
  type EncodedBatch,
  OUTBOX_COLUMNS,
  type OutboxChannel,
  type OutboxCursor,
  type OutboxRead,
  type OutboxSlice,
  type WriteResult,
} from './protocol.js';

const BYTES_PER_OUTBOX_READING = OUTBOX_COLUMNS * Float64Array.BYTES_PER_ELEMENT;

export class BatchWriter {
  readonly #db: Db;
  readonly #outbox: boolean;
  /** Null when the daemon keeps no rollups. */
  readonly #rollups: Rollups | null;
  readonly #insertOutbox;
  readonly #selectOutbox;
  readonly #selectChannel;
  readonly #selectCursor;
  readonly #upsertCursor;
  readonly #pruneOutbox;
  readonly #pendingAfter;
  /** device_id → channels.id for every committed channel row (only this connection writes them). */
  readonly #ids = new Map<string, number>();
  readonly #insertReading;
  readonly #insertChannel;
  readonly #upsertChannel;
  readonly #selectChannelId;

  constructor(db: Db, outbox: boolean, rollups: Rollups | null) {
    this.#db = db;
    this.#outbox = outbox;
    this.#rollups = rollups;
    this.#insertOutbox = db.prepare<[number, number, Buffer]>(
      'INSERT INTO outbox (committed_ms, count, data) VALUES (?, ?, ?) RETURNING seq',
    );
    this.#selectOutbox = db
      .prepare<[number]>('SELECT seq, committed_ms, count, data FROM outbox WHERE seq >= ? ORDER BY seq')
      .raw();
    this.#selectChannel = db
      .prepare<[number]>('SELECT id, device_id, alias, model, parent_id FROM channels WHERE id = ?')
      .raw();
    this.#selectCursor = db.prepare<[string]>('SELECT seq, position FROM sink_cursors WHERE sink = ?').raw();
    this.#upsertCursor = db.prepare<[string, number, number, number]>(
      `INSERT INTO sink_cursors (sink, seq, position, updated_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, position = excluded.position,
         updated_ms = excluded.updated_ms`,
    );
    // Rows every sink has passed: before the smallest cursor, or wholly consumed at it.
    this.#pruneOutbox = db.prepare(
      `DELETE FROM outbox WHERE seq < (SELECT min(seq) FROM sink_cursors)
         OR (seq = (SELECT min(seq) FROM sink_cursors)
             AND count <= (SELECT min(position) FROM sink_cursors
                           WHERE seq = (SELECT min(seq) FROM sink_cursors)))`,
    );
    this.#pendingAfter = db
      .prepare<{ seq: number; position: number }>(
        `SELECT coalesce(sum(CASE WHEN seq = :seq THEN count - :position ELSE count END), 0),
                min(committed_ms)
         FROM outbox WHERE seq > :seq OR (seq = :seq AND count > :position)`,
      )
      .raw();
    this.#insertReading = db.prepare<[number, number, number, number | null, number | null, number]>(
      `INSERT OR IGNORE INTO readings (channel_id, ts_ms, power_mw, voltage_mv, current_ma, total_wh)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.#insertChannel = db.prepare<[string, number, number]>(
      `INSERT INTO channels (device_id, first_seen_ms, last_seen_ms) VALUES (?, ?, ?)
       ON CONFLICT (device_id) DO NOTHING`,
    );
    this.#selectChannelId = db.prepare<[string]>('SELECT id FROM channels WHERE device_id = ?').pluck();
    this.#upsertChannel = db
      .prepare<[string, string, string, string | null, string | null, number, number]>(
        `INSERT INTO channels (device_id, alias, model, parent_id, parent_alias, first_seen_ms, last_seen_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET
           alias = excluded.alias, model = excluded.model, parent_id = excluded.parent_id,
           parent_alias = excluded.parent_alias,
           last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)
         RETURNING id`,
      )
      .pluck();
    const rows = db.prepare('SELECT device_id, id FROM channels').raw().all() as [string, number][];
    for (const [deviceId, id] of rows) this.#ids.set(deviceId, id);
  }

  upsertChannels(channels: readonly ChannelInfo[], nowMs: number): void {
    const added = new Map<string, number>();
    this.#db.transaction(() => {
      for (const c of channels) {
        const id = this.#upsertChannel.get(
          c.id,
          c.alias,
          c.model,
          c.parentId,
          c.parentAlias,
          nowMs,
          nowMs,
        ) as number;
        added.set(c.id, id);
      }
    })();
    for (const [deviceId, id] of added) this.#ids.set(deviceId, id);
  }

  writeBatch(batch: EncodedBatch): WriteResult {
    const { channels, channelIndex, values, count } = batch;
    const stride = channelIndex.length;
    const ids = new Array<number>(channels.length);
    // Channel rows created inside a transaction that rolls back must not stay in the cache.
    const created = new Map<string, number>();
    let inserted = 0;
    let outboxSeq: number | null = null;
    // The readings this batch newly stores, for the outbox (same transaction as the readings).
    const fresh = this.#outbox ? new Float64Array(count * OUTBOX_COLUMNS) : null;
    const rollups = this.#rollups;
    transactionWithRollups(this.#db, rollups, () => {
      inserted = 0;
      for (let c = 0; c < channels.length; c++) {
        const deviceId = channels[c] as string;
        let id = this.#ids.get(deviceId);
        if (id === undefined) {
          // A reading for a channel discovery has not reported: a minimal row, filled in later.
          const firstTs = values[channelIndex.indexOf(c)] as number;
          this.#insertChannel.run(deviceId, firstTs, firstTs);
          id = this.#selectChannelId.get(deviceId) as number;
          created.set(deviceId, id);
        }
        ids[c] = id;
      }
      const insert = this.#insertReading;
      for (let i = 0; i < count; i++) {
        const channelId = ids[channelIndex[i] as number] as number;
        const changes = insert.run(
          channelId,
          values[i] as number,
          values[stride + i] as number,
          absentAsNull(values[2 * stride + i] as number),
          absentAsNull(values[3 * stride + i] as number),
          values[4 * stride + i] as number,
        ).changes;
        if (changes > 0 && fresh !== null) {
          const at = inserted * OUTBOX_COLUMNS;
          fresh[at] = channelId;
          for (let col = 0; col < 5; col++) fresh[at + 1 + col] = values[col * stride + i] as number;
        }
        inserted += changes;
        // Rollups of this reading, in the same transaction (see maintenance/rollups.ts).
        if (changes > 0 && rollups !== null) {
          rollups.add(
            channelId,
            values[i] as number,
            values[stride + i] as number,
            values[4 * stride + i] as number,
          );
        }
      }
      if (fresh !== null && inserted > 0) {
        const data = Buffer.from(fresh.buffer, 0, inserted * BYTES_PER_OUTBOX_READING);
        outboxSeq = this.#insertOutbox.pluck().get(Date.now(), inserted, data) as number;
      }
    });
    for (const [deviceId, id] of created) this.#ids.set(deviceId, id);
    return { inserted, duplicates: count - inserted, outboxSeq };
  }

  /** Up to `limit` readings after `after`, in commit order, with the channels they refer to. */
  readOutbox(after: OutboxCursor, limit: number): OutboxRead {
    const max = Math.max(1, Math.floor(limit));
    const chunks: {
      seq: number;
      start: number;
      count: number;
      rowCount: number;
      committedMs: number;
      data: Buffer;
    }[] = [];
    let total = 0;
    const rows = this.#selectOutbox.iterate(after.seq) as IterableIterator<[number, number, number, Buffer]>;
    try {
      for (const [seq, committedMs, rowCount, data] of rows) {
        const start = seq === after.seq ? Math.min(after.position, rowCount) : 0;
        const take = Math.min(rowCount - start, max - total);
        if (take > 0) {
          chunks.push({ seq, start, count: take, rowCount, committedMs, data });
          total += take;
        }
        if (total >= max) break;
      }
    } finally {
      rows.return?.();
    }
    const values = new Float64Array(total * OUTBOX_COLUMNS);
    const bytes = new Uint8Array(values.buffer);
    const slices: OutboxSlice[] = [];
    const channelIds = new Set<number>();
    let at = 0;
    for (const chunk of chunks) {
      const from = chunk.start * BYTES_PER_OUTBOX_READING;
      bytes.set(
        chunk.data.subarray(from, from + chunk.count * BYTES_PER_OUTBOX_READING),
        at * BYTES_PER_OUTBOX_READING,
      );
      for (let i = 0; i < chunk.count; i++) channelIds.add(values[(at + i) * OUTBOX_COLUMNS] as number);
      at += chunk.count;
      slices.push({
        seq: chunk.seq,
        start: chunk.start,
        count: chunk.count,
        rowCount: chunk.rowCount,
        committedMs: chunk.committedMs,
      });
    }
    const channels: OutboxChannel[] = [];
    for (const id of channelIds) {
      const row = this.#selectChannel.get(id) as [number, string, string, string, string | null] | undefined;
      if (row === undefined) continue;
      channels.push({ id: row[0], deviceId: row[1], alias: row[2], model: row[3], parentId: row[4] });
    }
    return { values, count: total, slices, channels };
  }

  loadCursor(sink: string): CursorInfo {
    const row = this.#selectCursor.get(sink) as [number, number] | undefined;
    const cursor = row === undefined ? { seq: 0, position: 0 } : { seq: row[0], position: row[1] };
    const [pending, oldest] = this.#pendingAfter.get(cursor) as [number, number | null];
    return { cursor, pending, oldestCommittedMs: pending > 0 ? oldest : null };
  }

  /** Persists a sink's cursor and prunes what every sink has passed. Returns the rows pruned. */
  saveCursor(sink: string, cursor: OutboxCursor, nowMs: number): number {
    let pruned = 0;
    this.#db.transaction(() => {
      this.#upsertCursor.run(sink, cursor.seq, cursor.position, nowMs);
      pruned = this.#pruneOutbox.run().changes;
    })();
    return pruned;
  }

  close(): void {
    try {
      this.#db.pragma('optimize');
    } finally {
      this.#db.close();
    }
  }
}

/** Runs `fn` in a transaction; the rollups' in-memory state follows a rollback. */
function transactionWithRollups(db: Db, rollups: Rollups | null, fn: () => void): void {
  rollups?.begin();
  try {
    db.transaction(fn)();
  } catch (error) {
    rollups?.rollback();
    throw error;
  }
  rollups?.commit();
}
