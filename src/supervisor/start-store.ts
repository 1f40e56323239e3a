import type { Logger } from '../log/logger.js';
import { isDamagedDatabase, type Quarantined, quarantineDatabase } from './quarantine.js';

export interface StartedStore<S> {
  readonly store: S;
  /** Set when the database was corrupt and moved aside; a fresh one was created. */
  readonly quarantined: { readonly files: Quarantined; readonly reason: string } | null;
}

/**
 * Starts the writer's store. A database SQLite reports damaged (quick_check at open, SQLITE_CORRUPT,
 * or SQLITE_NOTADB for a file with a SQLite header) is moved aside with its -wal/-shm files and a
 * fresh one is started in its place; any other failure, a file that is no database at all included,
 * is thrown as it is.
 */
export async function startStore<S extends { start(): Promise<void>; stop(): Promise<void> }>(
  create: () => S,
  path: string,
  logger: Logger,
): Promise<StartedStore<S>> {
  const store = create();
  try {
    await store.start();
    return { store, quarantined: null };
  } catch (error) {
    if (!isDamagedDatabase(error, path)) throw error;
    await store.stop();
    const reason = error instanceof Error ? error.message : String(error);
    const files = quarantineDatabase(path);
    logger.error(
      { err: error, movedTo: files.movedTo },
      `the database is corrupt: moved to ${files.movedTo}; starting with a fresh database`,
    );
    const fresh = create();
    await fresh.start();
    return { store: fresh, quarantined: { files, reason } };
  }
}
