import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { loadConfig, RETRY_PRESET_DEFAULTS } from '../src/config/index.js';
import { createSilentLogger } from '../src/log/logger.js';
import {
  classifyError,
  DeviceBackoff,
  isOpenCircuitError,
  isTransientDeviceFailure,
  MAX_RETRY_AFTER_MS,
  type PolicySettings,
  parseRetryAfter,
  presetSettings,
  Resilience,
  ResiliencePolicy,
  StrategyBackoff,
  strategyDelay,
  strategyDelays,
} from '../src/resilience/index.js';
import { StorageError } from '../src/storage/errors.js';
import { sqliteFailureKind } from '../src/storage/sqlite/index.js';

const noJitter = { jitter: false } as const;

/** An error as the SQLite sink makes it: the kind declared from the code. */
function sqliteError(code: string, transient: boolean): StorageError {
  return new StorageError(`write failed (${code})`, {
    code,
    transient,
    failureKind: sqliteFailureKind(code),
  });
}

function httpError(status: number, transient: boolean, retryAfterMs: number | null = null): StorageError {
  return new StorageError(`answered ${status}`, { code: `HTTP_${status}`, transient, retryAfterMs });
}

describe('retry strategies', () => {
  test('exponential doubles from the base delay and stops at the maximum', () => {
    const settings = { strategy: 'exponential', baseDelayMs: 100, maxDelayMs: 5000, ...noJitter } as const;
    assert.deepEqual(strategyDelays(settings, 8), [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  test('linear adds the base delay each time and stops at the maximum', () => {
    const settings = { strategy: 'linear', baseDelayMs: 100, maxDelayMs: 1000, ...noJitter } as const;
    assert.deepEqual(
      strategyDelays(settings, 12),
      [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1000, 1000],
    );
  });

  test('fixed always waits the base delay', () => {
    const settings = { strategy: 'fixed', baseDelayMs: 250, maxDelayMs: 30_000, ...noJitter } as const;
    assert.deepEqual(strategyDelays(settings, 4), [250, 250, 250, 250]);
  });

  test('random lies between the minimum (base) and the maximum', () => {
    const settings = { strategy: 'random', baseDelayMs: 200, maxDelayMs: 1000, ...noJitter } as const;
    assert.equal(
      strategyDelay(settings, 1, () => 0),
      200,
    );
    assert.equal(
      strategyDelay(settings, 1, () => 0.5),
      600,
    );
    assert.equal(
      strategyDelay(settings, 7, () => 0.999_999),
      1000,
    );
    const seen = strategyDelays(settings, 2000);
    assert.ok(seen.every((d) => d >= 200 && d <= 1000));
    assert.ok(new Set(seen).size > 100, 'actually random');
  });

  test('jitter keeps each delay between half and all of its value', () => {
    const settings = { strategy: 'exponential', baseDelayMs: 1000, maxDelayMs: 8000, jitter: true } as const;
    assert.equal(
      strategyDelay(settings, 3, () => 0),
      2000,
      'half of 4000',
    );
    assert.equal(
      strategyDelay(settings, 3, () => 0.999_999),
      4000,
    );
    for (let retry = 1; retry <= 6; retry++) {
      const full = Math.min(8000, 1000 * 2 ** (retry - 1));
      for (let i = 0; i < 200; i++) {
        const d = strategyDelay(settings, retry);
        assert.ok(d >= full / 2 && d <= full, `retry ${retry}: ${d} outside [${full / 2}, ${full}]`);
      }
    }
  });

  test('a base delay above the maximum is cut to the maximum', () => {
    assert.equal(
      strategyDelay({ strategy: 'fixed', baseDelayMs: 10_000, maxDelayMs: 5000, jitter: false }, 1),
      5000,
    );
    assert.equal(
      strategyDelay({ strategy: 'exponential', baseDelayMs: 1, maxDelayMs: 5000, jitter: false }, 5000),
      5000,
      'no overflow for a very late retry',
    );
  });

  test("the backoff waits for a peer's Retry-After when it is longer than the strategy's delay", () => {
    const backoff = new StrategyBackoff({
      strategy: 'exponential',
      baseDelayMs: 1000,
      maxDelayMs: 30_000,
      jitter: false,
    });
    const context = (error: unknown, attempt: number) => ({
      attempt,
      signal: new AbortController().signal,
      result: { error: error as Error },
    });
    assert.equal(backoff.next(context(httpError(429, true, 20_000), 1)).duration, 20_000);
    assert.equal(backoff.next(context(httpError(503, true, 2000), 4)).duration, 8000, 'strategy longer');
    assert.equal(backoff.next(context(httpError(503, true), 2)).duration, 2000, 'no Retry-After');
  });
});

describe('Retry-After', () => {
  test('is read as seconds (as HTTP says) or as an HTTP date', () => {
    assert.equal(parseRetryAfter('120'), 120_000);
    assert.equal(parseRetryAfter(' 0 '), 0);
    assert.equal(parseRetryAfter('1.5'), 1500);
    const now = Date.UTC(2026, 10, 26, 12, 0, 0);
    assert.equal(parseRetryAfter('Thu, 26 Nov 2026 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Thu, 26 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past: now');
  });

  test('garbage and absence give null; an absurd value is capped', () => {
    assert.equal(parseRetryAfter(undefined), null);
    assert.equal(parseRetryAfter(''), null);
    assert.equal(parseRetryAfter('soon'), null);
    assert.equal(parseRetryAfter('999999'), MAX_RETRY_AFTER_MS);
  });
});

describe('error classification', () => {
  const cases: [string, unknown, string, boolean, boolean][] = [
    // name, error, kind, retry, breaker
    ['SQLITE_BUSY', sqliteError('SQLITE_BUSY', true), 'transient', true, true],
    ['SQLITE_LOCKED', sqliteError('SQLITE_LOCKED', true), 'transient', true, true],
    ['SQLITE_IOERR_WRITE', sqliteError('SQLITE_IOERR_WRITE', true), 'transient', true, true],
    ['SQLITE_FULL', sqliteError('SQLITE_FULL', true), 'after-recovery', false, true],
    ['SQLITE_CORRUPT', sqliteError('SQLITE_CORRUPT', false), 'permanent', false, false],
    ['SQLITE_NOTADB', sqliteError('SQLITE_NOTADB', false), 'permanent', false, false],
    ['HTTP 429', httpError(429, true), 'transient', true, true],
    ['HTTP 500', httpError(500, true), 'transient', true, true],
    ['HTTP 503', httpError(503, true), 'transient', true, true],
    ['HTTP 400', httpError(400, false), 'permanent', false, false],
    ['HTTP 401', httpError(401, false), 'permanent', false, false],
    ['HTTP 404', httpError(404, false), 'permanent', false, false],
    [
      'ECONNREFUSED',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      'transient',
      true,
      true,
    ],
    [
      'ECONNRESET',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      'transient',
      true,
      true,
    ],
    ['a bug', new TypeError('x is not a function'), 'permanent', false, false],
  ];
  for (const [name, error, kind, retry, breaker] of cases) {
    test(`${name}: ${kind}, ${retry ? '' : 'not '}retried, ${breaker ? '' : 'not '}counted by the breaker`, () => {
      const verdict = classifyError(error);
      assert.equal(verdict.kind, kind);
      assert.equal(verdict.retry, retry);
      assert.equal(verdict.breaker, breaker);
    });
  }

  test("a Retry-After travels with the error's verdict", () => {
    assert.equal(classifyError(httpError(429, true, 7000)).retryAfterMs, 7000);
  });

  test('device timeouts, refusals and network errors are transient; an unusable answer is not', () => {
    for (const reason of ['timeout', 'refused', 'network'])
      assert.equal(isTransientDeviceFailure(reason), true);
    for (const reason of ['malformed', 'error-code', 'implausible'])
      assert.equal(isTransientDeviceFailure(reason), false);
  });
});

/** Policy settings for unit tests: no jitter, so delays are exact. */
function settings(overrides: Partial<PolicySettings> = {}): PolicySettings {
  return {
    strategy: 'exponential',
    baseDelayMs: 100,
    maxDelayMs: 5000,
    jitter: false,
    maxAttempts: 3,
    timeoutMs: 10_000,
    breakerThreshold: 5,
    breakerHalfOpenAfterMs: 1000,
    ...overrides,
  };
}

/** Advances fake time in steps until `promise` settles; returns how it settled. */
async function settle<T>(
  promise: Promise<T>,
  stepMs = 10,
  maxSteps = 100_000,
): Promise<{ value?: T; error?: unknown }> {
  let done = false;
  let outcome: { value?: T; error?: unknown } = {};
  promise.then(
    (value) => {
      done = true;
      outcome = { value };
    },
    (error: unknown) => {
      done = true;
      outcome = { error };
    },
  );
  for (let i = 0; i < maxSteps && !done; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!done) mock.timers.tick(stepMs);
  }
  assert.ok(done, 'the call never settled');
  return outcome;
}

describe('policies (fake timers)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.UTC(2026, 10, 26) }));
  afterEach(() => mock.timers.reset());

  test('a transient error is retried with the strategy delays until max_attempts, then reported', async () => {
    const policy = new ResiliencePolicy('test.op', 'database', settings(), createSilentLogger());
    let calls = 0;
    const callTimes: number[] = [];
    const start = Date.now();
    const { error } = await settle(
      policy.execute(() => {
        calls++;
        callTimes.push(Date.now() - start);
        throw sqliteError('SQLITE_BUSY', true);
      }),
    );
    assert.ok(error instanceof StorageError && error.code === 'SQLITE_BUSY');
    assert.equal(calls, 3);
    assert.deepEqual(callTimes, [0, 100, 300], 'waits 100 ms, then 200 ms');
    const stats = policy.recorder.snapshot();
    assert.equal(stats.total_attempts, 3);
    assert.equal(stats.failed_attempts, 3);
    assert.equal(stats.successful_attempts, 0);
    assert.equal(stats.retries, 2);
    assert.equal(stats.average_delay, 0.15, 'seconds: (0.1 + 0.2) / 2');
    assert.equal(stats.failed_calls, 1);
    assert.deepEqual(stats.failures_by_code, { SQLITE_BUSY: 3 });
  });

  test('a call that succeeds on a retry is a success, and the success rate counts attempts', async () => {
    const policy = new ResiliencePolicy('test.op', 'network', settings(), createSilentLogger());
    let calls = 0;
    const { value } = await settle(
      policy.execute(() => {
        calls++;
        if (calls === 1) throw httpError(503, true);
        return 'stored';
      }),
    );
    assert.equal(value, 'stored');
    const stats = policy.recorder.snapshot();
    assert.equal(stats.total_attempts, 2);
    assert.equal(stats.successful_attempts, 1);
    assert.equal(stats.success_rate, 0.5);
    assert.equal(stats.failed_calls, 0);
  });

  test('a permanent error is not retried', async () => {
    const policy = new ResiliencePolicy('test.op', 'database', settings(), createSilentLogger());
    let calls = 0;
    const { error } = await settle(
      policy.execute(() => {
        calls++;
        throw sqliteError('SQLITE_CORRUPT', false);
      }),
    );
    assert.ok(error instanceof StorageError);
    assert.equal(calls, 1);
    assert.equal(policy.recorder.snapshot().breaker.consecutive_failures, 0, 'not the breaker’s business');
  });

  test('a full disk is not retried at once but counts towards the breaker', async () => {
    const policy = new ResiliencePolicy(
      'test.op',
      'database',
      settings({ breakerThreshold: 2 }),
      createSilentLogger(),
    );
    let calls = 0;
    const full = () => {
      calls++;
      throw sqliteError('SQLITE_FULL', true);
    };
    await settle(policy.execute(full));
    assert.equal(calls, 1, 'no quick retry');
    assert.equal(policy.state, 'closed');
    await settle(policy.execute(full));
    assert.equal(calls, 2);
    assert.equal(policy.state, 'open');
  });

  test('a retry never retries an open-circuit error', async () => {
    const policy = new ResiliencePolicy(
      'test.op',
      'network',
      settings({ maxAttempts: 5, breakerThreshold: 2 }),
      createSilentLogger(),
    );
    let calls = 0;
    const { error } = await settle(
      policy.execute(() => {
        calls++;
        throw httpError(503, true);
      }),
    );
    // Attempt 1 and 2 fail and open the breaker; attempt 3 meets the open breaker and stops there.
    assert.equal(calls, 2);
    assert.ok(isOpenCircuitError(error), `expected an open-circuit error, got ${String(error)}`);
    assert.equal(classifyError(error).kind, 'open-circuit');
    const stats = policy.recorder.snapshot();
    assert.equal(stats.retries, 2, 'the retry tried twice more; the second met the open breaker');
    assert.equal(stats.short_circuited, 1);
  });

  test('breaker transitions: closed → open → half-open → open → half-open → closed', async () => {
    const policy = new ResiliencePolicy(
      'test.op',
      'network',
      settings({ maxAttempts: 1, breakerThreshold: 2, breakerHalfOpenAfterMs: 1000 }),
      createSilentLogger(),
    );
    let calls = 0;
    let healthy = false;
    const call = () => {
      calls++;
      if (!healthy) throw httpError(503, true);
      return 'ok';
    };
    await settle(policy.execute(call));
    assert.equal(policy.state, 'closed', 'one failure is below the threshold');
    await settle(policy.execute(call));
    assert.equal(policy.state, 'open');
    assert.equal(policy.msUntilTrial(), 1000);

    const refused = await settle(policy.execute(call));
    assert.ok(isOpenCircuitError(refused.error));
    assert.equal(calls, 2, 'an open breaker does not touch the resource');
    mock.timers.tick(400);
    assert.equal(policy.msUntilTrial(), 600);

    mock.timers.tick(600);
    await settle(policy.execute(call));
    assert.equal(calls, 3, 'one trial call');
    assert.equal(policy.state, 'open', 'the trial failed: open again');

    mock.timers.tick(1000);
    healthy = true;
    const { value } = await settle(policy.execute(call));
    assert.equal(value, 'ok');
    assert.equal(policy.state, 'closed');
    const breaker = policy.recorder.snapshot().breaker;
    assert.deepEqual(breaker.transitions, { opened: 2, half_opened: 2, closed: 1 });
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.next_trial_ms, null);
    assert.equal(breaker.consecutive_failures, 0);
  });

  test('an attempt that hangs times out, counts as transient and is retried', async () => {
    const policy = new ResiliencePolicy(
      'test.op',
      'network',
      settings({ timeoutMs: 500, maxAttempts: 2 }),
      createSilentLogger(),
    );
    let calls = 0;
    const aborted: boolean[] = [];
    const { value } = await settle(
      policy.execute((signal) => {
        calls++;
        if (calls === 1) {
          // Never answers; only notes that its attempt was told to give up.
          return new Promise<string>(() => {
            signal.addEventListener('abort', () => aborted.push(true));
          });
        }
        return 'answered';
      }),
    );
    assert.equal(value, 'answered');
    assert.equal(calls, 2);
    assert.deepEqual(aborted, [true], 'the hanging attempt was told to give up');
    assert.deepEqual(policy.recorder.snapshot().failures_by_code, { KASA_TIMEOUT: 1 });
  });

  test('statistics add up per operation in the original shape', async () => {
    const resilience = new Resilience(presetSettings(loadDefaults().retry), createSilentLogger(), () => 0.5);
    const db = resilience.policy('sqlite.write', 'database');
    const net = resilience.policy('influx.write', 'network');
    assert.equal(resilience.policy('sqlite.write', 'database'), db, 'one policy per operation');
    let n = 0;
    await settle(
      db.execute(() => {
        if (++n === 1) throw sqliteError('SQLITE_BUSY', true);
      }),
    );
    await settle(net.execute(() => 'ok'));
    const stats = resilience.stats();
    assert.deepEqual(Object.keys(stats).sort(), [
      'average_delay',
      'failed_attempts',
      'operations',
      'retry_counts_by_operation',
      'success_rate',
      'successful_attempts',
      'total_attempts',
    ]);
    assert.equal(stats.total_attempts, 3);
    assert.equal(stats.successful_attempts, 2);
    assert.equal(stats.failed_attempts, 1);
    assert.equal(stats.success_rate, 2 / 3);
    assert.deepEqual(stats.retry_counts_by_operation, { 'sqlite.write': 1, 'influx.write': 0 });
    // database preset: base 100 ms, jitter on; random 0.5 → 75 % of 100 ms.
    assert.equal(stats.average_delay, 0.075);
    assert.equal(stats.operations['sqlite.write']?.preset, 'database');
    assert.equal(stats.operations['influx.write']?.breaker.state, 'closed');
  });
});

const dir = '/nonexistent-kasa-config-dir';

function loadDefaults(env: NodeJS.ProcessEnv = {}) {
  return loadConfig({ env, defaultFile: join(dir, 'absent.yaml') }).config;
}

describe('presets from the configuration', () => {
  test('the defaults are the original presets: database, network, file', () => {
    const presets = presetSettings(loadDefaults().retry);
    assert.deepEqual(
      {
        attempts: presets.database.maxAttempts,
        strategy: presets.database.strategy,
        max: presets.database.maxDelayMs,
      },
      { attempts: 3, strategy: 'exponential', max: 5000 },
    );
    assert.deepEqual(
      {
        attempts: presets.network.maxAttempts,
        strategy: presets.network.strategy,
        max: presets.network.maxDelayMs,
      },
      { attempts: 5, strategy: 'exponential', max: 30_000 },
    );
    assert.deepEqual(
      { attempts: presets.file.maxAttempts, strategy: presets.file.strategy, max: presets.file.maxDelayMs },
      { attempts: 3, strategy: 'linear', max: 1000 },
    );
    assert.equal(RETRY_PRESET_DEFAULTS.network.maxAttempts, 5);
  });

  test('RETRY_MAX_ATTEMPTS, RETRY_BASE_DELAY and RETRY_MAX_DELAY (seconds) override every preset', () => {
    const presets = presetSettings(
      loadDefaults({ RETRY_MAX_ATTEMPTS: '7', RETRY_BASE_DELAY: '0.25', RETRY_MAX_DELAY: '2' }).retry,
    );
    for (const name of ['database', 'network', 'file'] as const) {
      assert.equal(presets[name].maxAttempts, 7, name);
      assert.equal(presets[name].baseDelayMs, 250, name);
      assert.equal(presets[name].maxDelayMs, 2000, name);
    }
    assert.equal(presets.file.strategy, 'linear', 'the strategy stays the preset’s');
  });

  test('a preset can be changed on its own, breaker settings included', () => {
    const presets = presetSettings(
      loadDefaults({
        KASA_MONITOR_RETRY_NETWORK_STRATEGY: 'random',
        KASA_MONITOR_RETRY_NETWORK_BREAKER_THRESHOLD: '9',
        KASA_MONITOR_RETRY_NETWORK_BREAKER_HALF_OPEN_AFTER: '5s',
        KASA_MONITOR_RETRY_NETWORK_JITTER: 'false',
      }).retry,
    );
    assert.equal(presets.network.strategy, 'random');
    assert.equal(presets.network.breakerThreshold, 9);
    assert.equal(presets.network.breakerHalfOpenAfterMs, 5000);
    assert.equal(presets.network.jitter, false);
    assert.equal(presets.database.breakerThreshold, 5, 'other presets untouched');
  });

  test('a preset whose base delay exceeds its maximum is rejected with the key path', () => {
    assert.throws(
      () => loadDefaults({ KASA_MONITOR_RETRY_FILE_BASE_DELAY: '5s' }),
      (error: Error & { problems?: { path: string; message: string }[] }) =>
        error.problems?.some(
          (p) =>
            p.path === 'KASA_MONITOR_RETRY_FILE_BASE_DELAY' &&
            /not be longer than retry\.file\.max_delay \(1s\), got 5s \(sets retry\.file\.base_delay\)/.test(
              p.message,
            ),
        ) === true,
    );
  });
});

describe('per-device backoff (fake clock)', () => {
  test('after the threshold the pauses double up to the maximum; an answer ends the backoff', () => {
    let now = 0;
    const backoff = new DeviceBackoff({ after: 3, baseMs: 10_000, maxMs: 60_000 }, () => now);
    const pauses: number[] = [];
    for (let i = 0; i < 7; i++) pauses.push(backoff.unanswered('plug'));
    assert.deepEqual(pauses, [0, 0, 10_000, 20_000, 40_000, 60_000, 60_000]);
    assert.equal(backoff.allow('plug'), false);
    now += 59_999;
    assert.equal(backoff.allow('plug'), false);
    now += 1;
    assert.equal(backoff.allow('plug'), true, 'the trial poll');
    assert.equal(backoff.answered('plug'), true, 'ended a backoff');
    assert.equal(backoff.unanswered('plug'), 0, 'counting starts again');
    assert.deepEqual(backoff.stats(), {
      paused: 0,
      backingOff: 0,
      skippedPolls: 2,
      episodes: 1,
      recoveries: 1,
    });
  });

  test('plugs are independent, and wake() makes the next poll a trial', () => {
    const now = 0;
    const backoff = new DeviceBackoff({ after: 1, baseMs: 10_000, maxMs: 60_000 }, () => now);
    backoff.unanswered('a');
    assert.equal(backoff.allow('a'), false);
    assert.equal(backoff.allow('b'), true);
    backoff.wake('a');
    assert.equal(backoff.allow('a'), true);
    assert.equal(backoff.unanswered('a'), 20_000, 'a failed trial keeps growing the pause');
  });
});
