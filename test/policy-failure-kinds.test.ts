/**
 * Every sink declares on its errors what a retry can do (`failureKind`), and the policies act on that
 * declaration: the InfluxDB client (from the status InfluxDB answered), SQLite (from its result
 * code), the alert webhook and file operations. These tests take the errors the sinks really make and
 * run them through the public policy API.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, mock, test } from 'node:test';
import { createSilentLogger } from '../src/log/logger.js';
import { classifyError, type PolicySettings, ResiliencePolicy } from '../src/resilience/index.js';
import { StorageError } from '../src/storage/errors.js';
import { fileOps } from '../src/storage/file-ops.js';
import { InfluxHttpWriter } from '../src/storage/influx/index.js';
import { toStorageError } from '../src/storage/sqlite/errors.js';
import { WebhookError } from '../src/supervisor/alerts.js';
import { type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

/** What InfluxHttpWriter.write rejected with when the server answered `status`. */
async function influxError(proxy: FaultProxy, status: number, retryAfter?: string): Promise<StorageError> {
  proxy.enqueue({
    kind: 'status',
    status,
    body: `{"code":"answer","message":"status ${status}"}`,
    ...(retryAfter === undefined ? {} : { retryAfter }),
  });
  const writer = new InfluxHttpWriter(
    { url: proxy.url, token: 'secret-token', org: 'org', bucket: 'bucket', timeoutMs: 10_000, gzip: false },
    createSilentLogger(),
  );
  try {
    await writer.write(['power,device=a watts=1 1700000000000']);
  } catch (error) {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    return error;
  }
  assert.fail(`a ${status} answer was taken as a success`);
}

function sqliteError(code: string): StorageError {
  return toStorageError(Object.assign(new Error(`driver says ${code}`), { code }), 'write batch');
}

describe('the InfluxDB client declares the kind of what InfluxDB answered', () => {
  let proxy: FaultProxy;
  // Nothing is forwarded: every request gets a queued answer.
  before(async () => {
    proxy = await startFaultProxy('http://127.0.0.1:9');
  });
  after(() => proxy.close());

  test('a malformed or too large batch (400, 413, 422) is permanent and refused for its content', async () => {
    for (const status of [400, 413, 422]) {
      const error = await influxError(proxy, status);
      assert.equal(error.failureKind, 'permanent', `${status}`);
      assert.equal(error.rejectsContent, true, `${status}`);
    }
  });

  test('a refused token or a missing bucket (401, 403, 404) is permanent and not about the content', async () => {
    for (const status of [401, 403, 404]) {
      const error = await influxError(proxy, status);
      assert.equal(error.failureKind, 'permanent', `${status}`);
      assert.equal(error.rejectsContent, false, `${status}`);
    }
  });

  test('429 and 503 are transient and carry the Retry-After InfluxDB sent', async () => {
    const tooMany = await influxError(proxy, 429, '7');
    assert.equal(tooMany.failureKind, 'transient');
    assert.equal(tooMany.retryAfterMs, 7000);
    const unavailable = await influxError(proxy, 503, '2');
    assert.equal(unavailable.failureKind, 'transient');
    assert.equal(unavailable.retryAfterMs, 2000);
    assert.equal((await influxError(proxy, 500)).retryAfterMs, null, 'no header, no Retry-After');
  });

  test('an unreachable server is transient', async () => {
    const writer = new InfluxHttpWriter(
      {
        url: 'http://127.0.0.1:9',
        token: null,
        org: 'org',
        bucket: 'bucket',
        timeoutMs: 10_000,
        gzip: false,
      },
      createSilentLogger(),
    );
    const error = await writer.write(['power watts=1 1']).then(
      () => assert.fail('port 9 answered'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof StorageError);
    assert.equal(error.failureKind, 'transient');
  });
});

describe('the other sinks declare their kind', () => {
  test('SQLite: BUSY and IOERR are transient, FULL needs a recovery, CORRUPT is permanent', () => {
    assert.equal(sqliteError('SQLITE_BUSY').failureKind, 'transient');
    assert.equal(sqliteError('SQLITE_IOERR_WRITE').failureKind, 'transient');
    assert.equal(sqliteError('SQLITE_FULL').failureKind, 'after-recovery');
    assert.equal(sqliteError('SQLITE_CORRUPT').failureKind, 'permanent');
  });

  test('the alert webhook: 408, 429 and 5xx are transient, other statuses permanent', () => {
    assert.equal(new WebhookError(503).failureKind, 'transient');
    assert.equal(new WebhookError(429, '30').retryAfterMs, 30_000);
    assert.equal(new WebhookError(404).failureKind, 'permanent');
  });

  test('file operations: a busy file system is transient, a missing file permanent', async () => {
    const ops = fileOps({
      execute: (fn) => Promise.resolve().then(() => fn(new AbortController().signal)),
      msUntilTrial: () => 0,
      state: 'closed',
    });
    const error = await ops.copy('/nonexistent/kasa-monitor-test', '/tmp/x').then(
      () => assert.fail('copied a missing file'),
      (e: unknown) => e,
    );
    assert.equal((error as { failureKind?: unknown }).failureKind, 'permanent');
  });
});

/** No jitter, so delays are exact. */
function settings(overrides: Partial<PolicySettings> = {}): PolicySettings {
  return {
    strategy: 'exponential',
    baseDelayMs: 100,
    maxDelayMs: 5000,
    jitter: false,
    maxAttempts: 3,
    timeoutMs: 60_000,
    breakerThreshold: 5,
    breakerHalfOpenAfterMs: 1000,
    ...overrides,
  };
}

/** Runs `error` through a policy that always fails with it; returns when each attempt started (ms). */
async function attemptsFor(
  error: unknown,
  overrides: Partial<PolicySettings> = {},
): Promise<{ times: number[]; policy: ResiliencePolicy }> {
  const policy = new ResiliencePolicy('test.op', 'network', settings(overrides), createSilentLogger());
  const start = Date.now();
  const times: number[] = [];
  let settled = false;
  const call = policy
    .execute(() => {
      times.push(Date.now() - start);
      throw error;
    })
    .catch((e: unknown) => e)
    .finally(() => {
      settled = true;
    });
  for (let i = 0; i < 100_000 && !settled; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!settled) mock.timers.tick(10);
  }
  assert.equal(await call, error, 'the policy reports the sink’s own error');
  return { times, policy };
}

describe("the policy acts on the sink's declared kind", () => {
  let proxy: FaultProxy;
  const errors = new Map<string, StorageError>();
  // The Influx errors are made by the real client first (real timers), then replayed under fake ones.
  before(async () => {
    proxy = await startFaultProxy('http://127.0.0.1:9');
    errors.set('400', await influxError(proxy, 400));
    errors.set('401', await influxError(proxy, 401));
    errors.set('503 Retry-After 2', await influxError(proxy, 503, '2'));
    await proxy.close();
  });
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.UTC(2026, 10, 30) }));
  afterEach(() => mock.timers.reset());

  test('an InfluxDB 400 is tried once and never opens the breaker', async () => {
    const { times, policy } = await attemptsFor(errors.get('400'), { breakerThreshold: 1 });
    assert.deepEqual(times, [0]);
    assert.equal(policy.state, 'closed');
  });

  test('an InfluxDB 401 is tried once', async () => {
    assert.deepEqual((await attemptsFor(errors.get('401'))).times, [0]);
  });

  test("an InfluxDB 503 is retried, after InfluxDB's Retry-After when it is longer than the backoff", async () => {
    const { times } = await attemptsFor(errors.get('503 Retry-After 2'));
    assert.deepEqual(times, [0, 2000, 4000]);
  });

  test('a SQLite BUSY is retried with the backoff', async () => {
    assert.deepEqual((await attemptsFor(sqliteError('SQLITE_BUSY'))).times, [0, 100, 300]);
  });

  test('a SQLite FULL is not retried at once but counts towards the breaker', async () => {
    const { times, policy } = await attemptsFor(sqliteError('SQLITE_FULL'), { breakerThreshold: 1 });
    assert.deepEqual(times, [0]);
    assert.equal(policy.state, 'open');
  });

  test('a SQLite CORRUPT is tried once and never opens the breaker', async () => {
    const { times, policy } = await attemptsFor(sqliteError('SQLITE_CORRUPT'), { breakerThreshold: 1 });
    assert.deepEqual(times, [0]);
    assert.equal(policy.state, 'closed');
  });

  test('a webhook 503 is retried, a webhook 404 is not', async () => {
    assert.deepEqual((await attemptsFor(new WebhookError(503))).times, [0, 100, 300]);
    assert.deepEqual((await attemptsFor(new WebhookError(404))).times, [0]);
  });

  test('the declared kind wins over the code and the transient flag', async () => {
    const declaredPermanent = new StorageError('answered 503', {
      code: 'HTTP_503',
      transient: true,
      failureKind: 'permanent',
    });
    assert.deepEqual((await attemptsFor(declaredPermanent)).times, [0]);
    const refusedButPermanent = Object.assign(new Error('connect ECONNREFUSED'), {
      code: 'ECONNREFUSED',
      failureKind: 'permanent',
    });
    assert.equal(classifyError(refusedButPermanent).kind, 'permanent');
    assert.deepEqual((await attemptsFor(refusedButPermanent)).times, [0]);
    const corruptAfterRecovery = new StorageError('corrupt', {
      code: 'SQLITE_CORRUPT',
      transient: false,
      failureKind: 'after-recovery',
    });
    const { times, policy } = await attemptsFor(corruptAfterRecovery, { breakerThreshold: 1 });
    assert.deepEqual(times, [0]);
    assert.equal(policy.state, 'open', 'an after-recovery failure counts towards the breaker');
  });
});
