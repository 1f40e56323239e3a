import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSilentLogger } from '../src/log/logger.js';
import { BoundedQueue } from '../src/queue/bounded-queue.js';
import { captureLogger } from './helpers/capture-logger.js';

describe('BoundedQueue', () => {
  it('hands items out oldest first, in batches no larger than asked', () => {
    const q = new BoundedQueue<number>({ capacity: 10, overflow: 'drop-oldest' }, createSilentLogger());
    for (let i = 0; i < 7; i++) q.offer(i);
    assert.deepEqual(q.take(3), [0, 1, 2]);
    assert.deepEqual(q.take(100), [3, 4, 5, 6]);
    assert.deepEqual(q.take(5), []);
  });

  it('wraps around its ring without losing order', () => {
    const q = new BoundedQueue<number>({ capacity: 4, overflow: 'drop-oldest' }, createSilentLogger());
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) {
      q.offer(i);
      if (i % 3 === 2) seen.push(...q.take(i % 2 === 0 ? 2 : 4));
    }
    seen.push(...q.take(10));
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
      'still FIFO',
    );
    assert.equal(q.stats().dropped, 0);
  });

  it('drop-oldest keeps the newest items when full and counts every loss', () => {
    const q = new BoundedQueue<number>({ capacity: 3, overflow: 'drop-oldest' }, createSilentLogger());
    const accepted = [1, 2, 3, 4, 5].map((n) => q.offer(n));
    assert.deepEqual(accepted, [true, true, true, false, false]);
    assert.deepEqual(q.take(10), [3, 4, 5]);
    assert.equal(q.stats().dropped, 2);
  });

  it('drop-newest keeps the oldest items when full and counts every loss', () => {
    const q = new BoundedQueue<number>({ capacity: 3, overflow: 'drop-newest' }, createSilentLogger());
    for (const n of [1, 2, 3, 4, 5]) q.offer(n);
    assert.deepEqual(q.take(10), [1, 2, 3]);
    assert.equal(q.stats().dropped, 2);
  });

  it('keeps offered = taken + dropped + size at every moment', () => {
    const q = new BoundedQueue<number>({ capacity: 5, overflow: 'drop-oldest' }, createSilentLogger());
    for (let i = 0; i < 200; i++) {
      q.offer(i);
      if (i % 7 === 0) q.take(3);
      const s = q.stats();
      assert.equal(s.offered, s.taken + s.dropped + s.size);
    }
  });

  it('logs an overflow once when it starts and once when it ends, not per dropped item', () => {
    const { logger, lines } = captureLogger();
    const q = new BoundedQueue<number>({ capacity: 2, overflow: 'drop-oldest' }, logger);
    for (let i = 0; i < 1000; i++) q.offer(i);
    assert.equal(lines().filter((l) => l.level === 40).length, 1, 'one warning while dropping');
    assert.equal(q.stats().overflowing, true);
    q.take(1);
    const warnings = lines().filter((l) => l.level === 40);
    assert.equal(warnings.length, 2);
    assert.equal(warnings[1]?.['dropped'], 998);
    assert.equal(q.stats().overflowing, false);
  });

  it('notifies offer listeners so a writer can flush a full batch early', () => {
    const q = new BoundedQueue<number>({ capacity: 10, overflow: 'drop-oldest' }, createSilentLogger());
    let calls = 0;
    const off = q.onOffer(() => calls++);
    q.offer(1);
    q.offer(2);
    off();
    q.offer(3);
    assert.equal(calls, 2);
  });

  it('resizes on reload, dropping (and counting) the oldest when shrinking below its size', () => {
    const q = new BoundedQueue<number>({ capacity: 10, overflow: 'drop-oldest' }, createSilentLogger());
    for (let i = 0; i < 8; i++) q.offer(i);
    q.resize(5);
    assert.equal(q.capacity, 5);
    assert.deepEqual(q.take(10), [3, 4, 5, 6, 7]);
    const s = q.stats();
    assert.equal(s.dropped, 3);
    assert.equal(s.offered, s.taken + s.dropped + s.size);
  });

  it('rejects a capacity that is not a positive integer', () => {
    assert.throws(() => new BoundedQueue({ capacity: 0, overflow: 'drop-oldest' }, createSilentLogger()));
  });
});
