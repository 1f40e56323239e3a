import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { Discovery, type DiscoveryOptions, discoverOnce, parseHostPort } from '../src/discovery/discovery.js';
import { fullChildId, parseSysinfoResponse, probe } from '../src/discovery/kasa.js';
import type { DeviceMove, DeviceSnapshot } from '../src/discovery/registry.js';
import type { ChannelInfo } from '../src/domain/channel.js';
import { createSilentLogger } from '../src/log/logger.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';

const PORT = 20101;
const BROADCAST = '127.255.255.255';

const IDS = {
  hs110: 'A0000000000000000000000000000000000000A1',
  hs110v2: 'A0000000000000000000000000000000000000A2',
  hs300: 'A0000000000000000000000000000000000000A3',
  hs100: 'A0000000000000000000000000000000000000A4',
};

function options(overrides: Partial<DiscoveryOptions> = {}): DiscoveryOptions {
  return {
    broadcast: [BROADCAST],
    port: PORT,
    intervalMs: 60_000,
    timeoutMs: 500,
    hosts: [],
    offlineTolerance: 2,
    receiveBufferBytes: 4 * 1024 * 1024,
    ...overrides,
  };
}

describe('discovery of simulated plugs on loopback', () => {
  let fleet: SimulatorFleet;

  before(async () => {
    fleet = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110', address: '127.0.10.1', deviceId: IDS.hs110, alias: 'Kettle' },
        { model: 'hs110v2', address: '127.0.10.2', deviceId: IDS.hs110v2, alias: 'Fridge' },
        {
          model: 'hs300',
          address: '127.0.10.3',
          deviceId: IDS.hs300,
          alias: 'Desk strip',
          outletAliases: ['Monitor', 'PC', 'Lamp', 'Printer', 'Router', 'Spare'],
        },
        { model: 'hs100', address: '127.0.10.4', deviceId: IDS.hs100, alias: 'Porch light' },
      ],
    });
  });

  after(async () => {
    await fleet.stop();
  });

  test('discoverOnce lists every plug with id, alias, model, address, meter yes/no and outlets', async () => {
    const found = await discoverOnce({ broadcast: [BROADCAST], port: PORT, timeoutMs: 500, hosts: [] });
    const byId = new Map(found.map((d) => [d.id, d]));
    assert.equal(found.length, 4);

    const kettle = byId.get(IDS.hs110);
    assert.match(kettle?.mac ?? '', /^[0-9A-F]{2}(-[0-9A-F]{2}){5}$/);
    assert.deepEqual(
      { ...kettle, mac: null },
      {
        id: IDS.hs110,
        alias: 'Kettle',
        model: 'HS110(US)',
        host: '127.0.10.1',
        port: PORT,
        mac: null,
        hasEmeter: true,
        outlets: [],
        // A legacy plug: no TP-Link account involved.
        transport: 'legacy',
        accountWorks: null,
        credential: null,
        state: 'ok',
        advice: null,
      },
    );
    assert.equal(byId.get(IDS.hs110v2)?.hasEmeter, true);
    assert.equal(byId.get(IDS.hs100)?.hasEmeter, false);

    const strip = byId.get(IDS.hs300);
    assert.equal(strip?.model, 'HS300(US)');
    assert.deepEqual(strip?.outlets, [
      { id: `${IDS.hs300}00`, alias: 'Monitor' },
      { id: `${IDS.hs300}01`, alias: 'PC' },
      { id: `${IDS.hs300}02`, alias: 'Lamp' },
      { id: `${IDS.hs300}03`, alias: 'Printer' },
      { id: `${IDS.hs300}04`, alias: 'Router' },
      { id: `${IDS.hs300}05`, alias: 'Spare' },
    ]);
    // Sorted by alias for the CLI.
    assert.deepEqual(
      found.map((d) => d.alias),
      ['Desk strip', 'Fridge', 'Kettle', 'Porch light'],
    );
  });

  test('static hosts are found without any broadcast', async () => {
    const found = await discoverOnce({
      broadcast: [],
      port: PORT,
      timeoutMs: 2_000,
      hosts: ['127.0.10.1', `127.0.10.3:${PORT}`],
    });
    assert.deepEqual(found.map((d) => d.id).sort(), [IDS.hs110, IDS.hs300].sort());
  });

  test('garbage replies are counted and ignored while real plugs are still found', async () => {
    // A fake "device" on a static address that answers with noise, then with valid JSON that is no sysinfo.
    const liar = createSocket('udp4');
    await new Promise<void>((resolve) => liar.bind(PORT, '127.0.10.200', resolve));
    liar.on('message', (_msg, rinfo) => {
      liar.send(Buffer.from([1, 2, 3, 250, 0, 7]), rinfo.port, rinfo.address);
      liar.send(Buffer.from('{"system":{"get_sysinfo":{"err_code":-1}}}'), rinfo.port, rinfo.address);
    });
    try {
      const result = await probe({
        broadcast: [BROADCAST],
        hosts: [{ host: '127.0.10.200', port: PORT }],
        port: PORT,
        timeoutMs: 500,
        receiveBufferBytes: 1 << 20,
      });
      assert.equal(result.garbage, 2);
      assert.equal(result.replies.length, 4);
    } finally {
      liar.close();
    }
  });

  test('the registry knows every device by deviceId; a strip has one channel per outlet, an HS100 none', async () => {
    const discovery = new Discovery(options(), createSilentLogger());
    const channelEvents: ChannelInfo[][] = [];
    const added: DeviceSnapshot[] = [];
    discovery.registry.on('channels', (c) => channelEvents.push([...c]));
    discovery.registry.on('added', (d) => added.push(d));
    await discovery.runRound();
    await discovery.stop();

    assert.equal(added.length, 4);
    const counts = discovery.registry.counts();
    assert.deepEqual(counts, {
      devices: 4,
      online: 4,
      offline: 0,
      polled: 3,
      channels: 8,
      onlineChannels: 8,
    });

    const strip = discovery.registry.get(IDS.hs300);
    assert.equal(strip?.channels.length, 6);
    assert.deepEqual(strip?.channels[5], {
      id: `${IDS.hs300}05`,
      alias: 'Spare',
      model: 'HS300(US)',
      parentId: IDS.hs300,
      parentAlias: 'Desk strip',
    });
    const porch = discovery.registry.get(IDS.hs100);
    assert.equal(porch?.polled, false);
    assert.deepEqual(porch?.channels, []);
    assert.equal(porch?.state.kind, 'online');

    // One channels event per metered device; none for the HS100.
    assert.equal(channelEvents.length, 3);
    assert.deepEqual(
      channelEvents.flat().find((c) => c.id === IDS.hs110),
      {
        id: IDS.hs110,
        alias: 'Kettle',
        model: 'HS110(US)',
        parentId: null,
        parentAlias: null,
      },
    );
    // Only metered plugs are poll targets.
    assert.deepEqual(
      discovery.registry
        .pollTargets()
        .map((t) => t.deviceId)
        .sort(),
      [IDS.hs110, IDS.hs110v2, IDS.hs300].sort(),
    );

    // A second round with nothing changed emits no further channels or added events.
    await discovery.runRound();
    assert.equal(channelEvents.length, 3);
    assert.equal(added.length, 4);
    await discovery.stop();
  });

  test('a device goes offline after offlineTolerance missed rounds and back online when seen', async () => {
    const discovery = new Discovery(options({ offlineTolerance: 2 }), createSilentLogger());
    const events: string[] = [];
    discovery.registry.on('offline', (d) => events.push(`offline ${d.id}`));
    discovery.registry.on('online', (d) => events.push(`online ${d.id}`));
    try {
      await discovery.runRound();
      await fleet.pause(IDS.hs110v2);

      await discovery.runRound();
      assert.equal(discovery.registry.get(IDS.hs110v2)?.state.kind, 'online', 'one miss is tolerated');
      assert.equal(discovery.registry.get(IDS.hs110v2)?.missedRounds, 1);
      assert.deepEqual(events, []);

      await discovery.runRound();
      const state = discovery.registry.get(IDS.hs110v2)?.state;
      assert.equal(state?.kind, 'offline');
      assert.equal(state?.kind === 'offline' ? state.misses : -1, 2);
      assert.deepEqual(events, [`offline ${IDS.hs110v2}`]);
      assert.equal(discovery.registry.counts().offline, 1);
      assert.ok(!discovery.registry.pollTargets().some((t) => t.deviceId === IDS.hs110v2));

      await fleet.resume(IDS.hs110v2);
      await discovery.runRound();
      assert.equal(discovery.registry.get(IDS.hs110v2)?.state.kind, 'online');
      assert.deepEqual(events, [`offline ${IDS.hs110v2}`, `online ${IDS.hs110v2}`]);
      assert.ok(discovery.registry.pollTargets().some((t) => t.deviceId === IDS.hs110v2));
    } finally {
      await fleet.resume(IDS.hs110v2);
      await discovery.stop();
    }
  });

  test('a plug that reappears at another address keeps its id and channels; a moved event says where', async () => {
    const discovery = new Discovery(options(), createSilentLogger());
    const moves: DeviceMove[] = [];
    let channelEvents = 0;
    discovery.registry.on('moved', (m) => moves.push(m));
    discovery.registry.on('channels', () => channelEvents++);
    try {
      await discovery.runRound();
      const before = discovery.registry.get(IDS.hs110);
      const eventsBefore = channelEvents;
      await fleet.move(IDS.hs110, '127.0.10.41');
      await discovery.runRound();

      const afterMove = discovery.registry.get(IDS.hs110);
      assert.equal(afterMove?.host, '127.0.10.41');
      assert.deepEqual(afterMove?.channels, before?.channels);
      assert.equal(afterMove?.state.kind, 'online');
      assert.equal(discovery.registry.counts().devices, 4, 'no second device for the new address');
      assert.equal(moves.length, 1);
      assert.deepEqual(moves[0]?.from, { host: '127.0.10.1', port: PORT });
      assert.deepEqual(moves[0]?.to, { host: '127.0.10.41', port: PORT });
      assert.equal(channelEvents, eventsBefore, 'channels unchanged: no upsert needed');
    } finally {
      await fleet.move(IDS.hs110, '127.0.10.1');
      await discovery.stop();
    }
  });

  test('start() runs a round at once and then every interval; a failed round is counted, not thrown', async () => {
    const discovery = new Discovery(options({ intervalMs: 100, timeoutMs: 50 }), createSilentLogger());
    discovery.start();
    try {
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (discovery.stats().rounds >= 3) {
            clearInterval(check);
            resolve();
          }
        }, 10);
      });
      assert.equal(discovery.registry.counts().devices, 4);
      assert.equal(discovery.stats().failedRounds, 0);
    } finally {
      await discovery.stop();
    }

    // Port 0 cannot be sent to: every round fails, and the service carries on.
    const broken = new Discovery(options({ port: 0, intervalMs: 20, timeoutMs: 10 }), createSilentLogger());
    broken.start();
    try {
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (broken.stats().failedRounds >= 2) {
            clearInterval(check);
            resolve();
          }
        }, 5);
      });
      assert.equal(broken.registry.counts().devices, 0);
      assert.equal(broken.stats().running, true);
    } finally {
      await broken.stop();
    }
    assert.equal(broken.stats().running, false);
  });

  test('reconfigure applies a new offline tolerance and static hosts to the next round', async () => {
    const discovery = new Discovery(options({ broadcast: [], hosts: ['127.0.10.4'] }), createSilentLogger());
    try {
      await discovery.runRound();
      assert.deepEqual(
        discovery.registry.snapshot().map((d) => d.id),
        [IDS.hs100],
      );
      discovery.reconfigure(
        options({ broadcast: [], hosts: ['127.0.10.4', '127.0.10.2'], offlineTolerance: 1 }),
      );
      await discovery.runRound();
      assert.equal(discovery.registry.counts().devices, 2);
      discovery.reconfigure(options({ broadcast: [], hosts: ['127.0.10.2'], offlineTolerance: 1 }));
      await discovery.runRound();
      assert.equal(
        discovery.registry.get(IDS.hs100)?.state.kind,
        'offline',
        'tolerance 1: one miss is enough',
      );
    } finally {
      await discovery.stop();
    }
  });
});

describe('sysinfo parsing', () => {
  test('child ids reported with two digits (UDP) are completed with the strip deviceId', () => {
    assert.equal(fullChildId('ABC', '03'), 'ABC03');
    assert.equal(fullChildId('ABC', '3'), 'ABC03');
    assert.equal(fullChildId('ABC', 'ABC05'), 'ABC05');
  });

  test('replies that are not a usable sysinfo are rejected', () => {
    assert.equal(parseSysinfoResponse('not json'), null);
    assert.equal(parseSysinfoResponse('[]'), null);
    assert.equal(parseSysinfoResponse('{"system":{"get_sysinfo":{"err_code":-1}}}'), null);
    assert.equal(parseSysinfoResponse('{"system":{"get_sysinfo":{"alias":"x","model":"m"}}}'), null);
    assert.equal(
      parseSysinfoResponse(
        '{"system":{"get_sysinfo":{"deviceId":"D","alias":"x","model":"m","children":[{}]}}}',
      ),
      null,
    );
    const ok = parseSysinfoResponse(
      '{"system":{"get_sysinfo":{"err_code":0,"deviceId":"D","alias":"x","model":"m","feature":"TIM:ENE"}}}',
    );
    assert.equal(ok?.deviceId, 'D');
    assert.equal(ok?.hasEmeter, true);
    assert.equal(ok?.isPlug, false, 'no type/mac: the library could not address it');
  });

  test('host specs accept host and host:port', () => {
    assert.deepEqual(parseHostPort('127.0.0.1', 9999), { host: '127.0.0.1', port: 9999 });
    assert.deepEqual(parseHostPort(' plug.lan:10000 ', 9999), { host: 'plug.lan', port: 10000 });
    assert.throws(() => parseHostPort('127.0.0.1:70000', 9999), RangeError);
  });
});
