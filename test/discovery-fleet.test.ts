import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Discovery } from '../src/discovery/discovery.js';
import { fleetLayout, loopbackAddresses } from '../src/discovery/simulator-fleet.js';
import { createSilentLogger } from '../src/log/logger.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';

const PORT = 20102;
const COUNT = 500;

describe('a fleet of 500 simulated plugs', () => {
  let fleet: SimulatorFleet;

  before(async () => {
    fleet = await startSimulators({
      port: PORT,
      devices: fleetLayout({ count: COUNT, stripEvery: 10, firstAddress: '127.0.11.1' }),
    });
  });

  after(async () => {
    await fleet.stop();
  });

  test('all 500 are found in one discovery round (one broadcast, large receive buffer)', async () => {
    const discovery = new Discovery(
      {
        broadcast: ['127.255.255.255'],
        port: PORT,
        intervalMs: 60_000,
        timeoutMs: 2_000,
        hosts: [],
        offlineTolerance: 3,
        receiveBufferBytes: 4 * 1024 * 1024,
      },
      createSilentLogger(),
    );
    try {
      const result = await discovery.runRound();
      assert.ok(result !== null);
      assert.equal(result.replies.length, COUNT);
      assert.equal(result.garbage, 0);
      const counts = discovery.registry.counts();
      assert.equal(counts.devices, COUNT);
      assert.equal(counts.online, COUNT);
      // 50 strips of 6 outlets + 450 single plugs.
      assert.equal(counts.channels, 50 * 6 + 450);
      const expected = new Set(fleet.devices.map((d) => d.deviceId));
      for (const device of discovery.registry.snapshot()) {
        assert.ok(expected.has(device.id));
        const sim = fleet.devices.find((d) => d.deviceId === device.id);
        assert.equal(device.host, sim?.address, 'each answers from its own address');
      }
    } finally {
      await discovery.stop();
    }
  });

  test('fleet addresses count up through loopback without .0 or .255', () => {
    const addresses = loopbackAddresses('127.0.11.250', 8);
    assert.deepEqual(addresses, [
      '127.0.11.250',
      '127.0.11.251',
      '127.0.11.252',
      '127.0.11.253',
      '127.0.11.254',
      '127.0.12.1',
      '127.0.12.2',
      '127.0.12.3',
    ]);
    assert.throws(() => loopbackAddresses('10.0.0.1', 1));
  });
});
