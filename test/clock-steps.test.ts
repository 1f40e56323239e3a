/**
 * Wall-clock steps under a real daemon: the built `kasa-monitor run` under libfaketime (Debian package
 * `faketime`), whose wall clock the test steps at run time through FAKETIME_TIMESTAMP_FILE while the
 * monotonic clock stays real (FAKETIME_DONT_FAKE_MONOTONIC=1), polling simulated plugs at 1 s. After a
 * step back of two minutes or ahead of one day, readings keep coming within seconds, the step is logged
 * once as a clock step, and nothing claims a blocked event loop, a stalled scheduler or a degraded health.
 *
 * Simulated plugs on 127.32.1.x, discovery port 32101; HTTP on 127.32.0.1:32111-32112.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DaemonProcess } from './helpers/cli.js';
import { daemonYaml } from './helpers/daemon-config.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { storedTotal } from './helpers/stored.js';
import { tempRoot } from './helpers/temp.js';
import { sleep, waitFor } from './helpers/wait.js';

/** Where the Debian package `faketime` puts the library (by architecture). */
const LIBFAKETIME =
  [
    '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
    '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
    '/usr/lib/arm-linux-gnueabihf/faketime/libfaketime.so.1',
  ].find((path) => existsSync(path)) ?? '/usr/lib/faketime/libfaketime.so.1';
const PORT = 32101;

const root = tempRoot('kasa-clock-steps-');

async function health(base: string): Promise<{ status: string; checks: Record<string, { status: string }> }> {
  const response = await fetch(`${base}/health`);
  return (await response.json()) as { status: string; checks: Record<string, { status: string }> };
}

const WARN = 40;

/** Runs the daemon under faketime, steps its wall clock by `step` (a faketime offset), checks the aftermath. */
async function acrossStep(name: string, httpPort: number, step: string): Promise<void> {
  const dbPath = join(root, `${name}.db`);
  const offsetFile = join(root, `${name}.faketime`);
  writeFileSync(offsetFile, '+0\n');
  const configPath = join(root, `${name}.yaml`);
  const base = `http://127.32.0.1:${httpPort}`;
  writeFileSync(
    configPath,
    daemonYaml({
      discoveryPort: PORT,
      dbPath,
      httpListen: `127.32.0.1:${httpPort}`,
      // The machine running the tests is shared: its load must not count as a problem here.
      health: ['interval: 500ms', 'min_free_disk_mb: 0', 'max_event_loop_lag: 5s', 'max_poll_error_rate: 1'],
    }),
  );
  const daemon = new DaemonProcess(['-c', configPath], {
    LD_PRELOAD: LIBFAKETIME,
    FAKETIME_TIMESTAMP_FILE: offsetFile,
    // Re-read the offset file at most once a second (0 would read it at every clock call).
    FAKETIME_CACHE_DURATION: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  });
  try {
    await waitFor(() => storedTotal(dbPath) >= 6, 'readings before the step', 30_000);
    const linesBefore = daemon.lines.length;
    writeFileSync(offsetFile, `${step}\n`);
    // libfaketime re-reads the file within a second (FAKETIME_CACHE_DURATION): let it take effect.
    await sleep(2500);
    // Polling goes on within seconds: two more rounds over both plugs are stored. (Before the fix a
    // step back paused every poll for the length of the step: two minutes. The deadline only turns
    // that pause into a failure.)
    const stored = storedTotal(dbPath);
    await waitFor(() => storedTotal(dbPath) >= stored + 4, 'readings after the step', 60_000);
    // Health after the step: ok, with the scheduler ok.
    const report = await health(base);
    assert.equal(report.status, 'ok', `health after the step: ${JSON.stringify(report.checks)}`);
    assert.equal(report.checks['scheduler']?.status, 'ok');
    // Blocked-loop warnings a loaded machine can cause (a tick or two late) are not about the step;
    // the step itself would have been counted as a day of missed ticks (86,400) or two minutes' worth.
    const isLoadNoise = (l: Record<string, unknown>) =>
      /poll ticks missed/.test(String(l['msg'])) && Number(l['missed']) < 60;

    const warnings = daemon.lines
      .slice(linesBefore)
      .filter((l) => Number(l['level']) >= WARN && !isLoadNoise(l));
    for (const line of warnings) {
      const msg = String(line['msg']);
      assert.doesNotMatch(msg, /event loop|blocked|stall|degraded/i, `no false alarm: ${msg}`);
      assert.match(msg, /clock/i, `a warning after the step is about the clock: ${msg}`);
      assert.match(msg, /step|jump/i, `a warning after the step says step or jump: ${msg}`);
    }
    const stepLines = warnings.filter((l) => /clock/i.test(String(l['msg'])));
    assert.equal(stepLines.length, 1, `the step logged once: ${JSON.stringify(stepLines)}`);
  } finally {
    await daemon.stop();
  }
}

describe('wall-clock steps under the running daemon (libfaketime)', () => {
  let fleet: SimulatorFleet;
  test('setup: libfaketime and two simulated plugs', async () => {
    assert.ok(existsSync(LIBFAKETIME), 'libfaketime is missing: apt-get install faketime (.ci/run does)');
    fleet = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110', address: '127.32.1.1', alias: 'fridge' },
        { model: 'hs110v2', address: '127.32.1.2', alias: 'washer' },
      ],
    });
  });
  after(async () => {
    await fleet?.stop();
  });

  test('a wall clock stepped back two minutes does not pause polling, and is logged once as a clock step', async () => {
    await acrossStep('back', 32111, '-120s');
  });

  test('a wall clock stepped ahead one day keeps polling and is not reported as a blocked loop or stall', async () => {
    await acrossStep('ahead', 32112, '+1d');
  });
});
