/** The writer worker's entry: owns the only writing connection of the daemon (writer-service.ts). */
import { parentPort } from 'node:worker_threads';
import { serve } from '../rpc/server.js';
import { WriterService } from './writer-service.js';

if (parentPort === null) throw new Error('writer-worker.js must run in a worker thread');
serve(parentPort, new WriterService().handlers);
