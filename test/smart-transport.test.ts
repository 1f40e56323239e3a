import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type SmartSimFleet,
  type SmartSimSpec,
  startSmartSimulators,
} from '../src/discovery/smart-simulator.js';
import type { Account } from '../src/smart/credentials.js';
import { SmartDevice } from '../src/smart/device.js';
import { probeSmart } from '../src/smart/discovery.js';
import { isSmartError } from '../src/smart/errors.js';
import { chooseTransport } from '../src/smart/tdp.js';
import { smartErrorCode } from './helpers/rejections.js';

// Ports 35000-35999 and addresses 127.35.0.0/16 belong to the smart-plug tests.
const DISCOVERY_PORT = 35002;
const HTTP_PORT = 35080;
const ACCOUNT: Account = { username: 'Owner@Example.com', password: 'correct horse' };
const TIMEOUT = 2_000;

const id = (n: number): string => `5A${String(n).padStart(38, '0')}`;

const specs: SmartSimSpec[] = [
  {
    address: '127.35.1.1',
    kind: 'klap',
    model: 'P110',
    deviceId: id(1),
    account: ACCOUNT,
    alias: 'Küche ☕',
  },
  {
    address: '127.35.1.2',
    kind: 'klap',
    model: 'P110',
    deviceId: id(2),
    account: ACCOUNT,
    emeterData: false,
  },
  { address: '127.35.1.3', kind: 'klap', model: 'P110', deviceId: id(3), account: 'default-tapo' },
  { address: '127.35.1.4', kind: 'klap', model: 'P110', deviceId: id(4), account: 'blank' },
  {
    address: '127.35.1.5',
    kind: 'klap',
    model: 'P110',
    deviceId: id(5),
    account: { username: 'x@y.z', password: 'other' },
  },
  {
    address: '127.35.1.6',
    kind: 'klap',
    model: 'P304M',
    deviceId: id(6),
    account: ACCOUNT,
    outlets: ['Desk', 'Lamp', 'TV'],
    emeterData: false,
    usagePower: false,
  },
  {
    address: '127.35.1.7',
    kind: 'iot-klap',
    klapVersion: 2,
    model: 'HS300',
    deviceId: id(7),
    account: ACCOUNT,
    outlets: ['a', 'b'],
  },
  {
    address: '127.35.1.8',
    kind: 'iot-klap',
    klapVersion: 1,
    model: 'HS110',
    deviceId: id(8),
    account: ACCOUNT,
  },
  {
    address: '127.35.1.9',
    kind: 'aes',
    loginVersion: 2,
    model: 'KP125M',
    deviceId: id(9),
    account: ACCOUNT,
    emeterData: false,
  },
  { address: '127.35.1.10', kind: 'aes', loginVersion: 1, model: 'P110', deviceId: id(10), account: ACCOUNT },
  {
    address: '127.35.1.11',
    kind: 'aes',
    loginVersion: 2,
    model: 'P110',
    deviceId: id(11),
    account: 'default-tapo',
  },
  {
    address: '127.35.1.12',
    kind: 'aes',
    loginVersion: 2,
    model: 'P110',
    deviceId: id(12),
    account: { username: 'a', password: 'b' },
  },
  {
    address: '127.35.1.13',
    kind: 'klap',
    model: 'P110',
    deviceId: id(13),
    account: ACCOUNT,
    faults: { thirdPartyCompat: true },
    advertise: 'TPAP',
  },
  {
    address: '127.35.1.14',
    kind: 'klap',
    model: 'P110',
    deviceId: id(14),
    account: ACCOUNT,
    sessionTimeoutS: 2,
  },
  {
    address: '127.35.1.15',
    kind: 'klap',
    model: 'P110',
    deviceId: id(15),
    account: ACCOUNT,
    faults: { closeConnection: true },
  },
  { address: '127.35.1.16', kind: 'klap', model: 'P110', deviceId: id(16), account: ACCOUNT },
  {
    address: '127.35.1.17',
    kind: 'klap',
    model: 'P110',
    deviceId: id(17),
    account: ACCOUNT,
    energyVersion: 1,
  },
];

let fleet: SmartSimFleet;
const devices: SmartDevice[] = [];

/** A client for the simulated device at `address`, as discovery would build it. */
async function connect(address: string, account: Account | null = ACCOUNT): Promise<SmartDevice> {
  const found = await probeSmart({
    broadcast: [],
    hosts: [address],
    port: DISCOVERY_PORT,
    timeoutMs: TIMEOUT,
  });
  const reply = found.replies[0]?.reply;
  assert.ok(reply, `no discovery reply from ${address}`);
  const choice = chooseTransport(reply);
  assert.notEqual(choice.kind, 'unsupported');
  if (choice.kind === 'unsupported') throw new Error('unsupported');
  const device = new SmartDevice({ host: address, httpPort: reply.httpPort, choice, account });
  devices.push(device);
  return device;
}

before(async () => {
  fleet = await startSmartSimulators({ discoveryPort: DISCOVERY_PORT, httpPort: HTTP_PORT, devices: specs });
});

after(async () => {
  for (const d of devices) d.close();
  await fleet.stop();
});

describe('port-20002 discovery against simulated plugs', () => {
  test('a broadcast round finds every plug once, with transport and HTTP port from its reply', async () => {
    const result = await probeSmart({
      broadcast: ['127.255.255.255'],
      hosts: [],
      port: DISCOVERY_PORT,
      timeoutMs: 500,
    });
    assert.equal(result.replies.length, specs.length);
    const p110 = result.replies.find((r) => r.host === '127.35.1.1');
    assert.equal(p110?.reply.httpPort, HTTP_PORT);
    assert.equal(p110?.reply.model, 'P110');
    const hs300 = result.replies.find((r) => r.host === '127.35.1.7');
    assert.equal(hs300?.reply.newKlap, true);
    assert.deepEqual(hs300 && chooseTransport(hs300.reply), { kind: 'klap', payload: 'iot' });
    const kp125m = result.replies.find((r) => r.host === '127.35.1.9');
    assert.deepEqual(kp125m && chooseTransport(kp125m.reply), { kind: 'aes', loginVersion: 2 });
    assert.equal(result.replies.find((r) => r.host === '127.35.1.13')?.reply.encryption, 'TPAP');
  });
});

describe('KLAP', () => {
  test('v2 with the account: identity, alias decoded, every value exact, one handshake for many polls', async () => {
    const device = await connect('127.35.1.1');
    const identity = await device.identify(TIMEOUT);
    assert.equal(identity.deviceId, id(1));
    assert.equal(identity.alias, 'Küche ☕');
    assert.equal(identity.hasEmeter, true);
    fleet.setValues(id(1), {
      powerMw: 1003,
      voltageMv: 121215,
      currentMa: 33,
      monthWh: 971,
      sinceBootWh: 500,
    });
    for (let i = 0; i < 3; i++) {
      const answer = await device.readChannel(null, TIMEOUT);
      assert.ok(answer.ok && answer.kind === 'smart');
      assert.equal(answer.deviceId, id(1));
      assert.deepEqual(
        { ...answer.energy, localTime: null },
        { powerMw: 1003, voltageMv: 121215, currentMa: 33, totalWh: 971, energyWh: 500, localTime: null },
      );
    }
    assert.equal(fleet.stats(id(1)).handshakes, 1);
    assert.deepEqual(device.transport.matched(), { transport: 'klap', version: 2, credential: 'account' });
  });

  test('a plug without get_emeter_data gives power and energy, voltage and current null', async () => {
    const device = await connect('127.35.1.2');
    fleet.setValues(id(2), { powerMw: 74116, monthWh: 1421 });
    const answer = await device.readChannel(null, TIMEOUT);
    assert.ok(answer.ok && answer.kind === 'smart');
    assert.deepEqual(
      [answer.energy.powerMw, answer.energy.voltageMv, answer.energy.currentMa, answer.energy.totalWh],
      [74116, null, null, 1421],
    );
    // The missing method is not asked again.
    const before = fleet.stats(id(2)).requests;
    await device.readChannel(null, TIMEOUT);
    assert.equal(fleet.stats(id(2)).requests - before, 1);
  });

  test('energy_monitoring version 1 asks get_energy_usage only', async () => {
    const device = await connect('127.35.1.17');
    const answer = await device.readChannel(null, TIMEOUT);
    assert.ok(answer.ok && answer.kind === 'smart' && answer.energy.voltageMv === null);
  });

  test('the built-in TAPO pair and the blank pair are found without configuration', async () => {
    const tapo = await connect('127.35.1.3', null);
    assert.ok((await tapo.readChannel(null, TIMEOUT)).ok);
    assert.equal(tapo.transport.matched()?.credential, 'default-tapo');
    const blank = await connect('127.35.1.4', ACCOUNT);
    assert.ok((await blank.readChannel(null, TIMEOUT)).ok);
    assert.equal(blank.transport.matched()?.credential, 'blank');
  });

  test('a wrong account fails as "auth" and the device never gets a client proof', async () => {
    const device = await connect('127.35.1.5');
    assert.equal(await smartErrorCode(device.identify(TIMEOUT)), 'auth');
    assert.equal(fleet.stats(id(5)).requests, 0);
    const err = await device.identify(TIMEOUT).catch((e: unknown) => e);
    assert.ok(
      err instanceof Error &&
        !err.message.includes(ACCOUNT.password) &&
        !err.message.includes(ACCOUNT.username),
    );
  });

  test('a 403 on handshake1 says to enable Third-Party Compatibility', async () => {
    const device = await connect('127.35.1.13');
    const err = await device.identify(TIMEOUT).catch((e: unknown) => e);
    assert.ok(isSmartError(err) && err.code === 'third-party-compat');
    assert.match(err.message, /Third-Party Compatibility/);
  });

  test('a session the device dropped (403) is replaced by one fresh handshake and the poll still succeeds', async () => {
    const device = await connect('127.35.1.16');
    assert.ok((await device.readChannel(null, TIMEOUT)).ok);
    fleet.expireSessions(id(16));
    const answer = await device.readChannel(null, TIMEOUT);
    assert.ok(answer.ok && answer.deviceId === id(16));
    assert.equal(device.transport.stats().renewedAfterRejection, 1);
    assert.equal(fleet.stats(id(16)).handshakes, 2);
  });

  test('a session is renewed before the device’s TIMEOUT, not after a 403', async () => {
    const device = await connect('127.35.1.14');
    assert.ok((await device.readChannel(null, TIMEOUT)).ok);
    await sleep(1_100); // TIMEOUT=2 s: the session is used for half of it
    assert.ok((await device.readChannel(null, TIMEOUT)).ok);
    assert.equal(device.transport.stats().renewedBeforeExpiry, 1);
    assert.equal(fleet.stats(id(14)).rejectedSessions, 0);
  });

  test('a device that closes the connection after every answer keeps answering', async () => {
    const device = await connect('127.35.1.15');
    for (let i = 0; i < 4; i++) assert.ok((await device.readChannel(null, TIMEOUT)).ok);
    assert.equal(fleet.stats(id(15)).handshakes, 1);
  });

  test('a device that hangs fails by the deadline as a timeout; it works again when it answers', async () => {
    const device = await connect('127.35.1.16');
    await device.identify(TIMEOUT);
    fleet.setFaults(id(16), { hang: true });
    assert.equal(await smartErrorCode(device.readChannel(null, 300)), 'timeout');
    fleet.setFaults(id(16), { hang: false });
    assert.ok((await device.readChannel(null, TIMEOUT)).ok);
  });

  test('garbage and short bodies are protocol errors, not readings', async () => {
    const device = await connect('127.35.1.16');
    await device.identify(TIMEOUT);
    fleet.setFaults(id(16), { body: 'garbage' });
    assert.equal(await smartErrorCode(device.readChannel(null, TIMEOUT)), 'protocol');
    fleet.setFaults(id(16), { body: 'short' });
    assert.equal(await smartErrorCode(device.readChannel(null, TIMEOUT)), 'protocol');
    fleet.setFaults(id(16), { body: null });
    assert.ok((await device.readChannel(null, TIMEOUT)).ok);
  });

  test('a device that rejects batches is asked one method at a time and still gives every value', async () => {
    const device = await connect('127.35.1.16');
    await device.identify(TIMEOUT);
    fleet.setFaults(id(16), { rejectBatches: true });
    fleet.setValues(id(16), { powerMw: 5000, voltageMv: 229000, currentMa: 22, monthWh: 7 });
    const answer = await device.readChannel(null, TIMEOUT);
    assert.ok(answer.ok && answer.kind === 'smart');
    assert.deepEqual(
      [answer.energy.powerMw, answer.energy.voltageMv, answer.energy.currentMa, answer.energy.totalWh],
      [5000, 229000, 22, 7],
    );
    assert.equal(device.protocol.batches, false);
    fleet.setFaults(id(16), { rejectBatches: false });
  });

  test('reboot keeps the month counter; month rollover takes it back to 0', async () => {
    const device = await connect('127.35.1.1');
    fleet.setValues(id(1), { monthWh: 900, sinceBootWh: 300 });
    fleet.reboot(id(1));
    const afterReboot = await device.readChannel(null, TIMEOUT);
    assert.ok(afterReboot.ok && afterReboot.kind === 'smart');
    assert.deepEqual([afterReboot.energy.totalWh, afterReboot.energy.energyWh], [900, 0]);
    fleet.monthRollover(id(1));
    const afterRollover = await device.readChannel(null, TIMEOUT);
    assert.ok(afterRollover.ok && afterRollover.kind === 'smart');
    assert.equal(afterRollover.energy.totalWh, 0);
    assert.match(afterRollover.energy.localTime ?? '', /^\d{4}-\d{2}-01 /);
  });
});

describe('strips', () => {
  test('a P304M-like strip: outlets are the channels (never the parent), power from get_current_power', async () => {
    const device = await connect('127.35.1.6');
    const identity = await device.identify(TIMEOUT);
    assert.equal(identity.hasEmeter, false);
    assert.deepEqual(
      identity.outlets.map((o) => o.alias),
      ['Desk', 'Lamp', 'TV'],
    );
    const outlet = identity.outlets[2]?.id ?? '';
    fleet.setValues(outlet, { powerMw: 38_617, monthWh: 23 });
    const answer = await device.readChannel(outlet, TIMEOUT);
    assert.ok(answer.ok && answer.kind === 'smart');
    assert.ok(answer.childIds.includes(outlet));
    assert.deepEqual(
      [answer.energy.powerMw, answer.energy.voltageMv, answer.energy.totalWh],
      [38_000, null, 23],
    );
  });

  test('an HS300 hw 2.0 over KLAP v2 ("new_klap") answers the legacy JSON, outlets as over 9999', async () => {
    const device = await connect('127.35.1.7');
    const identity = await device.identify(TIMEOUT);
    assert.equal(identity.payload, 'iot');
    assert.deepEqual(
      identity.outlets.map((o) => o.id),
      [`${id(7)}00`, `${id(7)}01`],
    );
    assert.deepEqual(device.transport.matched(), { transport: 'klap', version: 2, credential: 'account' });
    fleet.setValues(`${id(7)}01`, { powerMw: 4321, voltageMv: 120_500, currentMa: 40, sinceBootWh: 77 });
    const answer = await device.readChannel(`${id(7)}01`, TIMEOUT);
    assert.ok(answer.ok && answer.kind === 'iot');
    assert.deepEqual((answer.reply as Record<string, unknown>)['emeter'], {
      get_realtime: {
        err_code: 0,
        power_mw: 4321,
        voltage_mv: 120_500,
        current_ma: 40,
        total_wh: 77,
        slot_id: 1,
      },
    });
    assert.equal(answer.deviceId, id(7));
  });

  test('an IOT plug over KLAP v1 is identified by its legacy sysinfo', async () => {
    const device = await connect('127.35.1.8');
    const identity = await device.identify(TIMEOUT);
    assert.equal(identity.deviceId, id(8));
    assert.equal(identity.hasEmeter, true);
    assert.equal(device.transport.matched()?.version, 1);
  });
});

describe('AES securePassthrough', () => {
  test('login version 2 (password2): values read, session reused', async () => {
    const device = await connect('127.35.1.9');
    fleet.setValues(id(9), { powerMw: 0, monthWh: 0 });
    const answer = await device.readChannel(null, TIMEOUT);
    assert.ok(answer.ok && answer.kind === 'smart');
    assert.deepEqual([answer.energy.powerMw, answer.energy.voltageMv, answer.energy.totalWh], [0, null, 0]);
    await device.readChannel(null, TIMEOUT);
    assert.equal(fleet.stats(id(9)).handshakes, 1);
    assert.deepEqual(device.transport.matched(), { transport: 'aes', version: 2, credential: 'account' });
  });

  test('login version 1 (password) with get_emeter_data', async () => {
    const device = await connect('127.35.1.10');
    fleet.setValues(id(10), { powerMw: 2500, voltageMv: 231_000, currentMa: 11, monthWh: 3 });
    const answer = await device.readChannel(null, TIMEOUT);
    assert.ok(answer.ok && answer.kind === 'smart');
    assert.deepEqual(
      [answer.energy.powerMw, answer.energy.voltageMv, answer.energy.currentMa],
      [2500, 231_000, 11],
    );
  });

  test('the built-in TAPO pair after the account is refused; a wrong account is "auth"', async () => {
    const tapo = await connect('127.35.1.11');
    assert.ok((await tapo.readChannel(null, TIMEOUT)).ok);
    assert.equal(tapo.transport.matched()?.credential, 'default-tapo');
    const wrong = await connect('127.35.1.12');
    assert.equal(await smartErrorCode(wrong.identify(TIMEOUT)), 'auth');
  });

  test('a session the device forgot is replaced and the poll succeeds', async () => {
    const device = await connect('127.35.1.10');
    assert.ok((await device.readChannel(null, TIMEOUT)).ok);
    fleet.expireSessions(id(10));
    assert.ok((await device.readChannel(null, TIMEOUT)).ok);
    assert.equal(device.transport.stats().renewedAfterRejection, 1);
  });
});
