/**
 * The InfluxDB sink against a real VictoriaMetrics (its InfluxDB v2 write API), fed from a real
 * SQLite outbox, with a loopback fault injector in front of it for 503, 429 + Retry-After, a poison
 * point (400) and hanging requests. Counts, never clocks: what reached the server is read back
 * through /api/v1/export and compared with SQLite.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ChannelInfo } from '../src/domain/channel.js';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger, type Logger } from '../src/log/logger.js';
import type { ResiliencePolicy } from '../src/resilience/index.js';
import {
  type ForwarderStats,
  InfluxForwarder,
  InfluxHttpWriter,
  readingLine,
  seriesPrefix,
} from '../src/storage/influx/index.js';
import { SqliteStore } from '../src/storage/sqlite/index.js';
import { captureLogger } from './helpers/capture-logger.js';
import { type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';
import { fastInfluxPolicy } from './helpers/policies.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { tempRoot } from './helpers/temp.js';
import { settledSamplesPerDevice, startVictoria, type Victoria, victoriaSkip } from './helpers/victoria.js';
import { waitFor } from './helpers/wait.js';

describe('line protocol', () => {
  const plug = { deviceId: '8006ABC', alias: 'Kitchen kettle', model: 'HS110(EU)', parentId: null };
  const reading = {
    tsMs: 1_795_708_504_123,
    powerMw: 40_001,
    voltageMv: 230_500,
    currentMa: 181,
    totalWh: 1234,
  };

  test('a plug reading: measurement, sorted tags, float fields in base units, ms timestamp', () => {
    assert.equal(
      readingLine(plug, reading),
      'kasa_energy,alias=Kitchen\\ kettle,device_id=8006ABC,model=HS110(EU) power_w=40.001,voltage_v=230.5,current_a=0.181,total_wh=1234 1795708504123',
    );
  });

  test('a strip outlet carries parent_id; global tags join the sorted tag set', () => {
    const outlet = { deviceId: '8006STRIP01', alias: 'desk', model: 'HS300(EU)', parentId: '8006STRIP' };
    assert.equal(
      seriesPrefix(outlet, { site: 'home', floor: '1' }),
      'kasa_energy,alias=desk,device_id=8006STRIP01,floor=1,model=HS300(EU),parent_id=8006STRIP,site=home ',
    );
  });

  test('commas, equals signs and spaces in names are escaped; an empty name is left out', () => {
    const odd = { deviceId: 'X1', alias: 'a,b=c d', model: '', parentId: null };
    assert.equal(seriesPrefix(odd), 'kasa_energy,alias=a\\,b\\=c\\ d,device_id=X1 ');
    const trailing = { deviceId: 'X2', alias: 'back\\', model: 'm', parentId: null };
    assert.equal(
      seriesPrefix(trailing),
      'kasa_energy,alias=back,device_id=X2,model=m ',
      'no dangling escape',
    );
  });

  test('the same reading always gives the same line (a replay writes identical points)', () => {
    assert.equal(
      readingLine(plug, reading, { b: '2', a: '1' }),
      readingLine(plug, reading, { a: '1', b: '2' }),
    );
  });
});

const skip = victoriaSkip();

const root = tempRoot('kasa-influx-');
let counter = 0;

const TOKEN = 'kasa-test-token-7f3a9c1e5b';
const CHANNELS = 6;

function channelInfos(prefix: string): ChannelInfo[] {
  return Array.from({ length: CHANNELS }, (_, c) => ({
    id: `${prefix}${c}`,
    alias: `plug ${c}`,
    model: 'HS110(EU)',
    parentId: null,
    parentAlias: null,
  }));
}

/** `count` readings spread over the channels, one per channel per second, ending a minute ago. */
function readingsFor(prefix: string, count: number, fromIndex = 0): Reading[] {
  const start = Date.now() - 3_600_000;
  return Array.from({ length: count }, (_, k) => {
    const i = fromIndex + k;
    return {
      channel: `${prefix}${i % CHANNELS}`,
      tsMs: start + Math.floor(i / CHANNELS) * 1000,
      powerMw: 10_000 + i,
      voltageMv: 230_000,
      currentMa: 50,
      totalWh: i,
    };
  });
}

interface Rig {
  store: SqliteStore;
  forwarder: InfluxForwarder;
  policy: ResiliencePolicy;
  path: string;
}

async function openStore(path: string): Promise<SqliteStore> {
  const store = new SqliteStore(
    sqliteOptions(path, { busyTimeoutMs: 100, outbox: true }),
    createSilentLogger(),
  );
  await store.start();
  return store;
}

async function rig(
  url: string,
  options: {
    policy?: ResiliencePolicy;
    logger?: Logger;
    batchSize?: number;
    path?: string;
    tags?: Record<string, string>;
  } = {},
): Promise<Rig> {
  const path = options.path ?? join(root, `influx-${++counter}.db`);
  const store = await openStore(path);
  const logger = options.logger ?? createSilentLogger();
  const policy = options.policy ?? fastInfluxPolicy();
  const forwarder = new InfluxForwarder(
    store,
    new InfluxHttpWriter(
      { url, token: TOKEN, org: 'home', bucket: 'kasa', timeoutMs: 10_000, gzip: false },
      logger,
    ),
    policy,
    { batchSize: options.batchSize ?? 500, flushIntervalMs: 20, tags: options.tags ?? {}, maxHoldMs: 200 },
    logger,
  );
  return { store, forwarder, policy, path };
}

async function write(store: SqliteStore, prefix: string, readings: Reading[]): Promise<void> {
  await store.upsertChannels(channelInfos(prefix));
  for (let i = 0; i < readings.length; i += 1000) await store.writeBatch(readings.slice(i, i + 1000));
}

function assertAccounting(stats: ForwarderStats): void {
  assert.equal(
    stats.added,
    stats.written + stats.dropped + stats.rejected + stats.queued,
    `added ${stats.added} = written ${stats.written} + dropped ${stats.dropped} + rejected ${stats.rejected} + queued ${stats.queued}`,
  );
}

/**
 * Samples per device of the channels with `prefix`, once VictoriaMetrics shows at least `expected`
 * of them in all (a duplicate would show as more).
 */
async function delivered(vm: Victoria, prefix: string, expected: number): Promise<number[]> {
  const ofPrefix = (counts: Map<string, number>) =>
    Array.from({ length: CHANNELS }, (_, c) => counts.get(`${prefix}${c}`) ?? 0);
  const counts = await settledSamplesPerDevice(
    vm,
    (c) => ofPrefix(c).reduce((a, b) => a + b, 0) >= expected,
    `${expected} samples of ${prefix}*`,
  );
  return ofPrefix(counts);
}

describe('InfluxDB forwarder against VictoriaMetrics', { skip }, () => {
  let vm: Victoria;
  let proxy: FaultProxy;
  before(async () => {
    vm = await startVictoria();
    proxy = await startFaultProxy(vm.url);
  });
  after(async () => {
    await proxy?.close();
    await vm?.close();
  });

  test('every committed reading arrives once, with the DESIGN.md tags and fields; a restart resumes at the cursor', async () => {
    const prefix = 'FWD';
    const { logger, lines } = captureLogger('debug');
    const first = await rig(vm.url, { logger, tags: { site: 'lab' } });
    await write(first.store, prefix, readingsFor(prefix, 3000));
    await first.forwarder.start();
    await waitFor(() => first.forwarder.stats().queued === 0, 'first 3000 forwarded');
    assertAccounting(first.forwarder.stats());
    assert.equal(first.forwarder.stats().written, 3000);
    await first.forwarder.stop();
    // More readings while no forwarder runs, then a new forwarder on the same file.
    await write(first.store, prefix, readingsFor(prefix, 1200, 3000));
    await first.store.stop();

    const second = await rig(vm.url, { logger, path: first.path, tags: { site: 'lab' } });
    await second.forwarder.start();
    assert.equal(second.forwarder.stats().added, 1200, 'only what the saved cursor had not passed');
    await waitFor(() => second.forwarder.stats().queued === 0, 'the rest forwarded');
    assertAccounting(second.forwarder.stats());
    await second.forwarder.stop();
    await second.store.stop();

    assert.deepEqual(
      await delivered(vm, prefix, 4200),
      Array(CHANNELS).fill(4200 / CHANNELS),
      'each reading exactly once',
    );
    const [series] = await vm.exportSeries(`{__name__="kasa_energy_power_w",device_id="${prefix}0"}`);
    assert.deepEqual(series?.metric, {
      __name__: 'kasa_energy_power_w',
      alias: 'plug 0',
      device_id: `${prefix}0`,
      model: 'HS110(EU)',
      site: 'lab',
    });
    assert.equal(series?.values[0], 10, 'power_w = power_mw / 1000');
    assert.equal(series?.timestamps.length, 700);
    for (const field of ['voltage_v', 'current_a', 'total_wh']) {
      const [other] = await vm.exportSeries(`{__name__="kasa_energy_${field}",device_id="${prefix}0"}`);
      assert.equal(other?.timestamps.length, 700, field);
    }
    assert.ok(!JSON.stringify(lines()).includes(TOKEN), 'the token never appears in a log line');
  });

  test('503 and a hanging request are retried by the network policy; the points arrive once', async () => {
    const prefix = 'RTY';
    const r = await rig(proxy.url, { batchSize: 10_000, policy: fastInfluxPolicy({ timeoutMs: 300 }) });
    await write(r.store, prefix, readingsFor(prefix, 600));
    proxy.clearRequests();
    proxy.enqueue({ kind: 'status', status: 503 }, { kind: 'hang' }, { kind: 'status', status: 502 });
    await r.forwarder.start();
    await waitFor(() => r.forwarder.stats().queued === 0, 'delivered after the faults');
    const stats = r.policy.recorder.snapshot();
    assert.equal(stats.retries, 3);
    assert.deepEqual(stats.failures_by_code, { HTTP_503: 1, KASA_TIMEOUT: 1, HTTP_502: 1 });
    assert.deepEqual(
      proxy.requests.map((q) => q.outcome),
      ['answered', 'hung', 'answered', 'forwarded'],
    );
    assertAccounting(r.forwarder.stats());
    await r.forwarder.stop();
    await r.store.stop();
    assert.deepEqual(await delivered(vm, prefix, 600), Array(CHANNELS).fill(100));
  });

  test("429 with Retry-After: the next attempt waits the server's seconds, not the policy's milliseconds", async () => {
    const prefix = 'RA';
    const r = await rig(proxy.url, { batchSize: 10_000 });
    await write(r.store, prefix, readingsFor(prefix, 60));
    proxy.clearRequests();
    proxy.enqueue({ kind: 'status', status: 429, retryAfter: '1' });
    await r.forwarder.start();
    await waitFor(() => r.forwarder.stats().queued === 0, 'delivered after the 429');
    const stats = r.policy.recorder.snapshot();
    assert.equal(stats.retries, 1);
    assert.equal(stats.average_delay, 1, 'waited 1 s (Retry-After), not 10 ms (base delay)');
    assert.equal(proxy.requests.length, 2);
    await r.forwarder.stop();
    await r.store.stop();
    assert.deepEqual(await delivered(vm, prefix, 60), Array(CHANNELS).fill(10));
  });

  test('a poison point (400) is isolated by splitting, counted as rejected, and the cursor moves past it', async () => {
    const prefix = 'PSN';
    const { logger, lines } = captureLogger('debug');
    const r = await rig(proxy.url, { batchSize: 1000, logger });
    const readings = readingsFor(prefix, 1800);
    const poisoned = readings[777] as Reading;
    (readings as Reading[])[777] = { ...poisoned, powerMw: 987_654_321 };
    await write(r.store, prefix, readings);
    proxy.setPoison('power_w=987654.321');
    proxy.clearRequests();
    try {
      await r.forwarder.start();
      await waitFor(() => r.forwarder.stats().queued === 0, 'everything but the poison delivered');
      const stats = r.forwarder.stats();
      assert.equal(stats.rejected, 1);
      assert.equal(stats.written, 1799);
      assert.ok(stats.splits >= 9 && stats.splits <= 11, `about log2(1000) splits, got ${stats.splits}`);
      assertAccounting(stats);
      assert.equal(
        r.policy.recorder.snapshot().breaker.consecutive_failures,
        0,
        'a bad point is not an outage',
      );
      assert.equal(
        proxy.requests.filter((q) => q.status === 400 && q.lines === 1).length,
        1,
        'the lone poison point was sent once, never retried',
      );
      const rejection = lines().find((l) => l.msg?.startsWith('InfluxDB rejected a point') === true);
      assert.match(String(rejection?.['point']), /power_w=987654\.321/);
      await r.forwarder.stop();
    } finally {
      proxy.setPoison(null);
    }
    // A restart does not send it again: the saved cursor is past it.
    await r.store.stop();
    const again = await rig(proxy.url, { path: r.path });
    await again.forwarder.start();
    assert.equal(again.forwarder.stats().added, 0);
    await again.forwarder.stop();
    await again.store.stop();
    const perDevice = await delivered(vm, prefix, 1799);
    assert.equal(
      perDevice.reduce((a, b) => a + b, 0),
      1799,
    );
    assert.equal(perDevice[777 % CHANNELS], 299, 'the poisoned channel lacks exactly that point');
  });

  test('while the breaker is open only its trial calls reach the server: no request storm', async () => {
    const prefix = 'BRK';
    const r = await rig(proxy.url, {
      batchSize: 10_000,
      policy: fastInfluxPolicy({ maxAttempts: 2, breakerThreshold: 3, breakerHalfOpenAfterMs: 100 }),
    });
    await write(r.store, prefix, readingsFor(prefix, 120));
    proxy.clearRequests();
    proxy.setFallback({ kind: 'status', status: 503 });
    try {
      await r.forwarder.start();
      await waitFor(() => r.policy.state === 'open', 'breaker open');
      assert.equal(proxy.requests.length, 3, 'threshold reached after three attempts');
      const lagging = r.forwarder.stats();
      assert.equal(lagging.queued, 120);
      assert.ok(lagging.lagMs > 0, 'the lag behind SQLite is visible');
      const before = { requests: proxy.requests.length, ...r.policy.recorder.snapshot().breaker.transitions };
      await waitFor(
        () => r.policy.recorder.snapshot().breaker.transitions.half_opened >= before.half_opened + 4,
        'four trial calls',
      );
      const transitions = r.policy.recorder.snapshot().breaker.transitions;
      const sent = proxy.requests.length - before.requests;
      const trials = transitions.half_opened - before.half_opened;
      assert.ok(sent <= trials + 1, `${sent} requests for ${trials} trials`);
    } finally {
      proxy.setFallback({ kind: 'pass' });
    }
    await waitFor(() => r.forwarder.stats().queued === 0, 'delivered once the server is back');
    assert.equal(r.policy.state, 'closed');
    assert.equal(r.forwarder.stats().lagMs, 0);
    assertAccounting(r.forwarder.stats());
    await r.forwarder.stop();
    await r.store.stop();
    assert.deepEqual(await delivered(vm, prefix, 120), Array(CHANNELS).fill(20));
  });

  test('the token stays out of logs and errors even when the server echoes it back', async () => {
    const prefix = 'TOK';
    const { logger, lines } = captureLogger('debug');
    const r = await rig(proxy.url, { logger, policy: fastInfluxPolicy({}, logger) });
    await write(r.store, prefix, readingsFor(prefix, 12));
    proxy.clearRequests();
    proxy.enqueue({ kind: 'status', status: 401, body: `{"message":"bad credentials: Token ${TOKEN}"}` });
    await r.forwarder.start();
    await waitFor(() => r.forwarder.stats().queued === 0, 'delivered after the 401');
    assert.equal(proxy.requests[0]?.authorization, `Token ${TOKEN}`, 'the token was sent, in the header');
    const text = JSON.stringify(lines());
    assert.ok(text.includes('answered 401'), 'the failure was logged');
    assert.ok(!text.includes(TOKEN), 'but never the token');
    assert.ok(!String(r.forwarder.stats().lastError?.message).includes(TOKEN));
    await r.forwarder.stop();
    await r.store.stop();
  });
});
