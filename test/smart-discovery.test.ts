/**
 * Discovery rounds with newer plugs: static hosts that answer neither discovery are asked for KLAP
 * directly; an account failure is one warning per episode, listed until it works again.
 * Ports 35302 (20002-style), 35380 (HTTP), 35399 (legacy, nobody); addresses 127.35.7.x.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Discovery, legacyMac } from '../src/discovery/discovery.js';
import { probe } from '../src/discovery/kasa.js';
import { type SmartSimFleet, startSmartSimulators } from '../src/discovery/smart-simulator.js';
import { Poller } from '../src/poller/poller.js';
import { captureLogger } from './helpers/capture-logger.js';
import { CollectingSink, startSimulators } from './helpers/simulator.js';

const ACCOUNT = { username: 'Owner@Example.com', password: 'pw' };
const id = (n: number): string => `5D${String(n).padStart(38, '0')}`;
let fleet: SmartSimFleet;

before(async () => {
  fleet = await startSmartSimulators({
    discoveryPort: 35302,
    httpPort: 35380,
    devices: [
      {
        address: '127.35.7.1',
        kind: 'klap',
        model: 'P110',
        deviceId: id(1),
        account: ACCOUNT,
        faults: { silentDiscovery: true },
      },
      {
        address: '127.35.7.2',
        kind: 'iot-klap',
        model: 'HS110',
        deviceId: id(2),
        account: ACCOUNT,
        faults: { silentDiscovery: true },
      },
      {
        address: '127.35.7.3',
        kind: 'klap',
        model: 'P110',
        deviceId: id(3),
        account: { username: 'other@x.y', password: 'z' },
      },
      {
        address: '127.35.7.4',
        kind: 'klap',
        model: 'P110',
        deviceId: id(4),
        account: ACCOUNT,
        values: { powerMw: 7_000, monthWh: 5 },
      },
    ],
  });
});
after(() => fleet.stop());

function discovery(hosts: string[], broadcast: string[], logger = captureLogger('info').logger): Discovery {
  return new Discovery(
    {
      broadcast,
      port: 35399,
      intervalMs: 3_600_000,
      timeoutMs: 400,
      hosts,
      offlineTolerance: 3,
      receiveBufferBytes: 1 << 20,
      smartPort: 35302,
      account: ACCOUNT,
      smartRequestTimeoutMs: 2_000,
      directKlapPort: 35380,
    },
    logger,
  );
}

describe('newer plugs in discovery rounds', () => {
  it('a static host silent on both discovery ports is found by a direct KLAP handshake (smart, then legacy JSON)', async () => {
    const d = discovery(['127.35.7.1', '127.35.7.2'], []);
    try {
      await d.runRound();
      const ids = d.registry
        .snapshot()
        .map((s) => s.id)
        .sort();
      assert.deepEqual(ids, [id(1), id(2)]);
      assert.deepEqual(
        d.registry
          .pollTargets()
          .flatMap((t) => t.channels.map((c) => c.channel))
          .sort(),
        [id(1), id(2)],
      );
    } finally {
      await d.stop();
    }
  });

  it('a plug on another account: one warning for many rounds, listed with its state, retried less and less', async () => {
    const capture = captureLogger('info');
    const d = discovery([], ['127.255.255.255'], capture.logger);
    try {
      for (let i = 0; i < 4; i++) await d.runRound();
      const warnings = capture
        .lines()
        .filter((l) => l.level === 40 && /authentication failed/.test(String(l.msg)));
      assert.equal(warnings.length, 1);
      assert.match(String(warnings[0]?.msg), /127\.35\.7\.3/);
      const listed = d.stats().smartPlugs.find((p) => p.host === '127.35.7.3');
      assert.equal(listed?.problem, 'authentication failed');
      assert.equal(
        d.registry.snapshot().some((s) => s.id === id(3)),
        false,
      );
      // Backed off: the device saw one handshake, not one per round.
      assert.equal(fleet.stats(id(3)).handshakes, 1);
    } finally {
      await d.stop();
    }
  });

  it('a plug whose account changes while polled: no readings from then on, one warning, polls back off', async () => {
    const capture = captureLogger('info');
    const d = discovery(['127.35.7.4'], [], capture.logger);
    const sink = new CollectingSink();
    const poller = new Poller(
      d.registry,
      sink,
      { intervalMs: 1_000, timeoutMs: 1_000, concurrency: 4, transport: 'udp', backoffAfter: 2 },
      capture.logger,
    );
    try {
      await d.runRound();
      await poller.tick();
      assert.deepEqual(
        sink.of(id(4)).map((r) => [r.powerMw, r.voltageMv, r.totalWh]),
        [[7_000, 230_100, 5]],
      );
      fleet.setAccount(id(4), { username: 'new-owner@example.com', password: 'other' });
      for (let i = 0; i < 6; i++) await poller.tick();
      assert.equal(sink.of(id(4)).length, 1, 'nothing recorded after the account stopped working');
      const handshakesWhileFailing = fleet.stats(id(4)).handshakes;
      assert.ok(handshakesWhileFailing <= 4, `backed off (handshakes: ${handshakesWhileFailing})`);
      const warnings = capture
        .lines()
        .filter((l) => l.level === 40 && /authentication failed/.test(String(l.msg)));
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.equal(
        d.stats().smartPlugs.find((p) => p.host === '127.35.7.4')?.problem,
        'authentication failed',
      );
    } finally {
      await poller.stop();
      await d.stop();
    }
  });

  it('a plug that answered on 9999 and, after a firmware update, only on 20002: the warning says so and what to do', async () => {
    const legacy = await startSimulators({
      port: 35398,
      devices: [{ model: 'hs110v2', address: '127.35.7.20', deviceId: id(20), alias: 'Updated plug' }],
    });
    const capture = captureLogger('info');
    const make = (): Discovery =>
      new Discovery(
        {
          broadcast: ['127.255.255.255'],
          port: 35398,
          intervalMs: 3_600_000,
          timeoutMs: 400,
          hosts: [],
          offlineTolerance: 3,
          receiveBufferBytes: 1 << 20,
          smartPort: 35302,
          account: null,
          directKlapPort: 35380,
        },
        capture.logger,
      );
    const d = make();
    let updated: SmartSimFleet | null = null;
    try {
      await d.runRound();
      assert.ok(d.registry.get(id(20)), 'the legacy plug was found');
      const heard = await probe({
        broadcast: [],
        hosts: [{ host: '127.35.7.20', port: 35398 }],
        port: 35398,
        timeoutMs: 1_000,
        receiveBufferBytes: 1 << 20,
      });
      const reply = heard.replies[0];
      const mac = reply === undefined ? null : legacyMac(reply.sysinfo);
      assert.ok(mac !== null);
      await legacy.stop();
      // The same plug (same MAC) now answers only the newer protocol, and no account is configured.
      updated = await startSmartSimulators({
        discoveryPort: 35312,
        httpPort: 35381,
        devices: [{ address: '127.35.7.21', kind: 'klap', model: 'HS110', mac, account: ACCOUNT }],
      });
      d.reconfigure({ ...d.options, smartPort: 35312 });
      await d.runRound();
      const warning = capture
        .lines()
        .find((l) => l.level === 40 && /127\.35\.7\.21.*authentication failed/.test(String(l.msg)));
      assert.match(
        String(warning?.msg),
        /used to answer on port 9999.*firmware update.*add your TP-Link account/,
      );
    } finally {
      await d.stop();
      await updated?.stop();
      await legacy.stop().catch(() => {});
    }
  });
});
