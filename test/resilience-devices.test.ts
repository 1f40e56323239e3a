/**
 * Per-device protection with simulated plugs: a plug that stops answering is backed off on its own
 * (its polls are skipped, with pauses that double), the other plugs are polled on every tick, and
 * the plug comes back by itself once it answers. The clock of the backoff is a test clock; the
 * polls are real requests to real (simulated) plugs.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Discovery } from '../src/discovery/discovery.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Poller } from '../src/poller/poller.js';
import { DeviceBackoff } from '../src/resilience/index.js';
import {
  CollectingSink,
  type SimDeviceSpec,
  type SimulatorFleet,
  startSimulators,
} from './helpers/simulator.js';

const PORT = 22100;
const BASE_MS = 10_000;

function id(n: number): string {
  return `D${String(n).padStart(39, '0')}`;
}

interface Rig {
  fleet: SimulatorFleet;
  discovery: Discovery;
  poller: Poller;
  sink: CollectingSink;
  clock: { now: number };
}

let rigs: Rig[] = [];

afterEach(async () => {
  for (const r of rigs) {
    await r.poller.stop();
    await r.discovery.stop();
    await r.fleet.stop();
  }
  rigs = [];
});

async function rig(devices: SimDeviceSpec[]): Promise<Rig> {
  const fleet = await startSimulators({ port: PORT, devices });
  const discovery = new Discovery(
    {
      broadcast: ['127.255.255.255'],
      port: PORT,
      intervalMs: 60_000,
      timeoutMs: 300,
      hosts: [],
      // The registry's own offline rule stays out of the way: this is about the backoff.
      offlineTolerance: 1000,
      receiveBufferBytes: 1 << 20,
    },
    createSilentLogger(),
  );
  await discovery.runRound();
  const clock = { now: Date.UTC(2026, 10, 26) };
  const sink = new CollectingSink();
  const poller = new Poller(
    discovery.registry,
    sink,
    { intervalMs: BASE_MS, timeoutMs: 300, concurrency: 8, transport: 'udp', backoffAfter: 3 },
    createSilentLogger(),
    new DeviceBackoff({ after: 3, baseMs: BASE_MS, maxMs: 4 * BASE_MS }, () => clock.now),
  );
  const r = { fleet, discovery, poller, sink, clock };
  rigs.push(r);
  return r;
}

describe('per-device backoff', () => {
  test('a plug that stops answering is polled less and less; the others every tick; it comes back on its own', async () => {
    const { fleet, poller, sink, clock } = await rig([
      { model: 'hs110', address: '127.0.42.1', deviceId: id(1) },
      { model: 'hs110', address: '127.0.42.2', deviceId: id(2) },
    ]);
    const timeouts = () => poller.stats().rejected.timeout;
    await fleet.pause(id(1));

    for (let i = 0; i < 3; i++) await poller.tick();
    assert.equal(timeouts(), 3, 'three unanswered polls');
    assert.equal(poller.stats().backoff.backingOff, 1);

    // Paused for one base period: ticks in between do not touch it.
    for (let i = 0; i < 5; i++) await poller.tick();
    assert.equal(timeouts(), 3, 'no request while paused');
    assert.equal(poller.stats().backoff.skippedPolls, 5);
    assert.equal(sink.of(id(2)).length, 8, 'the healthy plug was polled on every tick');

    // The pause ends: one trial, which fails and doubles the pause.
    clock.now += BASE_MS;
    await poller.tick();
    assert.equal(timeouts(), 4, 'one trial poll');
    clock.now += BASE_MS;
    await poller.tick();
    assert.equal(timeouts(), 4, 'the second pause is twice as long');
    clock.now += BASE_MS;
    await poller.tick();
    assert.equal(timeouts(), 5, 'second trial');

    // It answers again: the next trial gets a reading and the backoff ends.
    await fleet.resume(id(1));
    clock.now += 4 * BASE_MS;
    await poller.tick();
    assert.equal(sink.of(id(1)).length, 1, 'back by itself');
    await poller.tick();
    await poller.tick();
    assert.equal(sink.of(id(1)).length, 3, 'polled on every tick again');
    assert.deepEqual(
      { ...poller.stats().backoff, skippedPolls: undefined },
      { paused: 0, backingOff: 0, skippedPolls: undefined, episodes: 1, recoveries: 1 },
    );
    assert.equal(timeouts(), 5);
  });

  test('a plug answering with garbage is there: it is never backed off', async () => {
    const { fleet, poller } = await rig([{ model: 'hs110', address: '127.0.42.3', deviceId: id(3) }]);
    fleet.setBehaviour(id(3), { unreliablePercent: 1 });
    for (let i = 0; i < 6; i++) await poller.tick();
    assert.equal(poller.stats().rejected.malformed, 6, 'every poll went out');
    assert.equal(poller.stats().backoff.skippedPolls, 0);
    assert.equal(poller.stats().backoff.episodes, 0);
  });

  test('wake() (discovery heard the plug) makes its next poll a trial at once', async () => {
    const { fleet, poller, sink } = await rig([{ model: 'hs110', address: '127.0.42.4', deviceId: id(4) }]);
    await fleet.pause(id(4));
    for (let i = 0; i < 3; i++) await poller.tick();
    await fleet.resume(id(4));
    await poller.tick();
    assert.equal(sink.of(id(4)).length, 0, 'still paused');
    poller.wake(id(4));
    await poller.tick();
    assert.equal(sink.of(id(4)).length, 1, 'polled right after wake()');
  });
});
