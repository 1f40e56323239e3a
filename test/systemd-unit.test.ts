/**
 * Static checks of systemd/kasa-monitor.service (systemd-analyze, on the host) and of the installer's
 * decisions that need no root: --dry-run, and the messages about Node.js. The real thing runs in
 * test/systemd-container.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = join(REPO, 'systemd/kasa-monitor.service');
const INSTALL = join(REPO, 'scripts/install.sh');
const UNINSTALL = join(REPO, 'scripts/uninstall.sh');

function exec(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** `Key=value` lines of the unit, in order (a key may repeat). */
function directives(): [string, string][] {
  return readFileSync(UNIT, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

describe('the unit file', () => {
  it('passes systemd-analyze verify without a word', async () => {
    const result = await exec('systemd-analyze', ['verify', UNIT]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr.trim(), '');
  });

  it('has an exposure of 2.5 or lower in systemd-analyze security', async () => {
    const result = await exec('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT]);
    const score = Number(
      /Overall exposure level for kasa-monitor\.service: ([\d.]+)/.exec(result.stdout)?.[1],
    );
    assert.ok(Number.isFinite(score), result.stdout + result.stderr);
    assert.ok(score <= 2.5, `exposure ${score}`);
  });

  it('asks for what the daemon does: notify with child senders, SIGHUP reload, watchdog, restart', () => {
    const d = new Map(directives());
    assert.equal(d.get('Type'), 'notify');
    assert.equal(d.get('NotifyAccess'), 'all', 'notifications come from systemd-notify children');
    assert.equal(d.get('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.match(d.get('WatchdogSec') ?? '', /^\d+s$/);
    assert.equal(d.get('Restart'), 'on-failure');
    assert.match(
      d.get('ExecStart') ?? '',
      /^\/usr\/bin\/node \/opt\/kasa-monitor\/dist\/src\/cli\/bin\.js run$/,
    );
  });

  it('runs without root, with its own state and config directories, the Influx token and the TP-Link account as credentials', () => {
    const d = new Map(directives());
    assert.equal(d.get('DynamicUser'), 'yes');
    assert.equal(d.get('StateDirectory'), 'kasa-monitor');
    assert.equal(d.get('ConfigurationDirectory'), 'kasa-monitor');
    const credentials = directives()
      .filter(([name]) => name === 'LoadCredential')
      .map(([, value]) => value);
    assert.deepEqual(credentials, ['influx-token', 'tplink-username', 'tplink-password']);
  });

  it('keeps what the daemon needs inside the hardening: V8 JIT, UDP broadcast, loopback, notify socket', () => {
    const d = new Map(directives());
    assert.equal(d.get('MemoryDenyWriteExecute'), 'no');
    assert.deepEqual((d.get('RestrictAddressFamilies') ?? '').split(' ').sort(), [
      'AF_INET',
      'AF_INET6',
      'AF_UNIX',
    ]);
    assert.equal(d.get('PrivateNetwork'), undefined);
    assert.equal(d.get('IPAddressDeny'), undefined);
  });
});

describe('scripts/install.sh', () => {
  let dir: string;
  let prefix: string;
  let configDir: string;
  let unitDir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kasa-install-'));
    prefix = join(dir, 'opt/kasa-monitor');
    configDir = join(dir, 'etc/kasa-monitor');
    unitDir = join(dir, 'etc/systemd/system');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const dryRun = (extra: readonly string[] = [], env?: NodeJS.ProcessEnv) =>
    exec(
      'bash',
      [
        INSTALL,
        '--dry-run',
        '--skip-build',
        '--prefix',
        prefix,
        '--config-dir',
        configDir,
        '--unit-dir',
        unitDir,
        ...extra,
      ],
      env,
    );

  it('with --dry-run, prints every step and changes nothing', async () => {
    const result = await dryRun();
    assert.equal(result.code, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, /dry run: nothing is changed/);
    assert.match(out, new RegExp(`would run: mv ${prefix}\\.new ${prefix}`));
    assert.match(out, /would copy: \d+ run-time packages/);
    assert.match(out, new RegExp(`creating ${configDir}/config\\.yaml from the example`));
    assert.match(out, /ExecStart=\S*node \S+\/opt\/kasa-monitor\/dist\/src\/cli\/bin\.js run/);
    assert.match(out, /would run: systemctl daemon-reload/);
    assert.match(out, /would run: systemctl enable kasa-monitor\.service/);
    assert.match(out, /would run: systemctl restart kasa-monitor\.service/);
    assert.equal(existsSync(join(dir, 'opt')), false);
    assert.equal(existsSync(join(dir, 'etc')), false);
  });

  it('never overwrites an existing config', async () => {
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'config.yaml'), 'polling:\n  interval: 5s\n');
    const result = await dryRun();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /keeping the existing .*config\.yaml \(never overwritten\)/);
    assert.doesNotMatch(result.stdout, /kasa-monitor\.example\.yaml \S+config\.yaml/);
    rmSync(join(dir, 'etc'), { recursive: true, force: true });
  });

  it('refuses to replace a directory that is not a kasa-monitor installation', async () => {
    const result = await exec('bash', [INSTALL, '--dry-run', '--skip-build', '--prefix', dir]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /is not a kasa-monitor installation; refusing to replace it/);
    const system = await exec('bash', [INSTALL, '--dry-run', '--skip-build', '--prefix', '/usr']);
    assert.match(system.stderr, /would replace a system directory/);
  });

  it('says how to get Node.js when it is missing', async () => {
    // A PATH with the tools the script needs, but no node.
    const bin = join(dir, 'bin-without-node');
    mkdirSync(bin);
    for (const tool of ['bash', 'dirname', 'readlink', 'grep', 'id', 'sed', 'cat']) {
      const found = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
      if (found !== undefined) symlinkSync(found, join(bin, tool));
    }
    const result = await dryRun([], { PATH: bin });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Node\.js was not found on PATH\. kasa-monitor needs Node\.js 20 or newer/);
    assert.match(result.stderr, /nodejs\.org/);
  });

  it('says which Node.js is too old and what is needed', async () => {
    const bin = join(dir, 'bin-old-node');
    mkdirSync(bin);
    writeFileSync(join(bin, 'node'), '#!/bin/sh\necho v18.19.0\n');
    chmodSync(join(bin, 'node'), 0o755);
    const result = await dryRun([], { PATH: `${bin}:${process.env['PATH']}` });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /Node\.js v18\.19\.0 \(\S+\/bin-old-node\/node\) is too old: kasa-monitor needs Node\.js 20 or newer/,
    );
  });

  it('refuses a Node.js in a home directory, which the hardened service cannot read', async () => {
    const result = await dryRun(['--node', '/root/.nvm/versions/node/v20.0.0/bin/node']);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /lives in a home directory, which the service cannot read \(ProtectHome=yes\)/,
    );
  });
});

describe('scripts/uninstall.sh', () => {
  it('with --dry-run, says it keeps the config and the database unless --purge', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kasa-uninstall-'));
    try {
      const unitDir = join(dir, 'units');
      mkdirSync(unitDir);
      writeFileSync(join(unitDir, 'kasa-monitor.service'), '[Service]\n');
      const args = [
        UNINSTALL,
        '--dry-run',
        '--prefix',
        join(dir, 'opt'),
        '--unit-dir',
        unitDir,
        '--config-dir',
        join(dir, 'etc'),
      ];
      const kept = await exec('bash', args);
      assert.equal(kept.code, 0, kept.stderr);
      assert.match(kept.stdout, /would run: systemctl disable --now kasa-monitor\.service/);
      assert.match(kept.stdout, /kept .* \(configuration\) and \/var\/lib\/kasa-monitor \(the database\)/);
      const purged = await exec('bash', [...args, '--purge']);
      assert.match(
        purged.stdout,
        /would run: rm -rf \S+\/etc \/var\/lib\/kasa-monitor \/var\/lib\/private\/kasa-monitor/,
      );
      assert.ok(existsSync(join(unitDir, 'kasa-monitor.service')), 'nothing was removed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
