import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Discovery, type DiscoveryOptions } from '../src/discovery/discovery.js';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Poller, type PollerOptions } from '../src/poller/poller.js';
import { BoundedQueue } from '../src/queue/bounded-queue.js';
import {
  CollectingSink,
  RequestCounter,
  type SimDeviceSpec,
  type SimulatorFleet,
  startSimulators,
} from './helpers/simulator.js';
import { sleep, waitFor } from './helpers/wait.js';

const PORT = 20111;

function id(n: number): string {
  return `B${String(n).padStart(39, '0')}`;
}

interface Rig {
  fleet: SimulatorFleet;
  discovery: Discovery;
  poller: Poller;
  sink: CollectingSink;
  requests: RequestCounter;
}

let rigs: Rig[] = [];

async function rig(
  devices: SimDeviceSpec[],
  pollerOptions: Partial<PollerOptions> = {},
  discoveryOptions: Partial<DiscoveryOptions> = {},
): Promise<Rig> {
  // Devices start well-behaved so that discovery finds them; slowness and garbage apply to polls.
  const fleet = await startSimulators({
    port: PORT,
    devices: devices.map(({ responseDelay: _d, unreliablePercent: _u, ...spec }) => spec),
  });
  const requests = new RequestCounter(fleet);
  const discovery = new Discovery(
    {
      broadcast: ['127.255.255.255'],
      port: PORT,
      intervalMs: 60_000,
      timeoutMs: 500,
      hosts: [],
      offlineTolerance: 100,
      receiveBufferBytes: 1 << 20,
      ...discoveryOptions,
    },
    createSilentLogger(),
  );
  await discovery.runRound();
  for (const spec of devices) {
    if (spec.deviceId === undefined) continue;
    fleet.setBehaviour(spec.deviceId, {
      ...(spec.responseDelay === undefined ? {} : { responseDelay: spec.responseDelay }),
      ...(spec.unreliablePercent === undefined ? {} : { unreliablePercent: spec.unreliablePercent }),
    });
  }
  const sink = new CollectingSink();
  const poller = new Poller(
    discovery.registry,
    sink,
    { intervalMs: 60_000, timeoutMs: 1_000, concurrency: 8, transport: 'udp', ...pollerOptions },
    createSilentLogger(),
  );
  const r = { fleet, discovery, poller, sink, requests };
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs) {
    await r.poller.stop();
    await r.discovery.stop();
    r.requests.stop();
    await r.fleet.stop();
  }
  rigs = [];
});

function only(readings: Reading[], what: string): Reading {
  assert.equal(readings.length, 1, `exactly one reading for ${what}`);
  const [reading] = readings;
  assert.ok(reading);
  return reading;
}

describe('poller against simulated plugs', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    test(`${transport}: HS110 old units and HS110 v2 new units give exactly the canonical integers`, async () => {
      const { poller, sink, fleet } = await rig(
        [
          { model: 'hs110', address: '127.0.13.1', deviceId: id(1) },
          { model: 'hs110v2', address: '127.0.13.2', deviceId: id(2) },
        ],
        { transport },
      );
      // Old firmware: W, V, A, kWh floats; chosen so that rounding (not truncation) matters.
      fleet.setRealtime(id(1), { power: 12.3456, voltage: 230.1234, current: 0.0535, total: 1.2345 });
      // New firmware: mW, mV, mA, Wh integers.
      fleet.setRealtime(id(2), {
        power_mw: 1_500_123,
        voltage_mv: 231_456,
        current_ma: 6_789,
        total_wh: 98_765,
      });

      const before = Date.now();
      await poller.tick();
      const old = only(sink.of(id(1)), 'HS110');
      assert.deepEqual(
        { power: old.powerMw, voltage: old.voltageMv, current: old.currentMa, total: old.totalWh },
        { power: 12_346, voltage: 230_123, current: 54, total: 1_235 },
      );
      const modern = only(sink.of(id(2)), 'HS110 v2');
      assert.deepEqual(
        {
          power: modern.powerMw,
          voltage: modern.voltageMv,
          current: modern.currentMa,
          total: modern.totalWh,
        },
        { power: 1_500_123, voltage: 231_456, current: 6_789, total: 98_765 },
      );
      for (const r of sink.readings) {
        assert.ok(Number.isInteger(r.tsMs) && r.tsMs >= before, 'tsMs is UTC ms taken at poll time');
      }
      assert.equal(poller.stats().pollsOk, 2);
      assert.equal(poller.stats().ticks, 1);
    });
  }

  test('an HS300 yields six channels with full child ids and per-outlet values', async () => {
    const strip = id(3);
    const { poller, sink, fleet, requests } = await rig([
      { model: 'hs300', address: '127.0.13.3', deviceId: strip },
    ]);
    for (let outlet = 0; outlet < 6; outlet++) {
      fleet.setRealtime(`${strip}0${outlet}`, {
        power_mw: 1000 * (outlet + 1) + 7,
        voltage_mv: 120_000 + outlet,
        current_ma: 10 + outlet,
        total_wh: 500 + outlet,
      });
    }
    await poller.tick();
    assert.deepEqual(
      sink.readings.map((r) => r.channel),
      [0, 1, 2, 3, 4, 5].map((o) => `${strip}0${o}`),
      'outlets polled one after another, in order',
    );
    for (let outlet = 0; outlet < 6; outlet++) {
      const r = only(sink.of(`${strip}0${outlet}`), `outlet ${outlet}`);
      assert.deepEqual(
        [r.powerMw, r.voltageMv, r.currentMa, r.totalWh],
        [1000 * (outlet + 1) + 7, 120_000 + outlet, 10 + outlet, 500 + outlet],
      );
    }
    assert.equal(requests.count(strip, 'emeter'), 6);
  });

  test('an HS100 without energy meter is discovered but never polled', async () => {
    const { poller, sink, discovery, requests } = await rig([
      { model: 'hs100', address: '127.0.13.4', deviceId: id(4) },
      { model: 'hs110', address: '127.0.13.5', deviceId: id(5) },
    ]);
    await poller.tick();
    await poller.tick();
    assert.equal(discovery.registry.get(id(4))?.state.kind, 'online');
    assert.equal(requests.count(id(4), 'sysinfo'), 1, 'it answered discovery');
    assert.equal(requests.count(id(4), 'emeter'), 0, 'but was never asked for energy');
    assert.equal(sink.of(id(4)).length, 0);
    assert.equal(sink.of(id(5)).length, 2);
  });

  test('a flaky plug never breaks the others and its failures are counted', async () => {
    const { poller, sink } = await rig([
      { model: 'hs110', address: '127.0.13.6', deviceId: id(6), unreliablePercent: 0.5 },
      { model: 'hs110', address: '127.0.13.7', deviceId: id(7) },
      { model: 'hs110v2', address: '127.0.13.8', deviceId: id(8) },
    ]);
    const ticks = 30;
    for (let i = 0; i < ticks; i++) await poller.tick();
    const stats = poller.stats();
    assert.equal(sink.of(id(7)).length, ticks);
    assert.equal(sink.of(id(8)).length, ticks);
    const failures = Object.values(stats.rejected).reduce((a, b) => a + b, 0);
    assert.ok(failures > 0, 'garbage answers were counted');
    assert.ok(stats.rejected.malformed > 0, 'random bytes are malformed');
    assert.equal(sink.of(id(6)).length + failures, ticks, 'every request of the flaky plug is accounted for');
    assert.equal(stats.requests, 3 * ticks);
  });

  test('a slow plug times out without delaying the others: their readings arrive first, in the same tick', async () => {
    const { poller, sink, discovery } = await rig(
      [
        { model: 'hs110', address: '127.0.13.9', deviceId: id(9), responseDelay: 3_000 },
        { model: 'hs110', address: '127.0.13.10', deviceId: id(10) },
        { model: 'hs300', address: '127.0.13.11', deviceId: id(11) },
      ],
      { timeoutMs: 800 },
    );
    const timeoutsSeenAtReading = new Map<string, number>();
    sink.onReading = (r) => timeoutsSeenAtReading.set(r.channel, poller.stats().rejected.timeout);

    await poller.tick();
    assert.equal(sink.of(id(10)).length, 1);
    assert.equal(sink.readings.filter((r) => r.channel.startsWith(id(11))).length, 6);
    assert.equal(sink.of(id(9)).length, 0);
    assert.equal(poller.stats().rejected.timeout, 1, 'the slow plug counted as timeout');
    for (const [channel, timeouts] of timeoutsSeenAtReading) {
      assert.equal(timeouts, 0, `${channel} was read before the slow plug's timeout expired`);
    }
    assert.equal(discovery.registry.get(id(9))?.failedPolls, 1);
  });

  test('a plug that moves to another address keeps its deviceId and its readings continue under it', async () => {
    const { poller, sink, discovery, fleet } = await rig(
      [{ model: 'hs110v2', address: '127.0.13.12', deviceId: id(12) }],
      { timeoutMs: 500 },
    );
    fleet.setRealtime(id(12), { power_mw: 1000, voltage_mv: 230_000, current_ma: 5, total_wh: 10 });
    await poller.tick();
    await fleet.move(id(12), '127.0.13.112');
    fleet.setRealtime(id(12), { power_mw: 2000, voltage_mv: 231_000, current_ma: 9, total_wh: 11 });

    await poller.tick();
    assert.equal(poller.stats().rejected.timeout, 1, 'the old address no longer answers');

    await discovery.runRound();
    assert.equal(discovery.registry.get(id(12))?.host, '127.0.13.112');
    await poller.tick();
    const readings = sink.of(id(12));
    assert.deepEqual(
      readings.map((r) => r.powerMw),
      [1000, 2000],
    );
    assert.equal(readings[1]?.voltageMv, 231_000);
  });

  test('failed polls take a device offline after the tolerance; discovery brings it back', async () => {
    const { poller, sink, discovery, fleet } = await rig(
      [
        { model: 'hs110', address: '127.0.13.13', deviceId: id(13) },
        { model: 'hs110', address: '127.0.13.14', deviceId: id(14) },
      ],
      { timeoutMs: 500 },
      { offlineTolerance: 2 },
    );
    const offline: string[] = [];
    discovery.registry.on('offline', (d) => offline.push(d.id));
    await fleet.pause(id(13));
    await poller.tick();
    assert.equal(discovery.registry.get(id(13))?.state.kind, 'online', 'one failure is tolerated');
    await poller.tick();
    assert.deepEqual(offline, [id(13)]);
    const timeoutsWhenOffline = poller.stats().rejected.timeout;
    assert.equal(timeoutsWhenOffline, 2);

    await poller.tick();
    assert.equal(poller.stats().rejected.timeout, timeoutsWhenOffline, 'offline devices are not polled');

    await fleet.resume(id(13));
    await discovery.runRound();
    assert.equal(discovery.registry.get(id(13))?.state.kind, 'online');
    await poller.tick();
    assert.equal(sink.of(id(13)).length, 1);
    assert.equal(sink.of(id(14)).length, 4);
  });

  test('no overlap per device: a device whose poll is still running is skipped and counted', async () => {
    const { poller, sink, requests } = await rig(
      [
        { model: 'hs110', address: '127.0.13.15', deviceId: id(15), responseDelay: 400 },
        { model: 'hs110', address: '127.0.13.16', deviceId: id(16) },
      ],
      { timeoutMs: 3_000 },
    );
    let fastDone: () => void = () => {};
    const fastRead = new Promise<void>((resolve) => {
      fastDone = resolve;
    });
    sink.onReading = (r) => {
      if (r.channel === id(16)) fastDone();
    };
    const first = poller.tick();
    await fastRead;
    await waitFor(() => poller.stats().inFlight === 1, 'the fast job finished, the slow one still in flight');
    const second = poller.tick();
    await Promise.all([first, second]);

    assert.equal(poller.stats().skippedOverlap, 1);
    assert.equal(requests.count(id(15), 'emeter'), 1, 'the slow plug got one request, not two');
    assert.equal(sink.of(id(15)).length, 1);
    assert.equal(sink.of(id(16)).length, 2);
    assert.equal(poller.stats().inFlight, 0);
  });

  test('the global concurrency bound holds across devices', async () => {
    const devices: SimDeviceSpec[] = [];
    for (let n = 20; n < 30; n++) {
      devices.push({ model: 'hs110', address: `127.0.13.${n}`, deviceId: id(n), responseDelay: 30 });
    }
    const { poller, sink, fleet } = await rig(devices, { concurrency: 3 });
    let outstanding = 0;
    let peak = 0;
    fleet.onRequest((r) => {
      if (!r.message.includes('get_realtime')) return;
      outstanding++;
      peak = Math.max(peak, outstanding);
    });
    sink.onReading = () => {
      outstanding--;
    };
    await poller.tick();
    assert.equal(sink.readings.length, 10);
    assert.ok(peak <= 3, `at most 3 requests in flight, saw ${peak}`);
    assert.ok(peak >= 2, 'requests did run in parallel');
  });

  test('readings go to a BoundedQueue, tsMs taken when the request is sent', async () => {
    const { discovery, fleet, requests } = await rig([
      { model: 'hs110', address: '127.0.13.31', deviceId: id(31), responseDelay: 50 },
    ]);
    fleet.setRealtime(id(31), { power: 1, voltage: 2, current: 3, total: 4 });
    const queue = new BoundedQueue<Reading>({ capacity: 10, overflow: 'drop-oldest' }, createSilentLogger());
    const poller = new Poller(
      discovery.registry,
      queue,
      { intervalMs: 60_000, timeoutMs: 1_000, concurrency: 4, transport: 'udp' },
      createSilentLogger(),
    );
    const before = Date.now();
    await poller.tick();
    const [reading] = queue.take(10);
    assert.deepEqual(
      { ...reading, tsMs: 0 },
      { channel: id(31), tsMs: 0, powerMw: 1000, voltageMv: 2000, currentMa: 3000, totalWh: 4000 },
    );
    const received = requests.requests.find((r) => r.message.includes('get_realtime'));
    assert.ok(reading && received);
    assert.ok(
      reading.tsMs >= before && reading.tsMs <= received.timeMs,
      'stamped at send, before the plug saw it',
    );
    await poller.stop();
  });

  test('start() ticks on the interval; stop() waits for the polls in flight', async () => {
    const { poller, sink } = await rig(
      [{ model: 'hs110', address: '127.0.13.32', deviceId: id(32), responseDelay: 100 }],
      {
        intervalMs: 150,
      },
    );
    poller.start();
    await waitFor(
      () => poller.stats().inFlight === 1 && sink.readings.length >= 1,
      'a poll in flight after a reading',
    );
    await poller.stop();
    const stats = poller.stats();
    assert.equal(stats.inFlight, 0, 'nothing in flight after stop');
    assert.ok(stats.ticks >= 2);
    assert.equal(
      sink.readings.length + Object.values(stats.rejected).reduce((a, b) => a + b, 0),
      stats.requests,
    );
    const ticks = stats.ticks;
    await sleep(400);
    assert.equal(poller.stats().ticks, ticks, 'no tick after stop');
  });

  test('a cron schedule with seconds drives the ticks; reconfigure reschedules', async () => {
    const { poller, sink } = await rig([{ model: 'hs110', address: '127.0.13.33', deviceId: id(33) }], {
      intervalMs: 3_600_000,
      schedule: '* * * * * *',
    });
    poller.start();
    await waitFor(() => poller.stats().ticks >= 2, 'two cron ticks');
    await waitFor(() => sink.readings.length >= 2, 'two readings');
    poller.reconfigure({ ...poller.options, schedule: undefined, intervalMs: 100 });
    const ticks = poller.stats().ticks;
    await waitFor(() => poller.stats().ticks >= ticks + 3, 'interval ticks after reload');
    await poller.stop();
    assert.equal(poller.stats().missedTicks, 0);
  });

  test('an animated fleet (the demo) produces changing, still plausible readings', async () => {
    const { poller, sink, fleet } = await rig([
      { model: 'hs110v2', address: '127.0.13.34', deviceId: id(34) },
    ]);
    fleet.setRealtime(id(34), { power_mw: 100_000, voltage_mv: 230_000, current_ma: 435, total_wh: 1_000 });
    await poller.tick();
    const stopAnimation = fleet.animate(10);
    await waitFor(() => {
      void poller.tick();
      return new Set(sink.readings.map((r) => r.powerMw)).size > 1;
    }, 'power to change');
    stopAnimation();
    await poller.stop();
    assert.equal(
      Object.values(poller.stats().rejected).reduce((a, b) => a + b, 0),
      0,
    );
    for (const r of sink.readings) assert.ok(r.totalWh >= 1_000, 'the energy counter never goes back');
  });
});
