/**
 * Recovery's bounded backoff, one action at a time: runs at once, then after 1x, 2x, ... the backoff,
 * gives up (reported once) or escalates when its attempts are used up, and starts again once the
 * problem cleared. Time is passed in (`nowMs`), so nothing here waits for a clock.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Recovery, type RecoveryExhaustedError } from '../src/supervisor/index.js';
import { captureLogger } from './helpers/capture-logger.js';

const OPTIONS = { attempts: 2, backoffMs: 1000, backoffMaxMs: 10_000 };

function setup(action: () => Promise<void> = () => Promise.resolve()) {
  const { logger, lines } = captureLogger('debug');
  const exhausted: RecoveryExhaustedError[] = [];
  let runs = 0;
  const recovery = new Recovery(
    {
      'reopen-sqlite': () => {
        runs++;
        return action();
      },
    },
    OPTIONS,
    logger,
    (error) => exhausted.push(error),
  );
  const ask = (nowMs: number, escalate = false) =>
    recovery.request('reopen-sqlite', 'sqlite', 'writes fail', escalate, nowMs);
  const gaveUp = () => lines().filter((l) => /recovery gave up/.test(l.msg ?? '')).length;
  return { recovery, ask, exhausted, runs: () => runs, gaveUp };
}

describe('Recovery', () => {
  test('runs at once, then not before its backoff, and reports when the next attempt is due', async () => {
    const r = setup();
    await r.ask(0);
    assert.equal(r.runs(), 1);
    assert.deepEqual(
      { ...r.recovery.stats()['reopen-sqlite'] },
      {
        attempts: 1,
        succeeded: 1,
        failed: 0,
        next_attempt_ms: 1000,
        last_attempt_ms: 0,
        last_error: null,
        running: false,
        exhausted: false,
      },
    );
    await r.ask(999);
    assert.equal(r.runs(), 1, 'too early');
    await r.ask(1000);
    assert.equal(r.runs(), 2);
    assert.equal(r.recovery.stats()['reopen-sqlite']?.next_attempt_ms, 3000, 'twice the backoff');
  });

  test('a request while the action runs joins it instead of running it again', async () => {
    let finish = () => {};
    const r = setup(() => new Promise<void>((resolve) => (finish = resolve)));
    const first = r.ask(0);
    assert.equal(r.recovery.stats()['reopen-sqlite']?.running, true);
    const second = r.ask(5000);
    assert.equal(second, first);
    finish();
    await first;
    assert.equal(r.runs(), 1);
    assert.equal(r.recovery.stats()['reopen-sqlite']?.running, false);
  });

  test("a failed action's message is kept and counted", async () => {
    const r = setup(() => Promise.reject(new Error('still locked')));
    await r.ask(0);
    const stats = r.recovery.stats()['reopen-sqlite'];
    assert.equal(stats?.failed, 1);
    assert.equal(stats?.last_error, 'still locked');
  });

  test('used up without escalation: gives up once, reported once, and starts again when the problem cleared', async () => {
    const r = setup();
    await r.ask(0);
    await r.ask(1000);
    await r.ask(10_000);
    await r.ask(20_000);
    assert.equal(r.runs(), 2);
    assert.equal(r.gaveUp(), 1, 'reported once');
    assert.deepEqual(r.exhausted, []);
    r.recovery.clear('reopen-sqlite');
    assert.equal(r.recovery.stats()['reopen-sqlite']?.attempts, 0);
    assert.equal(r.recovery.stats()['reopen-sqlite']?.next_attempt_ms, null);
    await r.ask(20_001);
    assert.equal(r.runs(), 3, 'a new problem gets new attempts');
  });

  test('a reload that allows more attempts lets a recovery that gave up run again', async () => {
    const r = setup();
    await r.ask(0);
    await r.ask(1000);
    await r.ask(10_000);
    assert.equal(r.gaveUp(), 1);
    r.recovery.setOptions({ ...OPTIONS, attempts: 3 });
    await r.ask(10_001);
    assert.equal(r.runs(), 3);
  });

  test('used up with escalation: exhausted once, for good, even when the problem clears', async () => {
    const r = setup();
    await r.ask(0, true);
    await r.ask(1000, true);
    await r.ask(10_000, true);
    await r.ask(20_000, true);
    assert.equal(r.exhausted.length, 1);
    assert.equal(r.exhausted[0]?.attempts, 2);
    r.recovery.clear('reopen-sqlite');
    await r.ask(30_000, true);
    assert.equal(r.runs(), 2);
    const stats = r.recovery.stats()['reopen-sqlite'];
    assert.equal(stats?.exhausted, true);
    assert.equal(stats?.next_attempt_ms, null);
  });

  test('an action nobody registered is never run and never reported', async () => {
    const r = setup();
    await r.recovery.request('restart-discovery', 'plugs', 'gone', true, 0);
    assert.deepEqual(r.recovery.stats(), {});
  });
});
