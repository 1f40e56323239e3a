/**
 * The scheduler health check judges a stall by the monotonic clock: the wall-clock due time a
 * scheduler reports can be anywhere after a clock step, the monotonic one cannot.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import type { DaemonStatus } from '../src/main.js';
import { createChecks, EventLoopLag, type HealthInputs } from '../src/supervisor/index.js';

function schedulerCheck(poller: { nextTickMs: number; nextTickMonoMs: number }) {
  const lag = new EventLoopLag();
  const status = () =>
    ({
      poller: {
        ticks: 10,
        missedTicks: 0,
        skippedOverlap: 0,
        lateTicks: 0,
        maxTickLateMs: 0,
        lastTickMs: Date.now() - 1000,
        ...poller,
      },
    }) as unknown as DaemonStatus;
  const inputs = {
    status,
    databasePath: '/nonexistent/kasa.db',
    storeState: () => 'open',
    readers: {} as HealthInputs['readers'],
    influxUrl: () => null,
    pollIntervalMs: () => 1000,
    discoveryIntervalMs: () => 60_000,
    lag,
    limits: () => ({}) as ReturnType<HealthInputs['limits']>,
  } satisfies HealthInputs;
  const check = createChecks(inputs).find((c) => c.name === 'scheduler');
  assert.ok(check !== undefined);
  return { check, stop: () => lag.stop() };
}

describe('the scheduler check across wall-clock steps', () => {
  test('a tick overdue by the monotonic clock is a stall, even when the wall clock says it is still ahead', async () => {
    // What a wall-clock scheduler showed after the clock went back two minutes: due "in 2 min".
    const { check, stop } = schedulerCheck({
      nextTickMs: Date.now() + 120_000,
      nextTickMonoMs: performance.now() - 60_000,
    });
    try {
      const result = await check.run(Date.now());
      assert.equal(result.status, 'failed');
      assert.match(result.reason, /no poll tick for 60 s past its time/);
    } finally {
      stop();
    }
  });

  test('a wall clock stepped a day ahead is no stall while the tick is due by the monotonic clock', async () => {
    const { check, stop } = schedulerCheck({
      nextTickMs: Date.now() - 86_400_000,
      nextTickMonoMs: performance.now() + 500,
    });
    try {
      const result = await check.run(Date.now());
      assert.equal(result.status, 'ok', result.reason);
    } finally {
      stop();
    }
  });
});
