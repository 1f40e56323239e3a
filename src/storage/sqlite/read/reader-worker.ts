/**
 * A reader worker's entry: one read-only connection of the reader pool in its own thread, so an
 * export of a year of readings, a quick_check or a lock wait never blocks the daemon's event loop.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { serve } from '../rpc/server.js';
import { ReaderService } from './reader-service.js';

if (parentPort === null) throw new Error('reader-worker.js must run in a worker thread');
serve(parentPort, new ReaderService(threadId).handlers);
