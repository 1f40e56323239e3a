import type { SqliteOptions } from '../../src/storage/sqlite/index.js';

/**
 * The SQLite store options the tests use: a real file in WAL mode, with the daemon's rollups kept
 * in `timeZone` (gap limit 5 minutes unless given). NORMAL sync: these tests are about what is
 * stored, not about surviving a power cut.
 */
export function testStoreOptions(
  path: string,
  lifecycle: { readonly timeZone: string; readonly gapLimitMs?: number } = { timeZone: 'UTC' },
): SqliteOptions {
  return {
    path,
    journalMode: 'WAL',
    synchronous: 'NORMAL',
    cacheSize: -8000,
    tempStore: 'MEMORY',
    busyTimeoutMs: 5000,
    lifecycle: {
      rollups: true,
      timeZone: lifecycle.timeZone,
      gapLimitMs: lifecycle.gapLimitMs ?? 5 * 60_000,
    },
  };
}
