/** A worker serving a few handlers through the SQLite workers' message layer, for worker-rpc.test.ts. */
import { parentPort } from 'node:worker_threads';
import { transferring } from '../../src/storage/sqlite/rpc/messages.js';
import { serve } from '../../src/storage/sqlite/rpc/server.js';

if (parentPort === null) throw new Error('rpc-test-worker.js must run in a worker thread');

/** Resolved by `release`: lets a test hold a call pending. */
let release: () => void = () => {};

const handlers = {
  add: (args: { readonly a: number; readonly b: number }) => args.a + args.b,
  /** Throws what better-sqlite3 throws on a held lock. */
  busy: (): never => {
    throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
  },
  /** Sums the values it received and sends its buffer back (moved, not copied). */
  sumAndReturn: ({ values }: { readonly values: Float64Array<ArrayBuffer> }) => {
    const sum = values.reduce((s, v) => s + v, 0);
    return transferring({ sum, values }, [values.buffer]);
  },
  /** Answers only once `release` is called. */
  held: () =>
    new Promise<string>((resolve) => {
      release = () => resolve('released');
    }),
  release: (): void => release(),
  /** Ends the thread without answering. */
  exit: ({ code }: { readonly code: number }): void => process.exit(code),
};

export type RpcTestHandlers = typeof handlers;

serve(parentPort, handlers);
