import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger } from '../src/log/logger.js';
import { BoundedQueue, type OverflowPolicy } from '../src/queue/bounded-queue.js';
import { StorageError } from '../src/storage/errors.js';
import type { ReadingSink, SinkWriteResult } from '../src/storage/sink.js';
import { openReadingsReader, SqliteStore } from '../src/storage/sqlite/index.js';
import { defaultRetryDelay, Writer, type WriterStats } from '../src/storage/writer.js';
import { captureLogger } from './helpers/capture-logger.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { settle, waitFor } from './helpers/wait.js';

const T0 = Date.UTC(2026, 10, 26);

function readings(count: number, from = 0): Reading[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return {
      channel: `CH${i % 3}`,
      tsMs: T0 + i,
      powerMw: i,
      voltageMv: 230_000,
      currentMa: 100,
      totalWh: i,
    };
  });
}

/** A sink that records every call, remembers what it stored, and can be told to fail or to block. */
class ScriptedSink implements ReadingSink {
  readonly calls: Reading[][] = [];
  readonly stored = new Set<string>();
  /** Fail this many of the next calls with a transient SQLITE_FULL. */
  failNext = 0;
  maxConcurrent = 0;
  #concurrent = 0;
  #gate: Promise<void> | null = null;

  /** Calls from now on wait until the returned function is called. */
  block(): () => void {
    let release!: () => void;
    this.#gate = new Promise((resolve) => {
      release = resolve;
    });
    return () => {
      this.#gate = null;
      release();
    };
  }

  async writeBatch(batch: readonly Reading[]): Promise<SinkWriteResult> {
    this.calls.push([...batch]);
    this.#concurrent++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.#concurrent);
    try {
      if (this.#gate !== null) await this.#gate;
      if (this.failNext > 0) {
        this.failNext--;
        throw new StorageError('database or disk is full', {
          code: 'SQLITE_FULL',
          transient: true,
          failureKind: 'after-recovery',
        });
      }
      let inserted = 0;
      for (const r of batch) {
        const key = `${r.channel}@${r.tsMs}`;
        if (!this.stored.has(key)) {
          this.stored.add(key);
          inserted++;
        }
      }
      return { inserted, duplicates: batch.length - inserted };
    } finally {
      this.#concurrent--;
    }
  }
}

function makeQueue(capacity = 10_000, overflow: OverflowPolicy = 'drop-newest'): BoundedQueue<Reading> {
  return new BoundedQueue<Reading>({ capacity, overflow }, createSilentLogger());
}

/** offered = written + duplicates + invalid + dropped (queue and shutdown) + still queued + in flight. */
function assertAccounted(queue: BoundedQueue<Reading>, stats: WriterStats): void {
  const q = queue.stats();
  assert.equal(
    q.offered,
    stats.written +
      stats.duplicates +
      stats.invalid +
      q.dropped +
      stats.droppedAtShutdown +
      q.size +
      stats.inFlight,
    JSON.stringify({ queue: q, stats }),
  );
}

const HOUR = 3_600_000;

describe('Writer batching', () => {
  test('flushes as soon as batchSize readings are queued, without waiting for the interval', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 5, flushIntervalMs: HOUR }, createSilentLogger());
    writer.start();
    const offered = readings(5);
    for (const r of offered.slice(0, 4)) queue.offer(r);
    await settle(5);
    assert.equal(sink.calls.length, 0, 'four readings are not a batch yet');
    queue.offer(offered[4] as Reading);
    await settle(5);
    assert.deepEqual(sink.calls, [offered]);
    assert.equal(writer.stats().written, 5);
    await writer.stop();
  });

  test('flushes a partial batch when the flush interval passes', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 100, flushIntervalMs: 1000 }, createSilentLogger());
    writer.start();
    const offered = readings(3);
    for (const r of offered) queue.offer(r);
    await settle(5);
    t.mock.timers.tick(999);
    await settle(5);
    assert.equal(sink.calls.length, 0);
    t.mock.timers.tick(1);
    await settle(5);
    assert.deepEqual(sink.calls, [offered]);
    const stats = await writer.stop();
    assert.equal(stats.written, 3);
  });

  test('keeps one batch in flight at a time and writes batches in queue order', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 2, flushIntervalMs: HOUR }, createSilentLogger());
    writer.start();
    const release = sink.block();
    const offered = readings(6);
    // The producer is never held up by the blocked sink: offer() returns at once.
    for (const r of offered) assert.equal(queue.offer(r), true);
    await settle(5);
    assert.equal(sink.calls.length, 1);
    assert.equal(writer.stats().inFlight, 2);
    assert.equal(queue.size, 4);
    release();
    await waitFor(() => writer.stats().written === 6, 'all six written');
    assert.equal(sink.maxConcurrent, 1);
    assert.deepEqual(sink.calls.flat(), offered);
    assert.deepEqual(
      sink.calls.map((c) => c.length),
      [2, 2, 2],
    );
    await writer.stop();
  });

  test('reconfigure() applies a new batch size to the next batch', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 10, flushIntervalMs: HOUR }, createSilentLogger());
    writer.start();
    for (const r of readings(2)) queue.offer(r);
    await settle(5);
    assert.equal(sink.calls.length, 0);
    writer.reconfigure({ batchSize: 2 });
    await settle(5);
    assert.equal(sink.calls.length, 1);
    assert.throws(() => writer.reconfigure({ batchSize: 0 }), RangeError);
    await writer.stop();
  });

  test('counts duplicates the sink reports separately from new rows', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 4, flushIntervalMs: HOUR }, createSilentLogger());
    writer.start();
    for (const r of [...readings(4), ...readings(4)]) queue.offer(r);
    const stats = await writer.stop();
    assert.equal(stats.written, 4);
    assert.equal(stats.duplicates, 4);
    assertAccounted(queue, stats);
  });
});

describe('Writer failures', () => {
  test('a failed batch is held and written again before newer readings; one warning per failure episode', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const { logger, lines } = captureLogger();
    const delays: [number, unknown][] = [];
    const writer = new Writer(
      queue,
      sink,
      { batchSize: 2, flushIntervalMs: HOUR },
      logger,
      (failures, error) => {
        delays.push([failures, error]);
        return 1;
      },
    );
    writer.start();
    sink.failNext = 3;
    const first = readings(2);
    for (const r of first) queue.offer(r);
    await waitFor(() => sink.calls.length >= 2, 'a retry');
    const newer = readings(2, 2);
    for (const r of newer) queue.offer(r);
    await waitFor(() => writer.stats().written === 4, 'both batches written');
    assert.deepEqual(sink.calls, [first, first, first, first, newer]);
    const stats = writer.stats();
    assert.equal(stats.failedBatches, 3);
    assert.equal(stats.lastError?.code, 'SQLITE_FULL');
    assert.deepEqual(
      delays.map(([failures]) => failures),
      [1, 2, 3],
    );
    assert.ok(delays.every(([, error]) => error instanceof StorageError));
    const warnings = () => lines().filter((l) => l['level'] === 40).length;
    assert.equal(warnings(), 1);
    assert.equal(lines().filter((l) => /recovered/.test(String(l['msg']))).length, 1);

    // A new episode warns again.
    sink.failNext = 1;
    for (const r of readings(2, 4)) queue.offer(r);
    await waitFor(() => writer.stats().written === 6, 'third batch written');
    assert.equal(warnings(), 2);
    assertAccounted(queue, await writer.stop());
  });

  test('the default retry delay grows and is capped at a few seconds', () => {
    const delays = Array.from({ length: 12 }, (_, i) => defaultRetryDelay(i + 1, new Error('x')));
    assert.equal(delays[0], 250);
    for (let i = 1; i < delays.length; i++) assert.ok((delays[i] as number) >= (delays[i - 1] as number));
    assert.ok((delays[2] as number) > (delays[0] as number));
    assert.equal(Math.max(...delays), 5000);
  });
});

describe('Writer shutdown', () => {
  test('stop() writes everything queued, once, and a second stop() does nothing more', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 3, flushIntervalMs: HOUR }, createSilentLogger());
    writer.start();
    const release = sink.block();
    const offered = readings(7);
    for (const r of offered) queue.offer(r);
    await settle(5);
    release();
    const [stats, again] = await Promise.all([writer.stop(), writer.stop()]);
    assert.equal(stats, again);
    assert.equal(stats.written, 7);
    assert.equal(stats.droppedAtShutdown, 0);
    assert.deepEqual(sink.calls.flat(), offered);
    const calls = sink.calls.length;
    assert.equal(await writer.stop(), stats);
    queue.offer(readings(1, 100)[0] as Reading);
    await settle(5);
    assert.equal(sink.calls.length, calls, 'a stopped writer writes nothing more');
    assertAccounted(queue, writer.stats());
  });

  test('stop() drains a queue even if the writer was never started', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 4, flushIntervalMs: HOUR }, createSilentLogger());
    for (const r of readings(10)) queue.offer(r);
    const stats = await writer.stop();
    assert.equal(stats.written, 10);
    assert.equal(queue.size, 0);
  });

  test('what cannot be written before the deadline is counted as dropped at shutdown and logged', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    sink.failNext = Number.POSITIVE_INFINITY;
    const { logger, lines } = captureLogger();
    const writer = new Writer(queue, sink, { batchSize: 2, flushIntervalMs: HOUR }, logger, () => 1);
    writer.start();
    for (const r of readings(5)) queue.offer(r);
    const stats = await writer.stop(30);
    assert.equal(stats.written, 0);
    assert.equal(stats.droppedAtShutdown, 5);
    assert.equal(stats.inFlight, 0);
    assert.ok(stats.failedBatches >= 1);
    assert.equal(queue.size, 0);
    assertAccounted(queue, stats);
    const dropLog = lines().find((l) => /shutdown deadline/.test(String(l['msg'])));
    assert.equal(dropLog?.['dropped'], 5);
    assert.equal(dropLog?.['level'], 50);
  });

  test('a write still running at the deadline is reported in flight and counted when it settles', async () => {
    const queue = makeQueue();
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 2, flushIntervalMs: HOUR }, createSilentLogger());
    writer.start();
    const release = sink.block();
    for (const r of readings(5)) queue.offer(r);
    await settle(5);
    const stats = await writer.stop(20);
    assert.equal(stats.inFlight, 2);
    assert.equal(stats.droppedAtShutdown, 3);
    assertAccounted(queue, stats);
    release();
    await waitFor(() => writer.stats().inFlight === 0, 'the late batch settled');
    assert.equal(writer.stats().written, 2);
    assertAccounted(queue, writer.stats());
  });

  test('every offered reading is accounted for when the queue overflows behind a slow sink', async () => {
    const queue = makeQueue(10, 'drop-oldest');
    const sink = new ScriptedSink();
    const writer = new Writer(queue, sink, { batchSize: 4, flushIntervalMs: HOUR }, createSilentLogger());
    writer.start();
    const release = sink.block();
    for (const r of readings(100)) queue.offer(r);
    await settle(5);
    assertAccounted(queue, writer.stats());
    release();
    const stats = await writer.stop();
    assert.ok(stats.written > 0);
    assert.ok(queue.stats().dropped > 0);
    assertAccounted(queue, stats);
    assert.equal(queue.stats().offered, stats.written + queue.stats().dropped);
  });
});

describe('Writer with the SQLite store', () => {
  const root = mkdtempSync(join(tmpdir(), 'kasa-writer-test-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('drains the queue into SQLite; replaying the same readings stores nothing twice', async () => {
    const path = join(root, 'writer.db');
    const store = new SqliteStore(sqliteOptions(path, { synchronous: 'FULL' }), createSilentLogger());
    await store.start();
    try {
      const offered = readings(2500);
      for (const round of [1, 2]) {
        const queue = makeQueue();
        const writer = new Writer(
          queue,
          store,
          { batchSize: 1000, flushIntervalMs: 10 },
          createSilentLogger(),
        );
        writer.start();
        for (const r of offered) queue.offer(r);
        const stats = await writer.stop();
        assert.equal(stats.written, round === 1 ? 2500 : 0);
        assert.equal(stats.duplicates, round === 1 ? 0 : 2500);
        assertAccounted(queue, stats);
      }
    } finally {
      await store.stop();
    }
    const reader = openReadingsReader(path);
    try {
      const rows = [...reader.readings()];
      assert.equal(rows.length, 2500);
      assert.deepEqual(
        rows.map((r) => r.tsMs),
        readings(2500).map((r) => r.tsMs),
      );
    } finally {
      reader.close();
    }
  });
});
