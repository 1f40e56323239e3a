/**
 * Reader connections cost a worker isolate each: an idle pool closes them (kept ones included)
 * after idleTimeoutMs, and the next request opens one again. Real SQLite file, real workers.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createSilentLogger } from '../src/log/logger.js';
import { ReaderPool } from '../src/storage/sqlite/index.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { createSyntheticDatabase } from './helpers/sqlite-files.js';
import { tempRoot } from './helpers/temp.js';
import { sleep, waitFor } from './helpers/wait.js';

const root = tempRoot('kasa-reader-idle-');

function database(name: string): string {
  const path = join(root, name);
  createSyntheticDatabase(sqliteOptions(path), {
    channels: [{ id: 'DEV0', alias: 'plug 0' }],
    startMs: Date.UTC(2026, 0, 1),
    perChannel: 10,
    intervalMs: 60_000,
  });
  return path;
}

describe('reader pool idle timeout', () => {
  test('an idle pool closes every worker connection, kept ones included, and opens one on demand', async () => {
    const pool = new ReaderPool(
      {
        path: database('idle.db'),
        size: 3,
        maxOverflow: 2,
        timeoutMs: 30_000,
        recycleMs: 3_600_000,
        idleTimeoutMs: 150,
      },
      createSilentLogger(),
    );
    await pool.start();
    try {
      const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
      // start()'s connection may have timed out idle already on a loaded machine: count from here.
      const closedBefore = pool.stats().idleClosed;
      for (const lease of leases) lease.release();
      assert.equal(pool.stats().idle, 3);
      await waitFor(() => pool.stats().open === 0, 'every connection closed');
      assert.equal(pool.stats().idleClosed - closedBefore, 3);
      assert.equal(pool.stats().mode, 'pool');

      const lease = await pool.acquire();
      try {
        assert.equal(await lease.connection.ping(), 1);
      } finally {
        lease.release();
      }
      assert.equal(pool.stats().open, 1);
    } finally {
      await pool.stop();
    }
  });

  test('a connection in use is never closed for idleness, and 0 keeps idle ones open', async () => {
    const path = database('busy.db');
    const busy = new ReaderPool(
      { path, size: 1, maxOverflow: 0, timeoutMs: 30_000, recycleMs: 3_600_000, idleTimeoutMs: 50 },
      createSilentLogger(),
    );
    const keep = new ReaderPool(
      { path, size: 1, maxOverflow: 0, timeoutMs: 30_000, recycleMs: 3_600_000, idleTimeoutMs: 0 },
      createSilentLogger(),
    );
    await busy.start();
    await keep.start();
    try {
      const lease = await busy.acquire();
      // The connection start() opened may have timed out idle meanwhile (a loaded machine): count from here.
      const closedBefore = busy.stats().idleClosed;
      await sleep(300);
      assert.equal(await lease.connection.ping(), 1);
      assert.equal(busy.stats().idleClosed, closedBefore);
      lease.release();
      await waitFor(() => busy.stats().open === 0, 'every connection closed');

      (await keep.acquire()).release();
      await sleep(300);
      assert.equal(keep.stats().open, 1);
      assert.equal(keep.stats().idleClosed, 0);
    } finally {
      await busy.stop();
      await keep.stop();
    }
  });
  test('the health check ping opens no reader worker, and answers what the database holds', async () => {
    const path = database('ping.db');
    const pool = new ReaderPool(
      { path, size: 2, maxOverflow: 0, timeoutMs: 30_000, recycleMs: 3_600_000, idleTimeoutMs: 50 },
      createSilentLogger(),
    );
    await pool.start();
    try {
      await waitFor(() => pool.stats().open === 0, "start()'s connection closed while idle");
      const opened = pool.stats().opened;
      for (let i = 0; i < 3; i++) assert.equal((await pool.ping()).channels, 1);
      assert.equal(pool.stats().opened, opened, 'no worker connection was opened for the pings');
      assert.equal(pool.stats().open, 0);
    } finally {
      await pool.stop();
    }
  });
});
