/**
 * SQLite under the database policy, with real faults on real files: a write lock held by another
 * connection (SQLITE_BUSY) and a full disk (SQLITE_FULL through max_page_count). After each fault
 * clears, nothing is missing, nothing is doubled, and the outbox that feeds InfluxDB holds every new
 * reading exactly once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger } from '../src/log/logger.js';
import { BoundedQueue } from '../src/queue/bounded-queue.js';
import { type PolicySettings, ResiliencePolicy } from '../src/resilience/index.js';
import { openReadingsReader, type SqliteOptions, SqliteStore } from '../src/storage/sqlite/index.js';
import { Writer } from '../src/storage/writer.js';
import { captureLogger } from './helpers/capture-logger.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { holdWriteLock, outboxFileSummary } from './helpers/sqlite-files.js';
import { tempRoot } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';
import { faultyWriter, writerFaults } from './helpers/writer-faults.js';

const root = tempRoot('kasa-sqlite-fault-');
let fileCounter = 0;

function options(overrides: Partial<SqliteOptions> = {}): SqliteOptions {
  return sqliteOptions(join(root, `fault-${++fileCounter}.db`), {
    synchronous: 'FULL',
    busyTimeoutMs: 20,
    outbox: true,
    ...overrides,
  });
}

/** The database preset's shape with short delays, so a test spends little time waiting. */
function databasePolicy(overrides: Partial<PolicySettings> = {}): ResiliencePolicy {
  return new ResiliencePolicy(
    'sqlite.write',
    'database',
    {
      strategy: 'exponential',
      baseDelayMs: 10,
      maxDelayMs: 50,
      jitter: true,
      maxAttempts: 3,
      timeoutMs: 30_000,
      breakerThreshold: 3,
      breakerHalfOpenAfterMs: 100,
      ...overrides,
    },
    createSilentLogger(),
  );
}

const T0 = Date.UTC(2026, 10, 26);

function reading(i: number, channels = 10): Reading {
  return {
    channel: `CH${i % channels}`,
    tsMs: T0 + Math.floor(i / channels) * 1000,
    powerMw: 40_000 + i,
    voltageMv: 230_000,
    currentMa: 180,
    totalWh: 1000 + i,
  };
}

/** Every stored reading as "channel@ts"; fails on a key stored twice. */
function storedKeys(path: string): Set<string> {
  const reader = openReadingsReader(path);
  try {
    const keys = new Set<string>();
    for (const r of reader.readings()) {
      const key = `${r.deviceId}@${r.tsMs}`;
      assert.ok(!keys.has(key), `${key} stored twice`);
      keys.add(key);
    }
    return keys;
  } finally {
    reader.close();
  }
}

function keyOf(r: Reading): string {
  return `${r.channel}@${r.tsMs}`;
}

describe('SQLITE_BUSY under the database policy', () => {
  test('a write lock held by another connection is retried with backoff; after release every reading is stored once', async () => {
    const opts = options();
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    const policy = databasePolicy({ breakerThreshold: 1000 });
    const queue = new BoundedQueue<Reading>(
      { capacity: 100_000, overflow: 'drop-oldest' },
      createSilentLogger(),
    );
    const { logger, lines } = captureLogger('debug');
    const writer = new Writer(
      queue,
      store,
      { batchSize: 200, flushIntervalMs: 10 },
      logger,
      () => 20,
      policy,
    );
    const offered: Reading[] = [];
    try {
      const lock = holdWriteLock(opts.path);
      writer.start();
      for (let i = 0; i < 1000; i++) {
        const r = reading(i);
        offered.push(r);
        queue.offer(r);
      }
      // The policy retries each batch (3 attempts), then the writer holds it and tries again.
      await waitFor(
        () => (policy.recorder.snapshot().failures_by_code['SQLITE_BUSY'] ?? 0) >= 6,
        'busy retries',
      );
      const busy = policy.recorder.snapshot();
      assert.ok(busy.retries >= 4, `the policy retried (${busy.retries})`);
      assert.equal(writer.stats().written, 0, 'nothing written while locked');
      assert.equal(writer.stats().lastError?.code, 'SQLITE_BUSY');
      lock.release();

      await waitFor(() => queue.size === 0 && writer.stats().inFlight === 0, 'queue drained after release');
      assert.equal(writer.stats().written, 1000);
      assert.equal(writer.stats().duplicates, 0);
      assert.ok(policy.recorder.snapshot().successful_attempts >= 5);
      assert.ok(lines().some((l) => l.msg === 'storage writes recovered; the held batch is written'));

      // A replay of the same readings is acknowledged as duplicates: never stored twice, never re-queued for InfluxDB.
      for (const r of offered.slice(0, 300)) queue.offer(r);
      await waitFor(() => writer.stats().duplicates === 300, 'replay acknowledged');
    } finally {
      await writer.stop();
      await store.stop();
    }
    const keys = storedKeys(opts.path);
    assert.equal(keys.size, 1000);
    for (const r of offered) assert.ok(keys.has(keyOf(r)), `${keyOf(r)} missing`);
    const outbox = outboxFileSummary(opts.path);
    assert.equal(outbox.readings, 1000, 'the outbox holds each new reading once');
  });
});

describe('SQLITE_FULL under the database policy', () => {
  test('a full disk opens the breaker, polling goes on into the bounded queue (overflow counted), writing resumes by itself', async () => {
    const opts = options();
    const store = new SqliteStore(opts, createSilentLogger(), faultyWriter);
    await store.start();
    const policy = databasePolicy({ breakerThreshold: 3, breakerHalfOpenAfterMs: 50 });
    const queue = new BoundedQueue<Reading>(
      { capacity: 2000, overflow: 'drop-oldest' },
      createSilentLogger(),
    );
    const writer = new Writer(
      queue,
      store,
      { batchSize: 250, flushIntervalMs: 10 },
      createSilentLogger(),
      () => 10,
      policy,
    );
    const offered: Reading[] = [];
    let next = 0;
    // A stand-in for the poller: 100 readings every 5 ms, whatever storage does.
    const produce = setInterval(() => {
      for (let k = 0; k < 100; k++) {
        const r = reading(next++, 50);
        offered.push(r);
        queue.offer(r);
      }
    }, 5);
    const accountingHolds = () => {
      const q = queue.stats();
      const w = writer.stats();
      assert.equal(
        q.offered,
        w.written + w.duplicates + w.invalid + w.droppedAtShutdown + w.inFlight + q.dropped + q.size,
        'every offered reading is written, dropped, rejected or still queued',
      );
    };
    try {
      writer.start();
      await waitFor(() => writer.stats().written >= 500, 'some readings written first');
      await writerFaults(opts.path).setMaxPageCount(1);

      await waitFor(() => policy.recorder.snapshot().breaker.transitions.opened >= 1, 'breaker opened');
      assert.equal(writer.stats().lastError?.code, 'SQLITE_FULL');
      await waitFor(() => queue.stats().dropped > 0, 'the bounded queue overflows, and counts it');
      accountingHolds();

      // While open, only the breaker's trial calls reach SQLite: no retry storm.
      const before = policy.recorder.snapshot();
      await waitFor(
        () =>
          policy.recorder.snapshot().breaker.transitions.half_opened >=
          before.breaker.transitions.half_opened + 3,
        'three trial calls',
      );
      const during = policy.recorder.snapshot();
      const attempts = during.total_attempts - before.total_attempts;
      const trials = during.breaker.transitions.half_opened - before.breaker.transitions.half_opened;
      assert.ok(attempts <= trials + 1, `${attempts} attempts for ${trials} trial calls`);
      assert.equal(during.retries, before.retries, 'a full disk is not retried in a loop');

      await writerFaults(opts.path).setMaxPageCount(null);
      await waitFor(() => policy.state === 'closed', 'breaker closed after space returned');
      clearInterval(produce);
      await waitFor(() => queue.size === 0 && writer.stats().inFlight === 0, 'backlog written');
      accountingHolds();
    } finally {
      clearInterval(produce);
      await writer.stop();
      await store.stop();
    }
    const q = queue.stats();
    const w = writer.stats();
    assert.ok(q.dropped > 0);
    assert.equal(w.duplicates, 0);
    const keys = storedKeys(opts.path);
    assert.equal(keys.size, q.offered - q.dropped, 'everything not dropped by the queue is stored, once');
    const offeredKeys = new Set(offered.map(keyOf));
    for (const key of keys) assert.ok(offeredKeys.has(key));
    assert.equal(outboxFileSummary(opts.path).readings, keys.size, 'no outbox row from a failed transaction');
  });
});
