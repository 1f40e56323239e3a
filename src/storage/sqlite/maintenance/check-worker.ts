/**
 * Checks a database file (integrity_check, schema) in a thread of its own, so that checking a fresh
 * backup never blocks the daemon's event loop or its writer worker. One check per thread.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { WorkerClient } from '../rpc/client.js';
import { serve } from '../rpc/server.js';
import { checkDatabaseFile, type DatabaseFileCheck } from './backup.js';

/** The check thread's protocol. */
const checkHandlers = {
  check: (args: { readonly path: string; readonly standalone: boolean }): DatabaseFileCheck =>
    checkDatabaseFile(args.path, { standalone: args.standalone }),
};

// This module is its own worker script: started with the marker below, it serves the check.
const MARKER = 'kasaCheck';
if (
  !isMainThread &&
  parentPort !== null &&
  (workerData as Record<string, unknown> | null)?.[MARKER] === true
) {
  serve(parentPort, checkHandlers);
}

/** checkDatabaseFile() in a short-lived worker thread. */
export async function checkDatabaseFileInThread(
  path: string,
  standalone: boolean,
): Promise<DatabaseFileCheck> {
  const client = new WorkerClient<typeof checkHandlers>(
    new Worker(new URL(import.meta.url), { workerData: { [MARKER]: true } }),
    { name: 'database check', deathIsTransient: false },
  );
  try {
    return await client.call('check', { path, standalone });
  } finally {
    await client.terminate();
  }
}
