/**
 * `kasa-monitor demo` as a person runs it: on a machine where the service already holds the
 * dashboard's port, the demo still starts, says where its own dashboard is, and records readings.
 * Loopback only: the demo's simulated plugs (127.0.99.x, 127.0.98.x), broadcast 127.255.255.255.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'kasa-demo-'));

/** Holds 127.0.0.1:9469 the way a running service would; null when something else already does. */
async function holdDashboardPort(): Promise<Server | null> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(null));
    server.listen(9469, '127.0.0.1', () => resolve(server));
  });
}

describe('kasa-monitor demo', () => {
  let holder: Server | null = null;
  before(async () => {
    holder = await holdDashboardPort();
  });
  after(() => {
    holder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('starts while another process holds the dashboard port, says where its dashboard is, and records', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'demo', '--devices', '2', '--port', '26901', '--database', join(dir, 'demo.db')],
      { env: { PATH: process.env['PATH'] }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(
        () => /dashboard at http:\/\/127\.0\.0\.1:\d+\//.test(stdout) || child.exitCode !== null,
        `the demo's dashboard line (stdout: ${stdout}, stderr: ${stderr})`,
        60_000,
      );
      assert.equal(child.exitCode, null, `the demo exited: ${stderr}`);
      const port = Number(/dashboard at http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)?.[1]);
      assert.notEqual(port, 9469, 'the port the other process holds is not claimed');
      const devices = await fetch(`http://127.0.0.1:${port}/api/devices`);
      assert.equal(devices.status, 200, "the demo's own daemon answers there");
      await waitFor(() => / W /.test(stdout), `a committed reading printed (stdout: ${stdout})`, 60_000);
    } finally {
      child.kill('SIGINT');
      await exited;
    }
    assert.match(stdout, /demo: stopped/);
  });
});
