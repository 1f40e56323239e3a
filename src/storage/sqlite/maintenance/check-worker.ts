/**
 * Checks a database file (integrity_check, schema) in a thread of its own, so that checking a fresh
 * backup never blocks the daemon's event loop or its writer worker. One check per thread.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { checkDatabaseFile, type DatabaseFileCheck } from './backup.js';

interface Job {
  readonly path: string;
  readonly standalone: boolean;
}

if (!isMainThread && parentPort !== null && (workerData as { kasaCheck?: Job } | null)?.kasaCheck) {
  const job = (workerData as { kasaCheck: Job }).kasaCheck;
  parentPort.postMessage(checkDatabaseFile(job.path, { standalone: job.standalone }));
}

/** checkDatabaseFile() in a short-lived worker thread. */
export function checkDatabaseFileInThread(path: string, standalone: boolean): Promise<DatabaseFileCheck> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { kasaCheck: { path, standalone } } });
    let settled = false;
    worker.once('message', (result: DatabaseFileCheck) => {
      settled = true;
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`database check thread exited with code ${code}`));
    });
  });
}
