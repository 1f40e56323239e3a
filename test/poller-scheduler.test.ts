import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isValidCronExpression } from '../src/poller/cron.js';
import { DurationHistogram } from '../src/poller/histogram.js';
import { startIntervalTicks } from '../src/poller/scheduler.js';

function busyWait(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // block the event loop on purpose
  }
}

describe('interval ticks', () => {
  test('ticks fall on wall-clock multiples of the interval, one slot after another', async () => {
    const slots: number[] = [];
    let missed = 0;
    await new Promise<void>((resolve) => {
      const source = startIntervalTicks(40, {
        onTick: (slot) => {
          slots.push(slot);
          if (slots.length === 5) {
            source.stop();
            resolve();
          }
        },
        onMissed: (count) => {
          missed += count;
        },
      });
    });
    for (const slot of slots) assert.equal(slot % 40, 0, `slot ${slot} is a multiple of 40 ms`);
    // One slot after another (a loaded machine may skip some, which are then reported missed).
    const span = ((slots[4] ?? 0) - (slots[0] ?? 0)) / 40;
    assert.equal(span, 4 + missed);
  });

  test('slots that pass while the event loop is blocked are reported missed, not caught up', async () => {
    const ticks: number[] = [];
    let missed = 0;
    await new Promise<void>((resolve) => {
      const source = startIntervalTicks(50, {
        onTick: (slot) => {
          ticks.push(slot);
          if (ticks.length === 1) busyWait(200);
          if (ticks.length === 2) {
            source.stop();
            resolve();
          }
        },
        onMissed: (count) => {
          missed += count;
        },
      });
    });
    assert.ok(missed >= 2, `at least two slots missed, got ${missed}`);
    assert.equal(
      ((ticks[1] ?? 0) - (ticks[0] ?? 0)) / 50,
      missed + 1,
      'the tick after the block is the current slot',
    );
  });

  test('a stopped source does not tick again', async () => {
    let ticks = 0;
    const source = startIntervalTicks(20, { onTick: () => ticks++, onMissed: () => {} });
    source.stop();
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(ticks, 0);
  });

  test('a non-positive interval is refused', () => {
    assert.throws(() => startIntervalTicks(0, { onTick: () => {}, onMissed: () => {} }), RangeError);
  });

  test('cron expressions with seconds are valid', () => {
    assert.equal(isValidCronExpression('*/10 * * * * *'), true);
    assert.equal(isValidCronExpression('*/5 * * * *'), true);
    assert.equal(isValidCronExpression('every ten seconds'), false);
  });
});

describe('poll duration histogram', () => {
  test('cumulative buckets and percentiles of recent samples', () => {
    const h = new DurationHistogram(100);
    for (let i = 1; i <= 100; i++) h.record(i);
    const s = h.summary();
    assert.equal(s.count, 100);
    assert.equal(s.sumMs, 5050);
    assert.equal(s.maxMs, 100);
    assert.equal(s.p50Ms, 50);
    assert.equal(s.p99Ms, 99);
    assert.deepEqual(
      s.buckets.filter((b) => [1, 10, 100, Number.POSITIVE_INFINITY].includes(b.leMs)).map((b) => b.count),
      [1, 10, 100, 100],
    );
  });
});
