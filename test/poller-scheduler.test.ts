import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { type Clock, type ClockStep, describeStep } from '../src/poller/clock.js';
import { DurationHistogram } from '../src/poller/histogram.js';
import { startIntervalTicks } from '../src/poller/scheduler.js';
import { isValidCronExpression } from '../src/shared/cron.js';
import { sleep } from './helpers/wait.js';

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
    await sleep(80);
    assert.equal(ticks, 0);
  });

  test('a non-positive interval is refused', () => {
    assert.throws(() => startIntervalTicks(0, { onTick: () => {}, onMissed: () => {} }), RangeError);
  });
});

/** The real monotonic clock (setTimeout runs on it) and a wall clock a test can step. */
function steppableClock(): Clock & { step(ms: number): void } {
  let offset = 0;
  return {
    wallMs: () => Date.now() + offset,
    monotonicMs: () => performance.now(),
    step(ms) {
      offset += ms;
    },
  };
}

/** Ticks `before` times, steps the wall clock by `stepMs`, then waits for `after` more ticks. */
async function ticksAcrossStep(stepMs: number, before: number, after: number) {
  const clock = steppableClock();
  const slots: number[] = [];
  const steps: ClockStep[] = [];
  let missed = 0;
  let steppedAt = -1;
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => {
      source.stop();
      reject(new Error(`ticks stopped after the step: ${slots.length - steppedAt} of ${after}`));
    }, 20_000);
    const source = startIntervalTicks(
      50,
      {
        onTick: (slot) => {
          slots.push(slot);
          if (slots.length === before) {
            clock.step(stepMs);
            steppedAt = slots.length;
          }
          if (steppedAt >= 0 && slots.length === steppedAt + after) {
            clearTimeout(deadline);
            source.stop();
            resolve();
          }
        },
        onMissed: (count) => {
          missed += count;
        },
        onClockStep: (step) => steps.push(step),
      },
      clock,
    );
  });
  return { slots, steps, missed, steppedAt, clock };
}

/**
 * The slots a step passes over are not missed ticks (two minutes at 50 ms would be 2,400, thirty days
 * 51 million); a loaded machine may still miss a few real ones, which is not what is tested here.
 */
function assertNoMissedForStep(missed: number): void {
  assert.ok(missed < 100, `${missed} ticks counted missed: the step was taken for a blocked loop`);
}

describe('interval ticks across wall-clock steps', () => {
  test('a step back of two minutes does not pause ticking and is reported once', async () => {
    const r = await ticksAcrossStep(-120_000, 2, 5);
    assert.equal(r.steps.length, 1);
    assert.ok(Math.abs((r.steps[0]?.stepMs ?? 0) + 120_000) < 100, `step ${r.steps[0]?.stepMs}`);
    assertNoMissedForStep(r.missed);
    // After the step the slots follow the new wall clock: about two minutes earlier than before.
    const last = r.slots.at(-1) ?? 0;
    assert.ok(last < (r.slots[1] ?? 0), 'slot times after the step are the new (earlier) wall times');
  });

  test('a step ahead of 30 days (beyond setTimeout range) neither stops ticking nor counts missed ticks', async () => {
    const r = await ticksAcrossStep(30 * 86_400_000, 2, 5);
    assert.equal(r.steps.length, 1);
    assertNoMissedForStep(r.missed);
    assert.ok((r.slots.at(-1) ?? 0) > (r.slots[1] ?? 0) + 29 * 86_400_000);
  });

  test('a step back of 30 days (beyond setTimeout range) does not stop ticking', async () => {
    const r = await ticksAcrossStep(-30 * 86_400_000, 2, 5);
    assert.equal(r.steps.length, 1);
    assertNoMissedForStep(r.missed);
    assert.ok((r.slots.at(-1) ?? 0) < (r.slots[1] ?? 0) - 29 * 86_400_000);
  });

  test('the next tick is due on the monotonic clock whatever the wall clock shows', () => {
    const clock = steppableClock();
    const source = startIntervalTicks(60_000, { onTick: () => {}, onMissed: () => {} }, clock);
    try {
      const due = source.nextTickMonoMs();
      assert.ok(due !== null && due > performance.now() && due <= performance.now() + 60_000);
    } finally {
      source.stop();
    }
    assert.equal(source.nextTickMonoMs(), null);
  });

  test('steps read as a direction and a size', () => {
    assert.equal(describeStep(-120_000), 'back by 2 min 0 s');
    assert.equal(describeStep(86_400_000), 'ahead by 1 d 0 h');
  });
});

describe('cron expressions', () => {
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
