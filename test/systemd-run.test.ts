/**
 * `kasa-monitor run` as systemd starts it (NOTIFY_SOCKET, WATCHDOG_USEC), against a stand-in
 * notification socket and simulated plugs: what the daemon tells systemd, and when. No systemd
 * needed; test/systemd-container.test.ts does the same against a real systemd 252.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { loopbackAddresses } from '../src/discovery/simulator-fleet.js';
import { CLI } from './helpers/cli.js';
import { type NotifyDatagram, NotifySocket } from './helpers/notify-socket.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';

const PORT = 21501;
function config(dir: string, extra = ''): string {
  return `discovery:
  broadcast: 127.255.255.255
  port: ${PORT}
  interval: 30s
polling:
  interval: 1s
  timeout: 500ms
storage:
  sqlite:
    path: ${join(dir, 'kasa.db')}
log:
  format: json
${extra}`;
}

const has = (assignment: string) => (m: NotifyDatagram) => m.assignments.includes(assignment);
const status = (m: NotifyDatagram) => m.assignments.find((a) => a.startsWith('STATUS='))?.slice(7) ?? '';

describe('kasa-monitor run under a notification socket', () => {
  let fleet: SimulatorFleet;
  let socket: NotifySocket;
  let dir: string;
  let daemon: ChildProcess;
  const log: Record<string, unknown>[] = [];
  let exited: Promise<[number | null, NodeJS.Signals | null]>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kasa-systemd-run-'));
    fleet = await startSimulators({
      port: PORT,
      devices: loopbackAddresses('127.0.55.1', 2).map((address, i) => ({
        model: 'hs110v2' as const,
        address,
        alias: `Plug ${i + 1}`,
        realtime: { power_mw: 10_000, voltage_mv: 230_000, current_ma: 50, total_wh: 1 },
      })),
    });
    socket = await NotifySocket.start();
    writeFileSync(join(dir, 'config.yaml'), config(dir));
    daemon = spawn(process.execPath, [CLI, 'run', '-c', join(dir, 'config.yaml')], {
      env: {
        PATH: process.env['PATH'],
        NOTIFY_SOCKET: socket.path,
        WATCHDOG_USEC: '1000000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = once(daemon, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    createInterface({ input: daemon.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      log.push(JSON.parse(line) as Record<string, unknown>);
    });
  });

  after(async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    await socket.close();
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says READY=1 once started, with a STATUS summary', async () => {
    const ready = await socket.waitFor(has('READY=1'));
    assert.match(status(ready), /plugs online; (no poll yet|last poll \d+s ago); queue \d+\/100000; sqlite/);
    assert.ok(log.some((l) => l['msg'] === 'started: discovering plugs and polling'));
  });

  it('pings the watchdog while it makes progress, and keeps STATUS current', async () => {
    const first = socket.messages.length;
    await socket.waitFor(
      (m) => has('WATCHDOG=1')(m) && /2\/2 plugs online; last poll/.test(status(m)),
      first,
    );
    await socket.waitFor(has('WATCHDOG=1'), socket.messages.length);
  });

  it('brackets a reload with RELOADING=1 (timed on CLOCK_MONOTONIC) and READY=1', async () => {
    writeFileSync(join(dir, 'config.yaml'), config(dir, 'writer:\n  flush_interval: 2s\n'));
    const from = socket.messages.length;
    const before = process.hrtime.bigint() / 1000n;
    daemon.kill('SIGHUP');
    const reloading = await socket.waitFor(has('RELOADING=1'), from);
    const stamp = BigInt(
      reloading.assignments.find((a) => a.startsWith('MONOTONIC_USEC='))?.slice(15) ?? '0',
    );
    assert.ok(stamp >= before, 'MONOTONIC_USEC is taken after the signal, on the same clock');
    const index = socket.messages.indexOf(reloading);
    const ready = await socket.waitFor(has('READY=1'), index + 1);
    assert.doesNotMatch(status(ready), /rejected/);
  });

  it('still says READY=1 after a rejected reload, and puts the problem in STATUS', async () => {
    writeFileSync(join(dir, 'config.yaml'), config(dir, 'writer:\n  flush_interval: banana\n'));
    const from = socket.messages.length;
    daemon.kill('SIGHUP');
    const reloading = await socket.waitFor(has('RELOADING=1'), from);
    const ready = await socket.waitFor(has('READY=1'), socket.messages.indexOf(reloading) + 1);
    assert.match(
      status(ready),
      /^reload rejected, running on the previous configuration: writer\.flush_interval/,
    );
    assert.ok(
      log.some(
        (l) => l['level'] === 50 && String(l['msg']).startsWith('config rejected: writer.flush_interval'),
      ),
    );
  });

  it('says STOPPING=1 when SIGTERM starts the shutdown, and exits 0', async () => {
    const from = socket.messages.length;
    daemon.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0);
    // systemd-notify returns only once the listener has the message, and shutdown waits for it.
    const stopping = await socket.waitFor(has('STOPPING=1'), from);
    assert.ok(!socket.messages.slice(socket.messages.indexOf(stopping)).some(has('WATCHDOG=1')));
    const stopped = log.find((l) => l['msg'] === 'stopped');
    assert.equal(stopped?.['droppedAtShutdown'], 0);
  });
});
