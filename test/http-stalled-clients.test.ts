/**
 * HTTP clients that stop reading (issue 9, item 7), against the built daemon (HTTP on
 * 127.33.0.3:33082, discovery port 33003 on loopback, no plugs: the readings are a synthetic
 * database of 200,000 rows, about 20 MB of CSV). Twenty clients ask for the whole export and stop
 * reading after the first bytes. The health checks must go on querying the database (a reader
 * connection stays free for them), /health must answer, and the stalled responses must be cut after
 * `http.write_timeout` so their connections come back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HealthReport } from '../src/supervisor/index.js';
import { DaemonProcess } from './helpers/cli.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { createSyntheticDatabase } from './helpers/sqlite-files.js';
import { sleep, waitFor } from './helpers/wait.js';

const HOST = '127.33.0.3';
const HTTP_PORT = 33082;
const HTTP = `http://${HOST}:${HTTP_PORT}`;
const CLIENTS = 20;
const DAY_MS = 86_400_000;

async function health(): Promise<HealthReport> {
  const response = await fetch(`${HTTP}/health`);
  assert.ok(response.status === 200 || response.status === 503, `status ${response.status}`);
  return (await response.json()) as HealthReport;
}

/** Waits for a health report checked after `sinceMs`, so every check ran again meanwhile. */
async function freshHealth(sinceMs: number): Promise<HealthReport> {
  for (;;) {
    const report = await health();
    if (report.checked_at !== null && Date.parse(report.checked_at) > sinceMs) return report;
    await sleep(100);
  }
}

/**
 * Sends a GET for the whole export and stops reading once the first bytes arrived; resolves with
 * the status code of the response (a refused export is read to its end and closed).
 */
function stalledClient(path: string, sockets: Socket[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port: HTTP_PORT });
    sockets.push(socket);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    socket.once('data', (chunk: Buffer) => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1] ?? 0);
      if (status === 200) socket.pause();
      else socket.destroy();
      resolve(status);
    });
  });
}

describe('20 HTTP clients that stop reading a large export', () => {
  let dir: string;
  let daemon: DaemonProcess;
  const sockets: Socket[] = [];
  const startMs = Math.floor((Date.now() - 5 * DAY_MS) / 1000) * 1000;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kasa-stalled-'));
    const path = join(dir, 'kasa.db');
    createSyntheticDatabase(sqliteOptions(path), {
      channels: [
        { id: 'STALL0', alias: 'one' },
        { id: 'STALL1', alias: 'two' },
      ],
      startMs,
      perChannel: 100_000,
      intervalMs: 1000,
    });
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      `discovery:
  broadcast: 127.255.255.255
  port: 33003
  interval: 60s
  timeout: 200ms
storage:
  sqlite:
    path: ${path}
  pool:
    size: 2
    max_overflow: 3
    timeout: 2s
http:
  listen: ${HOST}:${HTTP_PORT}
health:
  interval: 500ms
  min_free_disk_mb: 0
`,
    );
    // From the environment: a daemon without the key would ignore it (with a warning), not refuse to start.
    daemon = new DaemonProcess(['-c', config], { KASA_MONITOR_HTTP_WRITE_TIMEOUT: '4s' });
    await waitFor(
      () =>
        daemon.child.exitCode !== null || daemon.lines.some((l) => /HTTP endpoint on/.test(String(l['msg']))),
      'the HTTP endpoint is up',
    );
    assert.equal(daemon.child.exitCode, null, daemon.stderr);
    const start = Date.now();
    const first = await freshHealth(start);
    assert.equal(first.checks['sqlite']?.status, 'ok', first.checks['sqlite']?.reason);
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await daemon?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the health checks still query the database, /health answers, and the stalled responses are cut after write_timeout', async () => {
    const from = new Date(startMs).toISOString();
    const statuses = await Promise.all(
      Array.from({ length: CLIENTS }, () => stalledClient(`/api/readings?from=${from}&format=csv`, sockets)),
    );
    const streaming = statuses.filter((s) => s === 200).length;
    assert.ok(streaming >= 1, `some exports started: ${statuses.join(' ')}`);
    assert.ok(
      statuses.every((s) => s === 200 || s === 503),
      `an export is streamed or refused as busy: ${statuses.join(' ')}`,
    );

    // While they stall (longer than the pool timeout, 2 s): each fresh round of checks got a
    // connection for its query.
    const stalledAt = Date.now();
    let report = await freshHealth(stalledAt);
    assert.ok(Number(report.pool['in_use']) >= 1, 'the stalled exports hold connections');
    for (let round = 0; round < 3; round++) {
      report = await freshHealth(Date.parse(report.checked_at ?? '') + 1000);
      const sqlite = report.checks['sqlite'];
      assert.equal(sqlite?.status, 'ok', `round ${round}: ${sqlite?.reason}`);
      assert.equal(typeof sqlite?.details?.['query_ms'], 'number', 'the check ran its query');
    }
    const pool = report.pool;
    assert.ok(
      Number(pool['in_use']) < Number(pool['size']) + Number(pool['max_overflow']),
      `a connection stays free: ${JSON.stringify(pool)}`,
    );

    // After write_timeout (4 s) without progress the responses are cut and the connections return.
    await waitFor(
      () =>
        daemon.lines.filter((l) => /the client took nothing for 4000 ms; response cut/.test(String(l['msg'])))
          .length >= streaming,
      'every stalled export cut',
    );
    const cut = daemon.lines.find((l) => /response cut/.test(String(l['msg'])));
    assert.equal(cut?.['level'], 40, 'logged as a warning');
    let freed = await health();
    const end = Date.now() + 20_000;
    while (Number(freed.pool['in_use']) > 0 && Date.now() < end) {
      await sleep(200);
      freed = await health();
    }
    assert.equal(freed.pool['in_use'], 0, 'no connection is held by a stalled client any more');

    // And a client that reads gets the whole export again.
    const whole = await fetch(`${HTTP}/api/readings?from=${from}&format=csv`);
    assert.equal(whole.status, 200);
    const lines = (await whole.text()).trimEnd().split('\n');
    assert.equal(lines.length, 1 + 200_000);
  });
});
