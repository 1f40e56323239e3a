/**
 * Discovery and polling against plugs that answer, but oddly: from several addresses, from another
 * address than the one asked, with implausible readings. Real sockets on 127.31.7-9.x; ports
 * 31200-31299 belong to this file.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, test } from 'node:test';
import { Discovery } from '../src/discovery/discovery.js';
import { type KasaSysinfo, nestsDeeperThan, parseReply, parseSysinfo, probe } from '../src/discovery/kasa.js';
import { DeviceRegistry } from '../src/discovery/registry.js';
import { Poller } from '../src/poller/poller.js';
import { captureLogger } from './helpers/capture-logger.js';
import { decrypt, encrypt, plugSysinfo, startFakePlug } from './helpers/fake-plug.js';
import { CollectingSink, startSimulators } from './helpers/simulator.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function bound(address: string, port: number): Promise<Socket> {
  const socket = createSocket('udp4');
  cleanups.push(() => {
    socket.close();
  });
  return new Promise((resolve) => socket.bind(port, address, () => resolve(socket)));
}

describe('static-host discovery', () => {
  test('a host answering from two addresses does not end the round before the other hosts answered', async () => {
    const port = 31201;
    const id = 'ID9G000000000000000000000000000000000007';
    // Host 1 answers each request twice, from its own address and from a second interface.
    const host = await bound('127.31.7.1', port);
    const second = await bound('127.31.7.3', port);
    host.on('message', (msg, rinfo) => {
      assert.match(decrypt(msg), /get_sysinfo/);
      const reply = encrypt(JSON.stringify({ system: { get_sysinfo: plugSysinfo(id, 'Two-faced') } }));
      host.send(reply, rinfo.port, rinfo.address);
      second.send(reply, rinfo.port, rinfo.address);
    });
    // Host 2 is a real simulated plug that takes a moment to answer.
    const fleet = await startSimulators({
      port,
      devices: [
        {
          model: 'hs110v2',
          address: '127.31.7.2',
          deviceId: 'ID9H000000000000000000000000000000000008',
          responseDelay: 200,
        },
      ],
    });
    cleanups.push(() => fleet.stop());

    const result = await probe({
      broadcast: [],
      hosts: [
        { host: '127.31.7.1', port },
        { host: '127.31.7.2', port },
      ],
      port,
      timeoutMs: 5_000,
      receiveBufferBytes: 1 << 20,
    });
    const found = new Set(result.replies.map((r) => r.sysinfo.deviceId));
    assert.deepEqual([...found].sort(), [id, 'ID9H000000000000000000000000000000000008']);
  });
});

describe('a plug that answers is online', () => {
  test('readings rejected as implausible are counted and logged once, the plug stays online through polls and rounds', async () => {
    const port = 31211;
    const id = 'ID9I000000000000000000000000000000000009';
    const fleet = await startSimulators({
      port,
      devices: [{ model: 'hs110', address: '127.31.8.1', deviceId: id, alias: 'Negative' }],
    });
    cleanups.push(() => fleet.stop());
    fleet.setRealtime(id, { power: -5, voltage: 230, current: 0.1, total: 1 });
    const { logger, lines } = captureLogger('info');
    const discovery = new Discovery(
      {
        broadcast: [],
        port,
        intervalMs: 60_000,
        timeoutMs: 1_000,
        hosts: [`127.31.8.1:${port}`],
        offlineTolerance: 2,
        receiveBufferBytes: 1 << 20,
      },
      logger,
    );
    cleanups.push(() => discovery.stop());
    const offline: string[] = [];
    discovery.registry.on('offline', (d) => offline.push(d.id));
    const poller = new Poller(
      discovery.registry,
      new CollectingSink(),
      { intervalMs: 60_000, timeoutMs: 1_000, concurrency: 4, transport: 'udp' },
      logger,
    );
    cleanups.push(() => poller.stop());

    for (let round = 0; round < 3; round++) {
      await discovery.runRound();
      for (let tick = 0; tick < 3; tick++) await poller.tick();
    }
    assert.deepEqual(offline, [], 'never offline');
    assert.equal(discovery.registry.get(id)?.state.kind, 'online');
    assert.equal(poller.stats().rejected.implausible, 9, 'every rejected reading counted');
    const logged = lines().filter((l) => l.msg?.startsWith('poll failed') && l['reason'] === 'implausible');
    assert.equal(logged.length, 1, 'logged once');
    assert.ok(lines().every((l) => l.msg !== 'device back online'));
  });

  test('a static host whose replies come from another address is polled where it is asked, decided and logged once', async () => {
    const port = 31221;
    const id = 'ID9J000000000000000000000000000000000010';
    const fake = await startFakePlug({
      address: '127.31.9.1',
      port,
      replyFrom: '127.31.9.2',
      sysinfo: plugSysinfo(id, 'Other address'),
    });
    cleanups.push(() => fake.stop());
    const { logger, lines } = captureLogger('info');
    const discovery = new Discovery(
      {
        broadcast: [],
        port,
        intervalMs: 60_000,
        timeoutMs: 1_000,
        hosts: [`127.31.9.1:${port}`],
        offlineTolerance: 2,
        receiveBufferBytes: 1 << 20,
      },
      logger,
    );
    cleanups.push(() => discovery.stop());
    const flaps: string[] = [];
    discovery.registry.on('offline', (d) => flaps.push(`offline ${d.id}`));
    discovery.registry.on('online', (d) => flaps.push(`online ${d.id}`));
    discovery.registry.on('moved', (m) => flaps.push(`moved ${m.to.host}`));
    const sink = new CollectingSink();
    const poller = new Poller(
      discovery.registry,
      sink,
      { intervalMs: 60_000, timeoutMs: 500, concurrency: 4, transport: 'udp' },
      logger,
    );
    cleanups.push(() => poller.stop());

    for (let round = 0; round < 3; round++) {
      await discovery.runRound();
      for (let tick = 0; tick < 3; tick++) await poller.tick();
    }
    assert.deepEqual(flaps, []);
    assert.equal(discovery.registry.get(id)?.host, '127.31.9.1', 'polled at the address asked');
    assert.equal(sink.of(id).length, 9, 'every poll gave a reading');
    const noted = lines().filter((l) => /another address/.test(l.msg ?? ''));
    assert.equal(noted.length, 1, JSON.stringify(noted));
  });
});

describe('identity claims', () => {
  function sysinfo(id: string, alias: string): KasaSysinfo {
    const parsed = parseSysinfo(plugSysinfo(id, alias));
    assert.ok(parsed);
    return parsed;
  }

  test('a lost discovery reply does not hand a polled device to another address claiming its id', () => {
    const { logger, lines } = captureLogger('info');
    const registry = new DeviceRegistry({ offlineTolerance: 3 }, logger);
    const id = 'ID9K000000000000000000000000000000000011';
    const X = { host: '127.31.10.1', port: 9999 };
    const Y = { host: '127.31.10.2', port: 9999 };
    registry.observe({ ...X, sysinfo: sysinfo(id, 'Real') });
    registry.endRound(new Set([id]));
    registry.recordPoll(id, true);
    // This round only the impostor's reply arrived.
    registry.observe({ ...Y, sysinfo: sysinfo(id, 'Impostor') });
    registry.endRound(new Set([id]));
    assert.equal(registry.get(id)?.host, X.host, 'not moved on a claim alone');
    assert.equal(registry.get(id)?.alias, 'Real');
    // The next poll at the known address answers: a conflict, reported once, the known one kept.
    registry.recordPoll(id, true);
    assert.equal(registry.get(id)?.host, X.host);
    assert.equal(registry.conflicts().length, 1);
    const warned = lines().filter((l) => l.level >= 40 && /conflict/.test(l.msg ?? ''));
    assert.equal(warned.length, 1);
    assert.match(warned[0]?.msg ?? '', /127\.31\.10\.1:9999.*127\.31\.10\.2:9999/);
  });

  test('when the known address stops answering, the other claim wins: the device moved', () => {
    const registry = new DeviceRegistry({ offlineTolerance: 3 }, captureLogger('warn').logger);
    const id = 'ID9L000000000000000000000000000000000012';
    registry.observe({ host: '127.31.10.3', port: 9999, sysinfo: sysinfo(id, 'Plug') });
    registry.endRound(new Set([id]));
    registry.recordPoll(id, true);
    registry.observe({ host: '127.31.10.4', port: 9999, sysinfo: sysinfo(id, 'Plug') });
    registry.endRound(new Set([id]));
    registry.recordPoll(id, false);
    assert.equal(registry.get(id)?.host, '127.31.10.4');
    assert.deepEqual(registry.conflicts(), []);
  });
});

describe('device replies are untrusted', () => {
  test('nesting deeper than the bound is a malformed reply, refused before parsing', () => {
    const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    assert.equal(nestsDeeperThan(deep, 16), true);
    assert.deepEqual(parseReply(deep), { ok: false, detail: 'reply nests deeper than 16 levels' });
    // Brackets inside strings do not count; an ordinary strip sysinfo passes.
    assert.equal(nestsDeeperThan(`{"alias":"${'['.repeat(100)}\\"{{{"}`, 16), false);
    const strip = { system: { get_sysinfo: { children: [{ id: '00', next_action: { type: -1 } }] } } };
    assert.equal(parseReply(JSON.stringify(strip)).ok, true);
  });
});
