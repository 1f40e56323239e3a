import assert from 'node:assert/strict';
import {
  constants,
  createHash,
  generateKeyPairSync,
  privateEncrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { decryptSessionKey, loginParams, unpadPkcs1v15 } from '../src/smart/aes-crypto.js';
import { EnergyMethods, mapEnergy } from '../src/smart/energy.js';
import {
  authHash,
  clientProof,
  KlapSession,
  type KlapVersion,
  serverProof,
} from '../src/smart/klap-crypto.js';
import { type CallOutcome, decodeNickname } from '../src/smart/protocol.js';
import {
  chooseTransport,
  crc32,
  crcValid,
  decodeHeader,
  discoveryPublicKey,
  encodeProbe,
  encodeTdp,
  parseReply,
} from '../src/smart/tdp.js';

// Known answers computed by the reference implementation on fixed inputs (data, not code).
const vectors = JSON.parse(
  readFileSync(new URL('../../test/fixtures/klap-vectors.json', import.meta.url), 'utf8'),
) as Record<string, unknown> & Record<'v1' | 'v2', Record<string, string | number>>;
const sha1Hex = (s: string): string => createHash('sha1').update(s).digest('hex');
const hex = (s: unknown): Buffer => Buffer.from(String(s), 'hex');
const localSeed = hex(vectors['local_seed']);
const remoteSeed = hex(vectors['remote_seed']);
const user = String(vectors['username']);
const pass = String(vectors['password']);

describe('KLAP primitives match the known answers', () => {
  for (const version of [1, 2] as KlapVersion[]) {
    const v = vectors[`v${version}`];
    test(`v${version}: auth hash, both proofs, session keys, seq and the first request body`, () => {
      const auth = authHash(version, user, pass);
      assert.equal(auth.toString('hex'), v['auth_hash']);
      assert.equal(
        serverProof(version, localSeed, remoteSeed, auth).toString('hex'),
        v['handshake1_server_hash'],
      );
      assert.equal(
        clientProof(version, localSeed, remoteSeed, auth).toString('hex'),
        v['handshake2_payload'],
      );
      const session = new KlapSession(localSeed, remoteSeed, auth);
      assert.equal(session.key.toString('hex'), v['key']);
      assert.equal(session.iv12.toString('hex'), v['iv12']);
      assert.equal(session.seq0, v['seq0']);
      assert.equal(session.sig.toString('hex'), v['sig28']);
      const { seq, body } = session.encrypt(String(vectors['request']));
      assert.equal(seq, v['first_request_seq']);
      assert.equal(body.toString('hex'), v['first_request_body']);
      const back = new KlapSession(localSeed, remoteSeed, auth).decrypt(seq, body);
      assert.equal(back.plaintext.toString('utf8'), vectors['request']);
      assert.equal(back.signed, true);
    });
  }

  test('the blank and built-in credentials hash to the known values', () => {
    assert.equal(authHash(1, '', '').toString('hex'), vectors['blank_v1']);
    assert.equal(authHash(2, '', '').toString('hex'), vectors['blank_v2']);
    assert.equal(authHash(1, 'kasa@tp-link.net', 'kasaSetup').toString('hex'), vectors['default_KASA_v1']);
    assert.equal(authHash(2, 'kasa@tp-link.net', 'kasaSetup').toString('hex'), vectors['default_KASA_v2']);
    assert.equal(authHash(1, 'test@tp-link.net', 'test').toString('hex'), vectors['default_TAPO_v1']);
    assert.equal(authHash(2, 'test@tp-link.net', 'test').toString('hex'), vectors['default_TAPO_v2']);
  });

  test('the e-mail is used exactly as written: another case is another account', () => {
    assert.notDeepEqual(authHash(2, user.toUpperCase(), pass), authHash(2, user, pass));
  });

  test('a session refuses to wrap its signed 32-bit counter and asks to be renewed', () => {
    const session = new KlapSession(localSeed, remoteSeed, authHash(2, user, pass));
    // Walk the counter to the edge without 2^31 encryptions: encrypt() reads the private counter.
    Object.defineProperty(session, 'exhausted', { get: () => true });
    assert.throws(() => session.encrypt('{}'), RangeError);
  });

  test('a body that is not a signature and whole blocks is refused, not decrypted', () => {
    const session = new KlapSession(localSeed, remoteSeed, authHash(2, user, pass));
    assert.throws(() => session.decrypt(1, Buffer.alloc(20)), RangeError);
    assert.throws(() => session.decrypt(1, Buffer.alloc(32 + 17)), RangeError);
  });
});

describe('the port-20002 discovery packet', () => {
  test('the probe has the documented header, a valid CRC and the RSA key in its JSON', async () => {
    const probe = encodeProbe(await discoveryPublicKey());
    const header = decodeHeader(probe);
    assert.ok(header !== null);
    assert.deepEqual([header.version, header.opCode, header.flags], [2, 1, 0x11]);
    assert.equal(header.msgSize, probe.length - 16);
    assert.equal(probe.readUInt8(7), 0);
    assert.ok(crcValid(probe));
    const json = JSON.parse(probe.subarray(16).toString('utf8')) as { params: { rsa_key: string } };
    assert.match(json.params.rsa_key, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    // The reference probe with a 2048-bit key is 501 bytes (msg_size 485).
    assert.equal(probe.length, 501);
  });

  test('CRC-32 is zlib’s', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  const reply = (result: unknown): Buffer =>
    encodeTdp(Buffer.from(JSON.stringify({ error_code: 0, result }), 'utf8'), 1, 0);

  test('a KLAP reply gives model, MAC, transport and the advertised HTTP port', () => {
    const parsed = parseReply(
      reply({
        device_id: 'A'.repeat(32),
        device_model: 'P110(EU)',
        device_type: 'SMART.TAPOPLUG',
        mac: '9C-53-22-00-00-01',
        mgt_encrypt_schm: { encrypt_type: 'KLAP', http_port: 8080, is_support_https: false, lv: 2 },
      }),
    );
    assert.ok(parsed !== null);
    assert.equal(parsed.model, 'P110');
    assert.equal(parsed.httpPort, 8080);
    assert.deepEqual(chooseTransport(parsed), { kind: 'klap', payload: 'smart' });
  });

  test('AES with lv 2, IOT new_klap, TPAP and HTTPS-only are told apart', () => {
    const base = { device_model: 'X(US)', mac: '00-00-00-00-00-00' };
    const aes = parseReply(
      reply({ ...base, device_type: 'SMART.KASAPLUG', mgt_encrypt_schm: { encrypt_type: 'AES', lv: 2 } }),
    );
    assert.deepEqual(aes && chooseTransport(aes), { kind: 'aes', loginVersion: 2 });
    assert.equal(aes?.httpPort, 80);
    const iot = parseReply(
      reply({
        ...base,
        device_type: 'IOT.SMARTPLUGSWITCH',
        mgt_encrypt_schm: { encrypt_type: 'KLAP', lv: 2, new_klap: 1 },
      }),
    );
    assert.deepEqual(iot && chooseTransport(iot), { kind: 'klap', payload: 'iot' });
    assert.equal(iot?.newKlap, true);
    const tpap = parseReply(
      reply({ ...base, device_type: 'SMART.TAPOPLUG', mgt_encrypt_schm: { encrypt_type: 'TPAP' } }),
    );
    assert.deepEqual(tpap && chooseTransport(tpap), { kind: 'klap', payload: 'smart' });
    const https = parseReply(
      reply({
        ...base,
        device_type: 'SMART.TAPOPLUG',
        mgt_encrypt_schm: { encrypt_type: 'AES', is_support_https: true },
      }),
    );
    assert.equal(https && chooseTransport(https).kind, 'unsupported');
    const other = parseReply(
      reply({ ...base, device_type: 'SMART.IPCAMERA', mgt_encrypt_schm: { encrypt_type: 'XYZ' } }),
    );
    assert.equal(other && chooseTransport(other).kind, 'unsupported');
  });

  test('untrusted replies: garbage, short, wrong version, error codes and wrong types give null', () => {
    assert.equal(parseReply(Buffer.alloc(0)), null);
    assert.equal(parseReply(Buffer.alloc(16)), null);
    assert.equal(parseReply(randomBytes(300)), null);
    const good = reply({ device_model: 'P110(EU)', device_type: 'SMART.TAPOPLUG' });
    const v3 = Buffer.from(good);
    v3.writeUInt8(3, 0);
    assert.equal(parseReply(v3), null);
    assert.equal(parseReply(Buffer.concat([good.subarray(0, 16), Buffer.from('{"error_code":-1}')])), null);
    assert.equal(parseReply(reply({ device_model: 42, device_type: 'SMART.TAPOPLUG' })), null);
    assert.equal(parseReply(reply({ device_model: 'x'.repeat(1000), device_type: 'SMART.TAPOPLUG' })), null);
    assert.equal(parseReply(Buffer.concat([good.subarray(0, 16), Buffer.alloc(20_000, 0x20)])), null);
    // A bad port falls back to the default instead of being trusted.
    const bad = parseReply(
      reply({
        device_model: 'P110',
        device_type: 'SMART.TAPOPLUG',
        mgt_encrypt_schm: { encrypt_type: 'KLAP', http_port: 70000 },
      }),
    );
    assert.equal(bad?.httpPort, 80);
  });
});

describe('AES securePassthrough primitives', () => {
  test('the session key is recovered with manual PKCS#1 v1.5 unpadding (Node 20 refuses that padding)', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const keyIv = randomBytes(32);
    const encrypted = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, keyIv);
    const session = decryptSessionKey(privateKey, encrypted.toString('base64'));
    assert.ok(session !== null);
    assert.deepEqual(Buffer.concat([session.key, session.iv]), keyIv);
    // A message that is not 32 bytes, or not type-2 padded, is refused.
    const wrongLength = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
      randomBytes(31),
    );
    assert.equal(decryptSessionKey(privateKey, wrongLength.toString('base64')), null);
    const type1 = privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, keyIv);
    assert.equal(decryptSessionKey(privateKey, type1.toString('base64')), null);
    assert.equal(decryptSessionKey(privateKey, 'not base64 at all'), null);
  });

  test('PKCS#1 v1.5 unpadding edge cases', () => {
    const block = (pad: number[], msg: number[]): Buffer => Buffer.from([0, 2, ...pad, 0, ...msg]);
    assert.deepEqual(unpadPkcs1v15(block(Array(8).fill(7), [1, 2])), Buffer.from([1, 2]));
    assert.equal(unpadPkcs1v15(block(Array(7).fill(7), [1, 2])), null); // fewer than 8 pad bytes
    assert.equal(unpadPkcs1v15(Buffer.from([0, 1, 7, 7, 7, 7, 7, 7, 7, 7, 0, 1])), null); // type 1
    assert.equal(unpadPkcs1v15(Buffer.from([0, 2, 7, 7, 7, 7, 7, 7, 7, 7, 7])), null); // no separator
  });

  test('login v2 sends sha1-hex password2, v1 the base64 password; the e-mail keeps its case', () => {
    const v2 = loginParams(2, 'Me@Example.com', 'pw');
    assert.equal(Buffer.from(v2['username'] ?? '', 'base64').toString(), sha1Hex('Me@Example.com'));
    assert.equal(Buffer.from(v2['password2'] ?? '', 'base64').toString(), sha1Hex('pw'));
    assert.ok(!('password' in v2));
    const v1 = loginParams(1, 'Me@Example.com', 'pw');
    assert.equal(Buffer.from(v1['password'] ?? '', 'base64').toString(), 'pw');
    assert.notEqual(loginParams(2, 'me@example.com', 'pw')['username'], v2['username']);
  });
});

describe('energy methods and units', () => {
  const ok = (result: Record<string, unknown>): CallOutcome => ({ ok: true, result });
  const err = (code: number): CallOutcome => ({ ok: false, code });

  test('get_emeter_data wins for power and gives voltage and current; month_energy is the counter', () => {
    const r = mapEnergy(
      new Map([
        [
          'get_energy_usage',
          ok({ current_power: 999, month_energy: 971, today_energy: 5, local_time: '2026-11-30 06:00:00' }),
        ],
        ['get_emeter_data', ok({ power_mw: 1003, voltage_mv: 121215, current_ma: 33, energy_wh: 971 })],
      ]),
    );
    assert.deepEqual(r, {
      ok: true,
      energy: {
        powerMw: 1003,
        voltageMv: 121215,
        currentMa: 33,
        totalWh: 971,
        energyWh: 971,
        localTime: '2026-11-30 06:00:00',
      },
    });
  });

  test('without get_emeter_data: power from get_energy_usage in mW, voltage and current null (never 0)', () => {
    const r = mapEnergy(
      new Map([
        ['get_energy_usage', ok({ current_power: 74116, month_energy: 1421 })],
        ['get_emeter_data', err(-1002)],
      ]),
    );
    assert.ok(r.ok);
    assert.equal(r.energy.powerMw, 74116);
    assert.equal(r.energy.voltageMv, null);
    assert.equal(r.energy.currentMa, null);
  });

  test('an outlet without current_power in get_energy_usage takes get_current_power in whole W', () => {
    const r = mapEnergy(
      new Map([
        ['get_energy_usage', ok({ month_energy: 14 })],
        ['get_current_power', ok({ current_power: 38 })],
      ]),
    );
    assert.ok(r.ok);
    assert.equal(r.energy.powerMw, 38_000);
    assert.equal(r.energy.totalWh, 14);
  });

  test('missing, negative and absurd values are rejected with a reason', () => {
    assert.equal(mapEnergy(new Map()).ok, false);
    const noPower = mapEnergy(new Map([['get_energy_usage', ok({ month_energy: 1 })]]));
    assert.deepEqual(noPower.ok ? null : noPower.reason, 'malformed');
    const negative = mapEnergy(new Map([['get_energy_usage', ok({ month_energy: -1, current_power: 1 })]]));
    assert.deepEqual(negative.ok ? null : negative.reason, 'implausible');
    const huge = mapEnergy(new Map([['get_energy_usage', ok({ month_energy: 1, current_power: 1e12 })]]));
    assert.deepEqual(huge.ok ? null : huge.reason, 'implausible');
    const code = mapEnergy(new Map([['get_energy_usage', err(-1001)]]));
    assert.deepEqual(code.ok ? null : code.reason, 'error-code');
  });

  test('methods a device does not have are asked once, not on every poll', () => {
    const methods = new EnergyMethods(2);
    assert.deepEqual(
      methods.requests().map((c) => c.method),
      ['get_energy_usage', 'get_emeter_data', 'get_current_power'],
    );
    methods.learn(
      new Map([
        ['get_energy_usage', ok({ current_power: 1, month_energy: 1 })],
        ['get_emeter_data', err(-1008)],
      ]),
    );
    assert.deepEqual(
      methods.requests().map((c) => c.method),
      ['get_energy_usage'],
    );
    assert.deepEqual(
      new EnergyMethods(1).requests().map((c) => c.method),
      ['get_energy_usage'],
    );
  });

  test('aliases are base64 nicknames decoded as UTF-8', () => {
    assert.equal(decodeNickname(Buffer.from('Küche ☕').toString('base64')), 'Küche ☕');
    assert.equal(decodeNickname('plain name!'), 'plain name!');
    assert.equal(decodeNickname(42), '');
  });
});
