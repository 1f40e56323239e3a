/**
 * End to end through the built CLI: real processes, real simulated plugs on loopback, a real SQLite
 * file. Ports 21000-21099 and addresses 127.0.30.x belong to this file.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DaemonProcess, runCliProcess } from './helpers/cli.js';
import { type ExportRow, readExport } from './helpers/export-csv.js';
import { RequestCounter, type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { holdWriteLock } from './helpers/sqlite-files.js';
import { tempDirs } from './helpers/temp.js';
import { sleep, waitFor } from './helpers/wait.js';

const PORT = 21001;
const OLD = 'E2E0000000000000000000000000000000000001';
const NEW = 'E2E0000000000000000000000000000000000002';
const STRIP = 'E2E0000000000000000000000000000000000003';
const NOMETER = 'E2E0000000000000000000000000000000000004';
const OUTLETS = [0, 1, 2, 3, 4, 5].map((i) => `${STRIP}0${i}`);
const METERED = [OLD, NEW, ...OUTLETS];

const tempDir = tempDirs('kasa-e2e-');

function writeConfig(dir: string, extra = ''): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    `discovery:
  broadcast: 127.255.255.255
  port: ${PORT}
  interval: 1s
  timeout: 300ms
polling:
  interval: 1s
  timeout: 500ms
storage:
  sqlite:
    path: ${join(dir, 'kasa.db')}
log:
  level: info
http:
  listen: 127.0.0.1:0
${extra}`,
  );
  return file;
}

async function exportCsv(config: string, ...args: string[]): Promise<ExportRow[]> {
  const { header, rows } = await readExport(config, args);
  assert.equal(header, 'time,device_id,alias,power_w,voltage_v,current_a,total_wh');
  return rows;
}

describe('kasa-monitor end to end (built CLI, simulated plugs, SQLite)', () => {
  let fleet: SimulatorFleet;

  before(async () => {
    fleet = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110', address: '127.0.30.1', deviceId: OLD, alias: 'Old kettle' },
        { model: 'hs110v2', address: '127.0.30.2', deviceId: NEW, alias: 'New fridge' },
        {
          model: 'hs300',
          address: '127.0.30.3',
          deviceId: STRIP,
          alias: 'Desk strip',
          outletAliases: ['Monitor', 'Laptop', 'Lamp', 'Speakers', 'Router', 'Charger'],
        },
        { model: 'hs100', address: '127.0.30.4', deviceId: NOMETER, alias: 'Porch' },
      ],
    });
    // Old firmware answers in W/V/A/kWh floats; new firmware in mW/mV/mA/Wh integers.
    fleet.setRealtime(OLD, { power: 1234.5674, voltage: 230.1234, current: 5.3678, total: 12.3456 });
    fleet.setRealtime(NEW, { power_mw: 92_300, voltage_mv: 231_200, current_ma: 410, total_wh: 5210 });
    for (const [i, id] of OUTLETS.entries()) {
      fleet.setRealtime(id, {
        power_mw: 1000 * (i + 1) + 7,
        voltage_mv: 120_500,
        current_ma: 10 + i,
        total_wh: 300 + i,
      });
    }
  });

  after(async () => {
    // When before() failed, there is no fleet to stop; the failure is already reported.
    await (fleet as SimulatorFleet | undefined)?.stop();
  });

  it('records exactly the values the plugs report, in canonical units, and exports them as CSV', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, 'writer:\n  flush_interval: 200ms\n');
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(
        async () => {
          const rows = await exportCsv(config).catch(() => []);
          return METERED.every((id) => rows.some((r) => r.device_id === id));
        },
        'a reading from every metered channel',
        30_000,
        200,
      );
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);

      const rows = await exportCsv(config);
      const values = (id: string) =>
        new Set(
          rows
            .filter((r) => r.device_id === id)
            .map((r) => [r.power_w, r.voltage_v, r.current_a, r.total_wh].join(' ')),
        );
      // W/V/A/kWh rounded to integer mW/mV/mA/Wh, then printed back as plain decimals.
      assert.deepEqual(values(OLD), new Set(['1234.567 230.123 5.368 12346']));
      assert.deepEqual(values(NEW), new Set(['92.3 231.2 0.41 5210']));
      OUTLETS.forEach((id, i) => {
        assert.deepEqual(values(id), new Set([`${i + 1}.007 120.5 ${(10 + i) / 1000} ${300 + i}`]), id);
      });
      assert.equal(
        rows.filter((r) => r.device_id === NOMETER).length,
        0,
        'a plug without a meter is not polled',
      );
      assert.deepEqual(
        [...new Set(rows.filter((r) => r.device_id.startsWith(STRIP)).map((r) => r.alias))].sort(),
        ['Charger', 'Lamp', 'Laptop', 'Monitor', 'Router', 'Speakers'],
      );
      const times = rows.map((r) => r.time);
      assert.deepEqual(times, [...times].sort(), 'oldest first');
      assert.match(times[0] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

      const strip = await exportCsv(config, '--device', 'Desk strip');
      assert.deepEqual(
        new Set(strip.map((r) => r.device_id)),
        new Set(OUTLETS),
        'a strip alias selects its outlets',
      );
      const json = await runCliProcess([
        'export',
        '-c',
        config,
        '--device',
        'Old kettle',
        '--format',
        'json',
        '--from',
        '-1h',
      ]);
      const parsed = JSON.parse(json.stdout) as { device_id: string; power_w: number; total_wh: number }[];
      assert.ok(parsed.length > 0);
      assert.ok(parsed.every((r) => r.device_id === OLD && r.power_w === 1234.567 && r.total_wh === 12346));
    } finally {
      await daemon.kill();
    }
  });

  it('keeps a plug’s history under its deviceId when it moves to another address', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, 'writer:\n  flush_interval: 200ms\n');
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(
        async () => (await exportCsv(config, '--device', NEW).catch(() => [])).length > 0,
        'first readings of the plug',
        30_000,
        200,
      );
      await fleet.move(NEW, '127.0.30.20');
      const movedAt = new Date().toISOString();
      await waitFor(
        async () => (await exportCsv(config, '--device', NEW).catch(() => [])).some((r) => r.time > movedAt),
        'readings from the new address',
        30_000,
        200,
      );
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0);
      const rows = await exportCsv(config, '--device', NEW);
      assert.ok(rows.some((r) => r.time < movedAt) && rows.some((r) => r.time > movedAt));
      assert.ok(daemon.logged('plug moved to a new address'), 'the move is logged');
    } finally {
      await daemon.kill();
      await fleet.move(NEW, '127.0.30.2');
    }
  });

  it('drains every queued reading into SQLite on SIGTERM', async () => {
    const dir = tempDir();
    // Nothing is flushed while running (huge batch, flush once a day): only the shutdown drain writes.
    const config = writeConfig(
      dir,
      'writer:\n  batch_size: 100000\n  flush_interval: 1d\nqueue:\n  capacity: 100000\n',
    );
    const counter = new RequestCounter(fleet);
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(() => counter.count(OLD, 'emeter') >= 3, 'three polls of a plug', 30_000);
      assert.equal((await exportCsv(config)).length, 0, 'nothing written before the stop');
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);
      const summary = daemon.logged('stopped');
      assert.ok(summary, 'a final summary is logged');
      const rows = await exportCsv(config);
      assert.ok(rows.length >= 3 * METERED.length - METERED.length);
      assert.equal(
        summary['readingsQueued'],
        rows.length,
        'every reading that entered the queue is in the database',
      );
      assert.equal(summary['written'], rows.length);
      assert.equal(summary['droppedOverflow'], 0);
      assert.equal(summary['droppedAtShutdown'], 0);
    } finally {
      counter.stop();
      await daemon.kill();
    }
  });

  it('treats a stop signal delivered twice at once (npm run, timeout) as one request and still drains', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, 'writer:\n  batch_size: 100000\n  flush_interval: 1d\n');
    const counter = new RequestCounter(fleet);
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(() => counter.count(OLD, 'emeter') >= 2, 'two polls of a plug', 30_000);
      daemon.signal('SIGINT');
      daemon.signal('SIGINT');
      assert.equal(await daemon.exited, 0, daemon.stderr);
      const summary = daemon.logged('stopped');
      assert.ok(summary);
      assert.equal((await exportCsv(config)).length, summary['readingsQueued']);
      assert.equal(
        daemon.logged('second stop request: exiting now without waiting for the queue'),
        undefined,
      );
    } finally {
      counter.stop();
      await daemon.kill();
    }
  });

  it('exits at once on a second stop signal while the drain is stuck', async () => {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      'writer:\n  batch_size: 100000\n  flush_interval: 1d\nshutdown:\n  timeout: 1m\n',
    );
    const counter = new RequestCounter(fleet);
    const daemon = new DaemonProcess(['-c', config]);
    let lock: { release(): void } | null = null;
    try {
      await waitFor(() => counter.count(OLD, 'emeter') >= 2, 'two polls of a plug', 30_000);
      // Another process holds the write lock: the drain cannot finish.
      lock = holdWriteLock(join(dir, 'kasa.db'));
      daemon.signal('SIGTERM');
      await sleep(1500);
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 1);
      assert.ok(daemon.logged('second stop request: exiting now without waiting for the queue'));
    } finally {
      lock?.release();
      counter.stop();
      await daemon.kill();
    }
  });

  it('counts readings lost to a full queue and logs the overflow once, not per reading', async () => {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      'writer:\n  batch_size: 100000\n  flush_interval: 1d\nqueue:\n  capacity: 4\n  overflow: drop-oldest\n',
    );
    const counter = new RequestCounter(fleet);
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(() => counter.count(OLD, 'emeter') >= 3, 'three polls of a plug', 30_000);
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);
      const summary = daemon.logged('stopped');
      assert.ok(summary);
      const rows = await exportCsv(config);
      assert.equal(rows.length, 4, 'the newest four readings survive');
      const queued = summary['readingsQueued'] as number;
      assert.equal(summary['droppedOverflow'], queued - 4, 'every other reading is counted as dropped');
      const warnings = daemon.lines.filter(
        (l) => l['msg'] === 'queue full: dropping readings until storage catches up',
      );
      assert.equal(warnings.length, 1, 'one warning for the whole episode');
    } finally {
      counter.stop();
      await daemon.kill();
    }
  });

  it('lists the plugs that answer with `discover`', async () => {
    const result = await runCliProcess([
      'discover',
      '--broadcast',
      '127.255.255.255',
      '--port',
      String(PORT),
      '--timeout',
      '0.5',
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const found = JSON.parse(result.stdout) as { id: string; hasEmeter: boolean; outlets: unknown[] }[];
    const byId = new Map(found.map((d) => [d.id, d]));
    assert.equal(byId.get(OLD)?.hasEmeter, true);
    assert.equal(byId.get(NOMETER)?.hasEmeter, false);
    assert.equal(byId.get(STRIP)?.outlets.length, 6);
  });
});

describe('kasa-monitor command line contract', () => {
  it('prints its version and help with exit 0', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const version = await runCliProcess(['--version']);
    assert.equal(version.code, 0);
    assert.equal(version.stdout.trim(), pkg.version);
    const help = await runCliProcess(['export', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /time,device_id,alias,power_w,voltage_v,current_a,total_wh/);
  });

  it('exits 64 on bad usage', async () => {
    assert.equal((await runCliProcess(['frobnicate'])).code, 64);
    assert.equal((await runCliProcess(['export', '--no-such-flag'])).code, 64);
    const badTime = await runCliProcess(['export', '--from', 'yesterday']);
    assert.equal(badTime.code, 64);
    assert.match(badTime.stderr, /--from/);
  });

  it('exits 78 and names every problem by key path when the config is bad', async () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'polling:\n  interval: soon\nqueue:\n  capacity: -1\n  overflow: drop-everything\nlogg: {}\n',
    );
    for (const command of ['check-config', 'run']) {
      const result = await runCliProcess([command, '-c', file]);
      assert.equal(result.code, 78, `${command}: ${result.stderr}`);
      for (const key of ['polling.interval', 'queue.capacity', 'queue.overflow', 'logg']) {
        assert.match(result.stderr, new RegExp(key.replace('.', '\\.')), `${command} names ${key}`);
      }
      assert.match(result.stderr, /drop-oldest/, 'says what is allowed');
    }
    const missing = await runCliProcess(['check-config', '-c', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 78);
  });

  it('accepts a valid config file with check-config', async () => {
    const dir = tempDir();
    const result = await runCliProcess(['check-config', '-c', writeConfig(dir)]);
    assert.equal(result.code, 0, result.stderr);
  });

  it('exits 1 with a clear message when the database file is not a database', async () => {
    const dir = tempDir();
    const config = writeConfig(dir);
    writeFileSync(join(dir, 'kasa.db'), 'this is not a database, just text '.repeat(200));
    const daemon = new DaemonProcess(['-c', config]);
    try {
      assert.equal(await daemon.exited, 1);
      const fatal = daemon.lines.find((l) => String(l['msg']).startsWith('could not start'));
      assert.ok(fatal, 'logs why it could not start');
    } finally {
      await daemon.kill();
    }
  });
});
