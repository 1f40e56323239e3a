/**
 * The database going away or being unusable, with the built daemon (`kasa-monitor run`) and simulated
 * plugs: its directory removed while it runs, a path it cannot write at start, and a corrupt database
 * moved aside, which stays visible on /health until `kasa-monitor ack`.
 *
 * "Cannot write" is made real although the tests run as root: an immutable file (chattr +i, which
 * root cannot write either), and the daemon run as user nobody (setpriv) against files and
 * directories owned by root.
 *
 * Simulated plugs on 127.32.2.x-127.32.4.x, discovery ports 32201-32203; HTTP on 127.32.0.1:32211-32213.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI, DaemonProcess, runCliProcess } from './helpers/cli.js';
import { daemonYaml } from './helpers/daemon-config.js';
import { corruptPages } from './helpers/damage.js';
import { startSimulators } from './helpers/simulator.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { createSyntheticDatabase } from './helpers/sqlite-files.js';
import { storedTotal } from './helpers/stored.js';
import { sleep, waitFor } from './helpers/wait.js';

const root = mkdtempSync(join(tmpdir(), 'kasa-db-faults-'));
// World-searchable, so the daemon run as nobody reaches its directories.
chmodSync(root, 0o755);
after(() => {
  for (const file of immutable) execFileSync('chattr', ['-i', file]);
  rmSync(root, { recursive: true, force: true });
});
const immutable: string[] = [];

interface Health {
  status: string;
  checks: Record<string, { status: string; reason: string }>;
  alerts: { active: string[] };
}

async function health(httpPort: number): Promise<Health> {
  const response = await fetch(`http://127.32.0.1:${httpPort}/health`);
  return (await response.json()) as Health;
}

function writeConfig(name: string, dbPath: string, port: number, httpPort: number): string {
  const path = join(root, `${name}.yaml`);
  writeFileSync(
    path,
    daemonYaml({
      discoveryPort: port,
      dbPath,
      httpListen: `127.32.0.1:${httpPort}`,
      health: ['interval: 300ms', 'alert_after: 1', 'min_free_disk_mb: 0'],
    }),
  );
  chmodSync(path, 0o644);
  return path;
}

/** `kasa-monitor run` (as user nobody when asked); resolves with its exit code and all it printed. */
async function runOnce(
  configPath: string,
  asNobody: boolean,
): Promise<{ code: number | null; output: string }> {
  const run = [process.execPath, CLI, 'run', '-c', configPath];
  const [file, ...args] = asNobody
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...run]
    : run;
  const child = spawn(file ?? '', args, {
    env: { PATH: process.env['PATH'] },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  // A daemon that runs on despite the path is the failure this guards against: stop it after a while
  // (only to end the test; the assertion is on the exit code).
  const timer = setTimeout(() => child.kill('SIGTERM'), 15_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

/** A database as the daemon makes it (schema, WAL): the daemon started on `path` and stopped again. */
async function daemonDatabase(name: string, path: string): Promise<void> {
  const daemon = new DaemonProcess(['-c', writeConfig(`${name}-make`, path, 32202, 32212)]);
  try {
    await waitFor(() => daemon.logged('SQLite store open') !== undefined, 'the daemon opened its database');
    await daemon.stop();
    assert.equal(await daemon.exited, 0);
  } finally {
    await daemon.kill();
  }
}

describe('the database file vanishing or being unusable', () => {
  test('the database directory removed while running: an error names the file, and readings go on into a new database at the path', async () => {
    const fleet = await startSimulators({
      port: 32201,
      devices: [
        { model: 'hs110', address: '127.32.2.1', alias: 'kettle' },
        { model: 'hs110v2', address: '127.32.2.2', alias: 'heater' },
      ],
    });
    const dir = join(root, 'removed', 'data');
    const dbPath = join(dir, 'kasa.db');
    const daemon = new DaemonProcess(['-c', writeConfig('removed', dbPath, 32201, 32211)]);
    try {
      await waitFor(() => storedTotal(dbPath) >= 4, 'readings in the first database', 30_000);
      rmSync(join(root, 'removed'), { recursive: true, force: true });
      // Before the fix, every later reading went into the unlinked file and nothing came back here.
      await waitFor(
        () => storedTotal(dbPath) >= 4,
        'readings in a new database at the configured path',
        30_000,
      );
      const error = daemon.lines.find(
        (l) => Number(l['level']) >= 50 && /database file .* was removed/.test(String(l['msg'])),
      );
      assert.ok(error !== undefined, 'an error says that the database file was removed');
      assert.ok(String(error['msg']).includes(dbPath), `the error names the file: ${String(error['msg'])}`);
      const h = await health(32211);
      assert.equal(h.checks['database']?.status, 'degraded');
      assert.ok(h.checks['database']?.reason.includes(dbPath));
      const before = storedTotal(dbPath);
      await daemon.stop();
      assert.equal(await daemon.exited, 0);
      assert.ok(storedTotal(dbPath) >= before, 'what the new database got is kept after stop');
    } finally {
      await daemon.kill();
      await fleet.stop();
    }
  });

  test('a database path that cannot be written is a failed start that names the path', async () => {
    // An existing database file root cannot write either: immutable. SQLite would open it read-only
    // without a word, and every write would then fail while the daemon ran on.
    const immutableDir = join(root, 'immutable');
    mkdirSync(immutableDir);
    const immutablePath = join(immutableDir, 'kasa.db');
    await daemonDatabase('immutable', immutablePath);
    execFileSync('chattr', ['+i', immutablePath]);
    immutable.push(immutablePath);
    const first = await runOnce(writeConfig('immutable', immutablePath, 32202, 32212), false);
    assert.notEqual(first.code, 0, `exit code ${first.code}: the daemon ran on`);
    assert.match(first.output, /cannot be written/);
    assert.ok(first.output.includes(immutablePath));

    // The daemon as user nobody: an existing database file owned by root (mode 0644) ...
    const rootsDir = join(root, 'roots-file');
    mkdirSync(rootsDir, { mode: 0o777 });
    chmodSync(rootsDir, 0o777);
    const rootsFile = join(rootsDir, 'kasa.db');
    await daemonDatabase('roots-file', rootsFile);
    chmodSync(rootsFile, 0o644);
    const second = await runOnce(writeConfig('roots-file', rootsFile, 32202, 32212), true);
    assert.notEqual(second.code, 0, `exit code ${second.code}`);
    assert.ok(second.output.includes(rootsFile), second.output.slice(-2000));

    // ... and a path in a directory it cannot write.
    const closedDir = join(root, 'closed');
    mkdirSync(closedDir, { mode: 0o755 });
    const closedPath = join(closedDir, 'kasa.db');
    const third = await runOnce(writeConfig('closed', closedPath, 32202, 32212), true);
    assert.notEqual(third.code, 0, `exit code ${third.code}`);
    assert.ok(third.output.includes(closedPath), third.output.slice(-2000));
  });

  test('a corrupt database moved aside keeps /health degraded with an active alert naming the moved file until `kasa-monitor ack`', async () => {
    const dir = join(root, 'corrupt');
    mkdirSync(dir);
    const dbPath = join(dir, 'kasa.db');
    createSyntheticDatabase(sqliteOptions(dbPath, { busyTimeoutMs: 100 }), {
      channels: [{ id: 'OLD1', alias: 'old' }],
      startMs: 0,
      perChannel: 30_000,
      intervalMs: 60_000,
    });
    corruptPages(dbPath);
    const fleet = await startSimulators({
      port: 32203,
      devices: [{ model: 'hs110', address: '127.32.4.1', alias: 'kettle' }],
    });
    const configPath = writeConfig('corrupt', dbPath, 32203, 32213);
    const daemon = new DaemonProcess(['-c', configPath]);
    try {
      await waitFor(() => storedTotal(dbPath) >= 3, 'readings in the fresh database', 30_000);
      // Several health runs later (every 300 ms), with the fresh database working: still visible.
      await sleep(1500);
      const h = await health(32213);
      assert.equal(h.status, 'degraded', `health: ${JSON.stringify(h.checks)}`);
      assert.ok(h.alerts.active.length > 0, 'an active alert');
      const check = h.checks['database'];
      assert.equal(check?.status, 'degraded');
      assert.match(check?.reason ?? '', /kasa\.db\.corrupt-/);
      assert.ok(h.alerts.active.includes('database'));

      const ack = await runCliProcess(['ack', '-c', configPath]);
      assert.equal(ack.code, 0, ack.stderr);
      assert.match(ack.stdout, /acknowledged .*kasa\.db\.corrupt-/);
      const movedName = /(kasa\.db\.corrupt-[^\s,;]+)/.exec(ack.stdout)?.[1] ?? '';
      assert.ok(existsSync(join(dir, basename(movedName))), `moved file ${movedName} exists`);
      const afterAck = await health(32213);
      assert.equal(afterAck.status, 'ok', JSON.stringify(afterAck.checks));
      assert.deepEqual(afterAck.alerts.active, []);
      // POST only, JSON only.
      assert.equal((await fetch('http://127.32.0.1:32213/api/ack')).status, 405);
      assert.equal((await fetch('http://127.32.0.1:32213/api/ack', { method: 'POST' })).status, 415);
    } finally {
      await daemon.stop();
      await fleet.stop();
    }
  });
});
