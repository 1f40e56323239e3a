import { createSilentLogger } from '../../src/log/logger.js';
import { type SqliteOptions, SqliteStore } from '../../src/storage/sqlite/index.js';

/**
 * The SQLite options every test starts from: a real file in WAL mode, NORMAL sync (these tests are
 * about what is stored, not about surviving a power cut), a 2 MB page cache, temporary tables in
 * memory and a 5 s busy timeout; `overrides` change any of them.
 */
export function sqliteOptions(path: string, overrides: Partial<SqliteOptions> = {}): SqliteOptions {
  return {
    path,
    journalMode: 'WAL',
    synchronous: 'NORMAL',
    cacheSize: -2000,
    tempStore: 'MEMORY',
    busyTimeoutMs: 5000,
    ...overrides,
  };
}

/**
 * The store options of the tests that follow the daemon's path: `sqliteOptions` with an 8 MB page
 * cache and the daemon's rollups kept in `timeZone` (gap limit 5 minutes unless given).
 */
export function testStoreOptions(
  path: string,
  lifecycle: { readonly timeZone: string; readonly gapLimitMs?: number } = { timeZone: 'UTC' },
): SqliteOptions {
  return sqliteOptions(path, {
    cacheSize: -8000,
    lifecycle: {
      rollups: true,
      timeZone: lifecycle.timeZone,
      gapLimitMs: lifecycle.gapLimitMs ?? 5 * 60_000,
    },
  });
}

/** Runs `fn` with a started store on `options`, and stops the store afterwards whatever happens. */
export async function withStore<T>(
  options: SqliteOptions,
  fn: (store: SqliteStore) => Promise<T>,
): Promise<T> {
  const store = new SqliteStore(options, createSilentLogger());
  await store.start();
  try {
    return await fn(store);
  } finally {
    await store.stop();
  }
}
