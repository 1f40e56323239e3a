/**
 * Faults injected into a SqliteStore's writer worker from a test, through a worker script that wraps
 * the real one (faulty-writer-worker.ts): no test hook in the daemon's code. Create the store with
 * `faultyWriter` as its worker, then drive the faults with `writerFaults(path)`.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { deserializeStorageError } from '../../src/storage/sqlite/errors.js';
import { type CallMessage, isReply, type ResultOf } from '../../src/storage/sqlite/rpc/messages.js';
import type { SqliteStoreWorker } from '../../src/storage/sqlite/write/store.js';
import type { WriterFaultHandlers } from './faulty-writer-worker.js';

/** SqliteStore's third argument: the writer worker with fault injection. */
export const faultyWriter: SqliteStoreWorker = {
  workerUrl: new URL('./faulty-writer-worker.js', import.meta.url),
};

export function faultChannelName(path: string): string {
  return `kasa-monitor-test:writer-faults:${path}`;
}

let nextId = 1;

/** One call to the fault handlers of the writer worker that has `path` open. */
function callFault<K extends keyof WriterFaultHandlers>(
  path: string,
  op: K,
  args: Parameters<WriterFaultHandlers[K]>[0],
): Promise<ResultOf<WriterFaultHandlers[K]>> {
  const channel = new BroadcastChannel(faultChannelName(path));
  const id = nextId++;
  return new Promise<ResultOf<WriterFaultHandlers[K]>>((resolve, reject) => {
    channel.onmessage = (event) => {
      const reply = (event as MessageEvent).data;
      if (!isReply(reply) || reply.id !== id) return;
      channel.close();
      if (reply.ok) resolve(reply.value as ResultOf<WriterFaultHandlers[K]>);
      else reject(deserializeStorageError(reply.error));
    };
    channel.postMessage({ rpc: 'call', id, op, args } satisfies CallMessage);
  });
}

export interface WriterFaults {
  /**
   * Caps the database at `pages` pages on the writer's connection (null lifts the cap), so writes
   * fail with SQLITE_FULL as on a full disk. Resolves with the cap SQLite applied (never below the
   * current size).
   */
  setMaxPageCount(pages: number | null): Promise<number>;
  /** The writer worker dies, uncaught, on the store's next call, before answering it. */
  crashOnNextCall(): Promise<void>;
}

/** The faults of the (faulty) writer worker that has the database at `path` open. */
export function writerFaults(path: string): WriterFaults {
  return {
    setMaxPageCount: (pages) => callFault(path, 'setMaxPageCount', { pages }),
    crashOnNextCall: () => callFault(path, 'crashOnNextCall', undefined),
  };
}
