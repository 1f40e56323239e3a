import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger } from '../src/log/logger.js';
import { BoundedQueue } from '../src/queue/bounded-queue.js';
import { isStorageError, KasaStorageCode } from '../src/storage/errors.js';
import { openReadingsReader, type SqliteOptions, SqliteStore } from '../src/storage/sqlite/index.js';
import { Writer } from '../src/storage/writer.js';
import { captureLogger } from './helpers/capture-logger.js';
import { overwriteBytes } from './helpers/damage.js';
import { rejectsWith } from './helpers/rejections.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { holdWriteLock } from './helpers/sqlite-files.js';
import { storedCount } from './helpers/stored.js';
import { tempRoot } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';
import { faultyWriter, writerFaults } from './helpers/writer-faults.js';

const root = tempRoot('kasa-storage-faults-');
let fileCounter = 0;

function options(overrides: Partial<SqliteOptions> = {}): SqliteOptions {
  return sqliteOptions(join(root, `faults-${++fileCounter}.db`), { synchronous: 'FULL', ...overrides });
}

const T0 = Date.UTC(2026, 10, 26);

function readings(count: number, channels: number, startMs = T0, prefix = 'CH'): Reading[] {
  return Array.from({ length: count }, (_, i) => ({
    channel: `${prefix}${i % channels}`,
    tsMs: startMs + Math.floor(i / channels) * 10_000,
    powerMw: 40_000 + i,
    voltageMv: 230_000,
    currentMa: 180,
    totalWh: 1000 + i,
  }));
}

describe('a held write lock', () => {
  test('the event loop keeps running while a batch waits on busy_timeout, and the batch commits after release', async () => {
    const opts = options({ busyTimeoutMs: 60_000 });
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    try {
      await store.writeBatch(readings(10, 2));
      const lock = holdWriteLock(opts.path);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      let settled = false;
      const pending = store.writeBatch(readings(100, 5, T0 + 1_000_000)).finally(() => {
        settled = true;
      });
      try {
        await waitFor(() => ticks >= 50, 'the interval timer ticked 50 times');
        assert.equal(settled, false, 'the batch cannot commit while the other connection holds the lock');
      } finally {
        lock.release();
        clearInterval(timer);
      }
      assert.deepEqual(await pending, { inserted: 100, duplicates: 0, invalid: 0 });
    } finally {
      await store.stop();
    }
    assert.equal(storedCount(opts.path), 110);
  });

  test('a lock held past busy_timeout is a transient SQLITE_BUSY and the batch can be written again', async () => {
    const opts = options({ busyTimeoutMs: 20 });
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    try {
      const batch = readings(50, 5);
      const lock = holdWriteLock(opts.path);
      try {
        await rejectsWith(store.writeBatch(batch), 'SQLITE_BUSY', true);
      } finally {
        lock.release();
      }
      assert.deepEqual(await store.writeBatch(batch), { inserted: 50, duplicates: 0, invalid: 0 });
    } finally {
      await store.stop();
    }
    assert.equal(storedCount(opts.path), 50);
  });
});

describe('a full disk', () => {
  test('SQLITE_FULL is transient; the writer holds the batch, writes it once space returns, nothing doubled', async () => {
    const opts = options();
    const { logger, lines } = captureLogger();
    const store = new SqliteStore(opts, createSilentLogger(), faultyWriter);
    await store.start();
    const queue = new BoundedQueue<Reading>(
      { capacity: 10_000, overflow: 'drop-newest' },
      createSilentLogger(),
    );
    const writer = new Writer(queue, store, { batchSize: 500, flushIntervalMs: 10 }, logger, () => 5);
    try {
      await store.writeBatch(readings(10, 2, T0, 'OLD'));
      // Returns the cap SQLite applied: the current size, since it cannot go lower.
      await writerFaults(opts.path).setMaxPageCount(1);
      // New channels too: their rows are created in the failing transaction and must roll back cleanly.
      const incoming = readings(1500, 30);
      await rejectsWith(store.writeBatch(incoming), 'SQLITE_FULL', true);
      assert.equal(storedCount(opts.path), 10, 'a failed batch stores nothing');

      writer.start();
      for (const r of incoming) queue.offer(r);
      await waitFor(() => writer.stats().failedBatches >= 3, 'three failed attempts');
      const failing = writer.stats();
      assert.equal(failing.written, 0);
      assert.equal(failing.inFlight, 500);
      assert.equal(failing.lastError?.code, 'SQLITE_FULL');
      assert.equal(failing.lastError?.transient, true);

      await writerFaults(opts.path).setMaxPageCount(null);
      await waitFor(() => writer.stats().written === 1500, 'all readings written after space returned');
      const stats = await writer.stop();
      assert.equal(stats.duplicates, 0);
      assert.equal(stats.droppedAtShutdown, 0);
      const q = queue.stats();
      assert.equal(q.offered, stats.written + q.dropped + q.size + stats.inFlight);
    } finally {
      await writer.stop();
      await store.stop();
    }
    assert.equal(storedCount(opts.path), 1510);
    const reader = openReadingsReader(opts.path);
    try {
      const ch7 = [...reader.readings({ channels: ['CH7'] })];
      assert.equal(ch7.length, 50);
      assert.ok(ch7.every((r) => r.deviceId === 'CH7'));
    } finally {
      reader.close();
    }
    assert.equal(
      lines().filter((l) => l['msg'] === 'storage write failed; holding the batch and retrying with backoff')
        .length,
      1,
    );
    assert.equal(
      lines().filter((l) => l['msg'] === 'storage writes recovered; the held batch is written').length,
      1,
    );
  });
});

describe('damaged files and a dying worker', () => {
  test('a database with corrupted pages fails start with a permanent SQLITE_CORRUPT error', async () => {
    const opts = options();
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    await store.writeBatch(readings(20_000, 20));
    await store.stop();
    // Keep page 1 (header and schema), overwrite the rest with garbage.
    const size = statSync(opts.path).size;
    const junk = Buffer.alloc(size - 4096, 0xa5);
    for (let i = 0; i < junk.length; i += 97) junk[i] = i & 0xff;
    overwriteBytes(opts.path, junk, 4096);
    const broken = new SqliteStore(opts, createSilentLogger());
    try {
      await broken.start();
      assert.fail('start() should have failed');
    } catch (error) {
      assert.ok(isStorageError(error));
      assert.match(error.code, /^SQLITE_CORRUPT/);
      assert.equal(error.transient, false);
    }
    await broken.stop();
  });

  test('a worker crash rejects pending and later calls with a StorageError instead of hanging', async () => {
    const { logger, lines } = captureLogger();
    const opts = options();
    const store = new SqliteStore(opts, logger, faultyWriter);
    await store.start();
    await writerFaults(opts.path).crashOnNextCall();
    // The worker dies while this call is pending: it is rejected, not left hanging.
    await rejectsWith(store.writeBatch(readings(10, 1)), KasaStorageCode.workerExited, false);
    assert.equal(store.state, 'failed');
    await rejectsWith(store.writeBatch(readings(10, 1)), KasaStorageCode.workerExited, false);
    assert.ok(lines().some((l) => l['msg'] === 'SQLite writer worker died'));
    await store.stop();
  });
});
