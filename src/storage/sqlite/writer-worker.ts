/**
 * The writer worker: owns the only writing connection of the daemon. better-sqlite3 is synchronous,
 * so a held lock (busy_timeout), a slow fsync or quick_check on a big file blocks this thread, never
 * the daemon's event loop. Requests are handled one at a time, in order.
 */
import { parentPort } from 'node:worker_threads';
import type { ChannelInfo } from '../../discovery/types.js';
import { KasaStorageCode, StorageError } from '../errors.js';
import { type Db, openWritable } from './connection.js';
import { serializeStorageError, toStorageError } from './errors.js';
import type { EncodedBatch, Request, Response, WriteResult } from './protocol.js';

if (parentPort === null) throw new Error('writer-worker.js must run in a worker thread');
const port = parentPort;

/** SQLite's default (and maximum) max_page_count. */
const MAX_PAGE_COUNT = 4294967294;

class Writer {
  readonly #db: Db;
  /** device_id → channels.id for every committed channel row (only this connection writes them). */
  readonly #ids = new Map<string, number>();
  readonly #insertReading;
  readonly #insertChannel;
  readonly #upsertChannel;
  readonly #selectChannelId;

  constructor(db: Db) {
    this.#db = db;
    this.#insertReading = db.prepare<[number, number, number, number, number, number]>(
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
    this.#db.transaction(() => {
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
        inserted += insert.run(
          ids[channelIndex[i] as number] as number,
          values[i] as number,
          values[stride + i] as number,
          values[2 * stride + i] as number,
          values[3 * stride + i] as number,
          values[4 * stride + i] as number,
        ).changes;
      }
    })();
    for (const [deviceId, id] of created) this.#ids.set(deviceId, id);
    return { inserted, duplicates: count - inserted };
  }

  setMaxPageCount(pages: number | null): number {
    const value = pages === null ? MAX_PAGE_COUNT : Math.max(1, Math.floor(pages));
    return this.#db.pragma(`max_page_count = ${value}`, { simple: true }) as number;
  }

  close(): void {
    try {
      this.#db.pragma('optimize');
    } finally {
      this.#db.close();
    }
  }
}

let writer: Writer | null = null;

/** Returned by a handler that must not answer (the crash hook). */
const NO_REPLY = Symbol('no reply');

function requireWriter(): Writer {
  if (writer === null) {
    throw new StorageError('the database is not open', { code: KasaStorageCode.notOpen, transient: false });
  }
  return writer;
}

function handle(request: Request): unknown {
  switch (request.op) {
    case 'open': {
      if (writer !== null)
        throw new StorageError('already open', { code: KasaStorageCode.internal, transient: false });
      const { db, info } = openWritable(request.options);
      try {
        writer = new Writer(db);
      } catch (error) {
        db.close();
        throw error;
      }
      return info;
    }
    case 'upsertChannels':
      requireWriter().upsertChannels(request.channels, request.nowMs);
      return undefined;
    case 'writeBatch':
      return requireWriter().writeBatch(request.batch);
    case 'setMaxPageCount':
      return requireWriter().setMaxPageCount(request.pages);
    case 'close': {
      const current = writer;
      writer = null;
      current?.close();
      return undefined;
    }
    case 'crash':
      setImmediate(() => {
        throw new Error('writer worker crash requested by a test');
      });
      return NO_REPLY;
  }
}

port.on('message', (request: Request) => {
  let response: Response;
  try {
    const value = handle(request);
    if (value === NO_REPLY) return;
    response = { id: request.id, ok: true, value };
  } catch (error) {
    response = { id: request.id, ok: false, error: serializeStorageError(toStorageError(error, request.op)) };
  }
  port.postMessage(response);
  if (request.op === 'close' && response.ok) port.close();
});
