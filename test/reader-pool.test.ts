/**
 * The reader pool against real SQLite files: each knob (size, max_overflow, timeout, recycle) has a
 * test that fails without it; the fallback to one main-thread connection; exports built in a worker
 * equal what the export command's reader produces.
 */
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createSilentLogger } from '../src/log/logger.js';
import { isStorageError, KasaStorageCode } from '../src/storage/errors.js';
import {
  CSV_HEADER,
  csvRow,
  jsonRow,
  openReadingsReader,
  POOL_EXPORTS_BUSY_CODE,
  POOL_TIMEOUT_CODE,
  type PoolLease,
  ReaderPool,
  type ReaderPoolOptions,
  type SqliteOptions,
} from '../src/storage/sqlite/index.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { createSyntheticDatabase } from './helpers/sqlite-files.js';
import { tempRoot } from './helpers/temp.js';
import { settle, waitFor } from './helpers/wait.js';

const root = tempRoot('kasa-reader-pool-');
let counter = 0;

const T0 = Date.UTC(2026, 0, 1);

function sqlite(path: string, journalMode: SqliteOptions['journalMode'] = 'WAL'): SqliteOptions {
  return sqliteOptions(path, { journalMode });
}

function database(
  channels: number,
  perChannel: number,
  journalMode: SqliteOptions['journalMode'] = 'WAL',
  path = join(root, `db-${++counter}.db`),
): string {
  createSyntheticDatabase(sqlite(path, journalMode), {
    channels: Array.from({ length: channels }, (_, i) => ({
      id: `DEV${i}`,
      alias: i === 1 ? 'desk, "left"' : `plug ${i}`,
    })),
    startMs: T0,
    perChannel,
    intervalMs: 60_000,
  });
  return path;
}

function pool(path: string, options: Partial<ReaderPoolOptions> = {}): ReaderPool {
  return new ReaderPool(
    { path, size: 2, maxOverflow: 3, timeoutMs: 30_000, recycleMs: 3_600_000, ...options },
    createSilentLogger(),
  );
}

describe('reader pool', () => {
  test('pool.size: after a burst only `size` connections stay open, and they are reused', async () => {
    const p = pool(database(2, 10), { size: 2, maxOverflow: 3 });
    await p.start();
    try {
      const leases = await Promise.all(Array.from({ length: 5 }, () => p.acquire()));
      assert.equal(p.stats().inUse, 5);
      assert.equal(p.stats().opened, 5, 'size + overflow connections opened under load');
      const threads = new Set(leases.map((l) => l.connection.threadId));
      assert.equal(threads.size, 5, 'five distinct workers');
      for (const lease of leases) lease.release();
      await settle();
      assert.equal(p.stats().idle, 2, 'idle connections beyond size are closed');
      assert.equal(p.stats().closed, 3);
      const again = await Promise.all([p.acquire(), p.acquire()]);
      assert.equal(p.stats().opened, 5, 'the kept connections are lent again, none opened');
      for (const lease of again) assert.ok(threads.has(lease.connection.threadId));
      for (const lease of again) lease.release();
    } finally {
      await p.stop();
    }
  });

  test('pool.max_overflow: at most size + max_overflow connections; the next request waits for one given back', async () => {
    const p = pool(database(1, 10), { size: 1, maxOverflow: 1 });
    await p.start();
    try {
      const first = await p.acquire();
      const second = await p.acquire();
      let third: PoolLease | null = null;
      const waiting = p.acquire().then((lease) => {
        third = lease;
        return lease;
      });
      await settle();
      assert.equal(third, null, 'no third connection while two are lent');
      assert.deepEqual(
        { open: p.stats().open, waiting: p.stats().waiting, peak: p.stats().peakInUse },
        { open: 2, waiting: 1, peak: 2 },
      );
      second.release();
      const lease = await waiting;
      assert.equal(lease.connection, second.connection, 'the waiter gets the connection given back');
      assert.equal(p.stats().opened, 2);
      lease.release();
      first.release();
    } finally {
      await p.stop();
    }
  });

  test('pool.timeout: a request that finds no free connection in time fails with PoolTimeoutError', async () => {
    const p = pool(database(1, 10), { size: 1, maxOverflow: 0, timeoutMs: 50 });
    await p.start();
    try {
      const held = await p.acquire();
      await assert.rejects(p.acquire(), (error: unknown) => {
        assert.ok(isStorageError(error));
        assert.equal(error.code, POOL_TIMEOUT_CODE);
        assert.equal(error.transient, true);
        return true;
      });
      assert.equal(p.stats().timeouts, 1);
      assert.equal(p.stats().waiting, 0, 'the timed-out request no longer waits');
      held.release();
      const next = await p.acquire();
      assert.equal(next.connection, held.connection);
      next.release();
    } finally {
      await p.stop();
    }
  });

  test('pool.recycle: a connection older than recycle is reopened at checkout and sees the file as it is now', async () => {
    // DELETE journal: replacing the file leaves no -wal/-shm of the old one behind.
    const path = database(1, 5, 'DELETE');
    let nowMs = 1_000_000;
    const p = pool(path, { size: 1, maxOverflow: 0, recycleMs: 60_000, now: () => nowMs });
    await p.start();
    try {
      const first = await p.acquire();
      assert.equal(await first.connection.ping(), 1);
      first.release();
      // The file is replaced (a restore, say): an open connection still reads the old one.
      const replacement = database(3, 5, 'DELETE', join(root, `replacement-${++counter}.db`));
      renameSync(replacement, path);
      nowMs += 59_999;
      const young = await p.acquire();
      assert.equal(young.connection, first.connection, 'younger than recycle: reused');
      assert.equal(await young.connection.ping(), 1, 'still the old file');
      young.release();
      nowMs += 1;
      const renewed = await p.acquire();
      assert.notEqual(renewed.connection, first.connection, 'recycled');
      assert.notEqual(renewed.connection.threadId, first.connection.threadId);
      assert.equal(await renewed.connection.ping(), 3, 'the new connection reads the new file');
      assert.equal(p.stats().recycled, 1);
      renewed.release();
    } finally {
      await p.stop();
    }
  });

  test('when no reader worker can start, the pool falls back to one connection on the main thread and says so', async () => {
    const broken = join(root, 'broken-worker.mjs');
    writeFileSync(broken, "throw new Error('workers are not allowed here');\n");
    const p = pool(database(2, 30), { size: 3, maxOverflow: 2, workerUrl: pathToFileURL(broken) });
    await p.start();
    try {
      const stats = p.stats();
      assert.equal(stats.mode, 'single');
      assert.match(stats.fallbackReason ?? '', /workers are not allowed here/);
      assert.equal((await p.ping()).channels, 2, 'queries still work');
      const held = await p.acquire();
      assert.equal(held.connection.threadId, null, 'on the main thread');
      let second: PoolLease | null = null;
      const waiting = p.acquire().then((lease) => {
        second = lease;
        return lease;
      });
      await settle();
      assert.equal(second, null, 'one connection only');
      held.release();
      (await waiting).release();
      const chunks: Buffer[] = [];
      const { rows } = await p.exportReadings({}, 'csv', (bytes) => {
        chunks.push(Buffer.from(bytes));
      });
      assert.equal(rows, 60);
      assert.equal(Buffer.concat(chunks).toString().trim().split('\n').length, 61);
    } finally {
      await p.stop();
    }
  });

  test('exports are built in a worker and equal what the export reader produces, in CSV and JSON', async () => {
    const path = database(3, 5000);
    const p = pool(path, { chunkRows: 700 });
    await p.start();
    const reader = openReadingsReader(path);
    try {
      const fromMs = T0 + 60_000 * 100;
      const toMs = T0 + 60_000 * 4000;
      const expected = [...reader.readings({ fromMs, toMs })];
      const collect = async (format: 'csv' | 'json', device?: string) => {
        const chunks: Buffer[] = [];
        let pieces = 0;
        const result = await p.exportReadings(
          { fromMs, toMs, ...(device === undefined ? {} : { device }) },
          format,
          (bytes) => {
            pieces++;
            chunks.push(Buffer.from(bytes));
          },
        );
        return { text: Buffer.concat(chunks).toString(), rows: result.rows, pieces };
      };
      const csv = await collect('csv');
      assert.equal(csv.rows, expected.length);
      assert.ok(csv.pieces > 10, 'sent in chunks');
      assert.equal(csv.text, `${CSV_HEADER}\n${expected.map((r) => `${csvRow(r)}\n`).join('')}`);
      const json = await collect('json');
      assert.equal(json.text, `[\n${expected.map(jsonRow).join(',\n')}\n]\n`);
      assert.equal((JSON.parse(json.text) as unknown[]).length, expected.length);
      const one = await collect('csv', 'desk, "left"');
      assert.equal(one.rows, expected.filter((r) => r.deviceId === 'DEV1').length, 'by alias');
      await assert.rejects(collect('json', 'nope'), (error: unknown) => {
        assert.ok(isStorageError(error));
        assert.equal(error.code, KasaStorageCode.unknownDevice);
        return true;
      });
      const empty = await collect('json', 'DEV0');
      assert.ok(empty.rows > 0);
      assert.equal(p.stats().inUse, 0, 'every export gave its connection back');
    } finally {
      reader.close();
      await p.stop();
    }
  });

  test('exports may hold every connection but one: one more is refused at once, a short query still runs', async () => {
    const p = pool(database(1, 20_000), { size: 1, maxOverflow: 2, timeoutMs: 30_000, chunkRows: 100 });
    await p.start();
    const gates: (() => void)[] = [];
    try {
      assert.equal(p.exportLimit, 2);
      // Two exports whose client never takes the next chunk.
      const stalled = [0, 1].map(() =>
        p.exportReadings({}, 'csv', () => new Promise<void>((resolve) => gates.push(resolve))),
      );
      await waitFor(() => gates.length === 2, 'both queries waiting at their gates');
      await assert.rejects(
        p.exportReadings({}, 'csv', () => undefined),
        (error: unknown) => isStorageError(error) && error.code === POOL_EXPORTS_BUSY_CODE && error.transient,
      );
      assert.equal(p.exportStats().refused, 1);
      assert.equal((await p.ping()).channels, 1, 'the last connection serves a short query');
      assert.equal(p.stats().timeouts, 0);
      // Released: each client goes away; their connections come back.
      for (const gate of gates.splice(0)) gate();
      while (p.exportStats().running > 0) {
        for (const gate of gates.splice(0)) gate();
        await settle();
      }
      await Promise.all(stalled);
      assert.equal(p.stats().inUse, 0);
    } finally {
      for (const gate of gates.splice(0)) gate();
      await p.stop();
    }
  });

  test('reopen closes idle connections; the next request opens the file afresh', async () => {
    const p = pool(database(1, 5));
    await p.start();
    try {
      const before = await p.acquire();
      const threadId = before.connection.threadId;
      before.release();
      await p.reopen();
      const after = await p.acquire();
      assert.notEqual(after.connection.threadId, threadId);
      after.release();
      assert.equal(p.stats().mode, 'pool');
    } finally {
      await p.stop();
    }
    await assert.rejects(
      p.acquire(),
      (error: unknown) => isStorageError(error) && error.code === KasaStorageCode.notOpen,
    );
  });
});
