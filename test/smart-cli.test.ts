/**
 * `discover` and `probe` against simulated newer plugs (and no legacy plug): what a person sees
 * and attaches to a bug report. Ports 35202 (discovery), 35280 (HTTP), 35299 (an unused legacy
 * port); addresses 127.35.5.x.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type SmartSimFleet, startSmartSimulators } from '../src/discovery/smart-simulator.js';
import { runCliProcess } from './helpers/cli.js';

const ACCOUNT = { username: 'Owner@Example.com', password: 's3cret-pässword' };
const ENV = { KASA_USERNAME: ACCOUNT.username, KASA_PASSWORD: ACCOUNT.password };
const id = (n: number): string => `5C${String(n).padStart(38, '0')}`;
let fleet: SmartSimFleet;

before(async () => {
  fleet = await startSmartSimulators({
    discoveryPort: 35202,
    httpPort: 35280,
    devices: [
      {
        address: '127.35.5.1',
        kind: 'klap',
        model: 'P110',
        deviceId: id(1),
        account: ACCOUNT,
        alias: 'Küche ☕',
      },
      {
        address: '127.35.5.2',
        kind: 'klap',
        model: 'P304M',
        deviceId: id(2),
        account: ACCOUNT,
        outlets: ['a', 'b'],
        alias: 'Strip',
      },
      {
        address: '127.35.5.3',
        kind: 'aes',
        model: 'KP125M',
        deviceId: id(3),
        account: { username: 'x@y.z', password: 'no' },
      },
      {
        address: '127.35.5.4',
        kind: 'klap',
        model: 'P110',
        deviceId: id(4),
        account: ACCOUNT,
        faults: { thirdPartyCompat: true },
      },
    ],
  });
});
after(() => fleet.stop());

describe('discover and probe with newer plugs', () => {
  it('`discover --json` lists each plug once, outlets inside, with transport and whether the account works', async () => {
    const result = await runCliProcess(
      [
        'discover',
        '--broadcast',
        '127.255.255.255',
        '--port',
        '35299',
        '--smart-port',
        '35202',
        '--timeout',
        '1',
        '--json',
      ],
      ENV,
    );
    assert.equal(result.code, 0, result.stderr);
    const found = JSON.parse(result.stdout) as Record<string, unknown>[];
    assert.equal(found.length, 4);
    const byHost = new Map(found.map((d) => [d['host'], d]));
    assert.deepEqual(
      [
        byHost.get('127.35.5.1')?.['id'],
        byHost.get('127.35.5.1')?.['alias'],
        byHost.get('127.35.5.1')?.['transport'],
      ],
      [id(1), 'Küche ☕', 'klap'],
    );
    assert.equal(byHost.get('127.35.5.1')?.['accountWorks'], true);
    assert.equal((byHost.get('127.35.5.2')?.['outlets'] as unknown[] | undefined)?.length, 2);
    assert.equal(byHost.get('127.35.5.3')?.['transport'], 'aes');
    assert.equal(byHost.get('127.35.5.3')?.['accountWorks'], false);
    assert.equal(byHost.get('127.35.5.3')?.['state'], 'authentication failed');
    assert.equal(byHost.get('127.35.5.4')?.['state'], 'third-party compatibility');
    assert.match(String(byHost.get('127.35.5.4')?.['advice']), /enable Third-Party Compatibility/);
    assert.ok(!result.stdout.includes(ACCOUNT.password) && !result.stdout.includes(ACCOUNT.username));

    const table = await runCliProcess(
      [
        'discover',
        '--broadcast',
        '127.255.255.255',
        '--port',
        '35299',
        '--smart-port',
        '35202',
        '--timeout',
        '1',
      ],
      ENV,
    );
    assert.match(table.stdout, /TRANSPORT\s+ACCOUNT/);
    assert.match(table.stdout, /KP125M at 127\.35\.5\.3 .*authentication failed/);
  });

  it('`probe --host` prints the discovery reply, the transport and credential that matched, one raw energy answer; no secrets', async () => {
    const result = await runCliProcess(
      ['probe', '--host', '127.35.5.1', '--port', '35299', '--smart-port', '35202', '--json'],
      ENV,
    );
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { smart: Record<string, unknown> };
    assert.equal((report.smart['discovery_reply'] as Record<string, unknown>)['owner'], '[redacted]');
    assert.deepEqual(report.smart['matched'], { transport: 'klap', version: 2, credential: 'account' });
    const energy = report.smart['energy'] as Record<string, Record<string, { ok: boolean }>>;
    assert.equal(energy[id(1)]?.['get_energy_usage']?.ok, true);
    assert.ok(!result.stdout.includes(ACCOUNT.password) && !result.stdout.includes(ACCOUNT.username));

    const refused = await runCliProcess(
      ['probe', '--host', '127.35.5.3', '--port', '35299', '--smart-port', '35202', '--json'],
      ENV,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /"code": "auth"/);
  });
});
