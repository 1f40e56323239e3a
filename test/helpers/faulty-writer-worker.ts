/**
 * The real writer worker (WriterService) with faults a test can inject, for SqliteStore's
 * `workerUrl`. Once the database is open, it also listens on a BroadcastChannel named after the
 * database path (see writer-faults.ts) for:
 * - `setMaxPageCount`: caps the file on the writer's own connection (max_page_count is per
 *   connection), so the real write path fails with SQLITE_FULL; null lifts the cap;
 * - `crashOnNextCall`: the next call from the store makes the worker die of an uncaught exception
 *   before answering, as a native crash would end it.
 */
import { BroadcastChannel, parentPort } from 'node:worker_threads';
import type { SqliteOptions } from '../../src/storage/sqlite/connection.js';
import { type ServerPort, serve } from '../../src/storage/sqlite/rpc/server.js';
import { WriterService } from '../../src/storage/sqlite/write/writer-service.js';
import { faultChannelName } from './writer-faults.js';

if (parentPort === null) throw new Error('faulty-writer-worker.js must run in a worker thread');

/** SQLite's default (and maximum) max_page_count. */
const MAX_PAGE_COUNT = 4294967294;

const service = new WriterService();
let crashArmed = false;
let faults: BroadcastChannel | null = null;

function channelPort(channel: BroadcastChannel): ServerPort {
  return {
    on: (_event, listener) =>
      channel.addEventListener('message', (event) => listener((event as MessageEvent).data)),
    postMessage: (message) => channel.postMessage(message),
  };
}

const faultHandlers = {
  setMaxPageCount: ({ pages }: { readonly pages: number | null }): number => {
    const db = service.db;
    if (db === null) throw new Error('the database is not open');
    const value = pages === null ? MAX_PAGE_COUNT : Math.max(1, Math.floor(pages));
    return db.pragma(`max_page_count = ${value}`, { simple: true }) as number;
  },
  crashOnNextCall: (): void => {
    crashArmed = true;
  },
};

export type WriterFaultHandlers = typeof faultHandlers;

const handlers: Record<string, (args: unknown) => unknown> = {};
for (const [op, handler] of Object.entries(service.handlers as Record<string, (args: unknown) => unknown>)) {
  handlers[op] = (args) => {
    if (crashArmed) {
      setImmediate(() => {
        throw new Error('writer worker crash requested by a test');
      });
      return new Promise(() => {});
    }
    return handler(args);
  };
}
const realOpen = handlers['open'] as (args: unknown) => unknown;
handlers['open'] = (args) => {
  const info = realOpen(args);
  faults = new BroadcastChannel(faultChannelName((args as { options: SqliteOptions }).options.path));
  serve(channelPort(faults), faultHandlers);
  return info;
};
const realClose = handlers['close'] as (args: unknown) => unknown;
handlers['close'] = (args) => {
  faults?.close();
  faults = null;
  return realClose(args);
};

serve(parentPort, handlers);
