/**
 * A reader worker: one read-only connection of the reader pool, in its own thread, so an export of
 * a year of readings, a quick_check or a lock wait never blocks the daemon's event loop. Requests
 * are handled one at a time; export text is built here and its bytes transferred, not copied.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { KasaStorageCode, StorageError } from '../../errors.js';
import { serializeStorageError, toStorageError } from '../errors.js';
import type { ExportChunk } from './export-format.js';
import type { ReaderRequest, ReaderResponse } from './reader-protocol.js';
import { ReaderSession } from './reader-session.js';

if (parentPort === null) throw new Error('reader-worker.js must run in a worker thread');
const port = parentPort;

let session: ReaderSession | null = null;

function open(): ReaderSession {
  if (session === null) {
    throw new StorageError('reader connection is not open', {
      code: KasaStorageCode.notOpen,
      transient: false,
    });
  }
  return session;
}

function handle(request: ReaderRequest): unknown {
  switch (request.op) {
    case 'open':
      session?.close();
      session = new ReaderSession(request.path, request.busyTimeoutMs);
      return { threadId };
    case 'ping':
      return open().ping();
    case 'quickCheck':
      return open().quickCheck();
    case 'channels':
      return open().channels();
    case 'series':
      return open().series(request.query);
    case 'dailyEnergy':
      return open().dailyEnergy(request.query);
    case 'exportOpen':
      return open().exportOpen(request.query, request.format, request.chunkRows);
    case 'exportNext':
      return open().exportNext();
    case 'energy':
      return open().energy(request.query, request.settings);
    case 'exportClose':
      open().exportClose();
      return undefined;
    case 'close':
      session?.close();
      session = null;
      return undefined;
  }
}

port.on('message', (request: ReaderRequest) => {
  let response: ReaderResponse;
  let transfer: ArrayBuffer[] = [];
  try {
    const value = handle(request);
    if (request.op === 'exportOpen' || request.op === 'exportNext') {
      transfer = [(value as ExportChunk).bytes.buffer];
    }
    response = { id: request.id, ok: true, value };
  } catch (error) {
    response = { id: request.id, ok: false, error: serializeStorageError(toStorageError(error, request.op)) };
  }
  port.postMessage(response, transfer);
});
