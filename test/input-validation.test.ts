/**
 * Configuration and times that a person writes (issue 9, items 9 and 10), through the built CLI and a
 * built daemon (HTTP on 127.33.0.2:33081, discovery port 33002 on loopback, no plugs needed):
 * `polling.interval: 1s` alone works; an InfluxDB URL with credentials is refused (exit 78, naming
 * the key and where the token goes) without its password appearing anywhere; impossible dates and a
 * `from` after `to` are refused (exit 64 / HTTP 400); a 404 does not show the database's path.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, runCliProcess } from './helpers/cli.js';
import { configFixtures } from './helpers/config.js';
import { tempRoot } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const PORT = 33002;
const HTTP = 'http://127.33.0.2:33081';
const PASSWORD = 'Pw-0f-the-influx-user';
const CREDENTIAL_URL = `http://kasa:${PASSWORD}@127.33.0.9:8086`;

const dir = tempRoot('kasa-input-');
const { load } = configFixtures('kasa-input-load-');

function baseConfig(extra = ''): string {
  return `discovery:
  broadcast: 127.255.255.255
  port: ${PORT}
  interval: 5s
  timeout: 200ms
storage:
  sqlite:
    path: ${join(dir, 'kasa.db')}
http:
  listen: 127.33.0.2:33081
health:
  interval: 500ms
  min_free_disk_mb: 0
${extra}`;
}

function withInfluxUrl(text: string): string {
  return text.replace('storage:\n', `storage:\n  influx:\n    url: ${CREDENTIAL_URL}\n`);
}

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('polling.interval alone', () => {
  test('`interval: 1s` with no timeout is accepted; the timeout is derived from it', async () => {
    const file = writeConfig('fast.yaml', baseConfig('polling:\n  interval: 1s\n'));
    const result = await runCliProcess(['check-config', '-c', file]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(load({ file }).config.polling.timeout, 800);
    assert.equal(load({ env: { KASA_MONITOR_POLLING_INTERVAL: '500ms' } }).config.polling.timeout, 400);
    assert.equal(load().config.polling.timeout, 3000, 'the default interval (10s) keeps the 3s timeout');
  });

  test('a timeout the user set is still checked against the interval', async () => {
    const file = writeConfig('slow.yaml', baseConfig('polling:\n  interval: 1s\n  timeout: 3s\n'));
    const result = await runCliProcess(['check-config', '-c', file]);
    assert.equal(result.code, 78);
    assert.match(result.stdout + result.stderr, /polling\.timeout.*must be shorter than polling\.interval/);
  });
});

describe('an InfluxDB URL with credentials', () => {
  const check = (output: string) => {
    assert.match(output, /storage\.influx\.url/);
    assert.match(output, /token_file/);
    assert.ok(!output.includes(PASSWORD), `the password appears in: ${output}`);
  };

  test('check-config refuses it with exit 78, names the key and where the token goes, never shows the password', async () => {
    const file = writeConfig('cred.yaml', withInfluxUrl(baseConfig()));
    const result = await runCliProcess(['check-config', '-c', file]);
    assert.equal(result.code, 78);
    check(result.stdout + result.stderr);
    const fromEnv = await runCliProcess(['check-config', '-c', writeConfig('plain.yaml', baseConfig())], {
      KASA_MONITOR_STORAGE_INFLUX_URL: `https://kasa:${encodeURIComponent(`${PASSWORD}@/`)}@influx.lan`,
    });
    assert.equal(fromEnv.code, 78);
    check(fromEnv.stdout + fromEnv.stderr);
    assert.ok(!(fromEnv.stdout + fromEnv.stderr).includes(encodeURIComponent(`${PASSWORD}@/`)));
  });

  test('`run` refuses to start with exit 78 and the same message', async () => {
    const file = join(dir, 'cred.yaml');
    const daemon = new DaemonProcess(['-c', file]);
    try {
      // The deadline only turns "it started anyway" into a failure instead of a hang.
      const code = await Promise.race([
        daemon.exited,
        new Promise<string>((resolve) =>
          setTimeout(() => resolve('still running after 20 s'), 20_000).unref(),
        ),
      ]);
      assert.equal(code, 78);
      const output = daemon.stderr + JSON.stringify(daemon.lines);
      check(output);
    } finally {
      await daemon.kill();
    }
  });
});

describe('a running daemon', () => {
  let daemon: DaemonProcess;
  let config: string;

  before(async () => {
    config = writeConfig('daemon.yaml', baseConfig());
    daemon = new DaemonProcess(['-c', config]);
    await waitFor(
      () =>
        daemon.child.exitCode !== null || daemon.lines.some((l) => /HTTP endpoint on/.test(String(l['msg']))),
      'the HTTP endpoint is up',
    );
    assert.equal(daemon.child.exitCode, null, daemon.stderr);
  });

  after(async () => {
    await daemon?.kill();
  });

  test('/api/readings refuses an impossible date and a from after to with 400 and a clear message', async () => {
    const impossible = await fetch(`${HTTP}/api/readings?from=2026-02-30`);
    assert.equal(impossible.status, 400);
    assert.match(((await impossible.json()) as { error: string }).error, /2026-02-30.*not a date.*01 to 28/);
    const april = await fetch(`${HTTP}/api/readings?to=2026-04-31T10:00:00Z`);
    assert.equal(april.status, 400);
    const reversed = await fetch(`${HTTP}/api/readings?from=2026-11-27&to=2026-11-26`);
    assert.equal(reversed.status, 400);
    assert.match(((await reversed.json()) as { error: string }).error, /from .* is after to/);
    const leap = await fetch(`${HTTP}/api/readings?from=2028-02-29&to=2028-03-01`);
    assert.equal(leap.status, 200, 'a leap day is a date');
    await leap.text();
  });

  test('a 404 for an unknown device names the device, not the database file', async () => {
    const response = await fetch(`${HTTP}/api/readings?device=no-such-plug`);
    assert.equal(response.status, 404);
    const text = await response.text();
    assert.match(text, /no device with id or alias \\"no-such-plug\\"/);
    assert.ok(!text.includes(dir) && !text.includes('kasa.db'), text);
  });

  test('a reload to a URL with credentials is rejected; the password is in no log line and not in /health', async () => {
    writeFileSync(config, withInfluxUrl(baseConfig()));
    daemon.signal('SIGHUP');
    await waitFor(
      () => daemon.logged('reload rejected: keeping the running configuration') !== undefined,
      'rejected',
    );
    const rejected = daemon.lines.filter((l) => /config rejected/.test(String(l['msg'])));
    assert.ok(rejected.some((l) => /storage\.influx\.url.*token_file/.test(String(l['msg']))));
    const health = await (await fetch(`${HTTP}/health`)).text();
    assert.ok(!health.includes(PASSWORD));
    assert.ok(!JSON.stringify(daemon.lines).includes(PASSWORD) && !daemon.stderr.includes(PASSWORD));
  });
});

describe('times on the command line', () => {
  test('export refuses an impossible date and a --from after --to with exit 64', async () => {
    const file = writeConfig('cli.yaml', baseConfig());
    const impossible = await runCliProcess(['export', '-c', file, '--from', '2026-02-30']);
    assert.equal(impossible.code, 64, impossible.stdout);
    assert.match(impossible.stderr, /--from: '2026-02-30' is not a date: 2026-02 has days 01 to 28/);
    const month = await runCliProcess(['export', '-c', file, '--to', '2026-13-01T00:00:00Z']);
    assert.equal(month.code, 64);
    assert.match(month.stderr, /month 13 does not exist/);
    const reversed = await runCliProcess(['export', '-c', file, '--from', '-1h', '--to', '-2h']);
    assert.equal(reversed.code, 64);
    assert.match(reversed.stderr, /--from \(.*\) is after --to \(.*\)/);
  });

  test('energy refuses an impossible date with exit 64', async () => {
    const file = writeConfig('energy.yaml', baseConfig());
    const result = await runCliProcess(['energy', '-c', file, '--from', '2026-02-30', '--to', '2026-03-05']);
    assert.equal(result.code, 64, result.stdout);
    assert.match(result.stderr, /2026-02-30/);
  });
});
