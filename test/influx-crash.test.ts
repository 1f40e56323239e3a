/**
 * kill -9 at random moments: the real `kasa-monitor run` (with InfluxDB forwarding into a real
 * VictoriaMetrics) is SIGKILLed again and again while plugs are polled several times a second and
 * batches and cursors are committed all the time. After every kill: the file passes
 * integrity_check, no reading is stored twice, and every reading committed before is still there.
 * At the end one clean run lets InfluxDB converge: it holds exactly the readings SQLite holds.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isStorageError, KasaStorageCode, openReadingsReader } from '../src/storage/sqlite/index.js';
import { DaemonProcess } from './helpers/cli.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { integrityCheckFile, outboxFileSummary } from './helpers/sqlite-files.js';
import { tempRoot } from './helpers/temp.js';
import { startVictoria, timestampsPerDevice, victoriaSkip } from './helpers/victoria.js';
import { sleep, waitFor } from './helpers/wait.js';

const PORT = 22300;
const ROUNDS = 24;

const root = tempRoot('kasa-influx-crash-');

const skip = victoriaSkip();

/** Stored readings per channel as sets of timestamps; fails if one is stored twice. */
function storedKeys(path: string): Map<string, Set<number>> {
  const reader = openReadingsReader(path);
  try {
    const out = new Map<string, Set<number>>();
    for (const r of reader.readings()) {
      let set = out.get(r.deviceId);
      if (set === undefined) {
        set = new Set();
        out.set(r.deviceId, set);
      }
      assert.ok(!set.has(r.tsMs), `${r.deviceId}@${r.tsMs} stored twice`);
      set.add(r.tsMs);
    }
    return out;
  } finally {
    reader.close();
  }
}

/**
 * Like storedKeys, but a file the first run has not finished creating (no schema committed yet)
 * holds nothing.
 */
function storedSoFar(path: string): Map<string, Set<number>> {
  if (!existsSync(path)) return new Map();
  try {
    return storedKeys(path);
  } catch (error) {
    if (isStorageError(error) && error.code === KasaStorageCode.notKasaDatabase) return new Map();
    throw error;
  }
}

function total(keys: Map<string, Set<number>>): number {
  let n = 0;
  for (const set of keys.values()) n += set.size;
  return n;
}

describe('kill -9 at random moments', { skip }, () => {
  test(`${ROUNDS} SIGKILLs: integrity ok, no duplicates, no committed reading lost, InfluxDB converges to SQLite`, async () => {
    const vm = await startVictoria();
    let fleet: SimulatorFleet | null = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110', address: '127.0.41.1', alias: 'one' },
        { model: 'hs110v2', address: '127.0.41.2', alias: 'two' },
        { model: 'hs300', address: '127.0.41.3', alias: 'strip' },
      ],
    });
    const dbPath = join(root, 'crash.db');
    const configPath = join(root, 'config.yaml');
    writeFileSync(
      configPath,
      `discovery:
  broadcast: 127.255.255.255
  port: ${PORT}
  interval: 5s
  timeout: 150ms
polling:
  interval: 200ms
  timeout: 150ms
writer:
  batch_size: 20
  flush_interval: 50ms
storage:
  sqlite:
    path: ${dbPath}
  influx:
    url: ${vm.url}
    token: crash-test-token
    batch_size: 15
    flush_interval: 50ms
log:
  level: warn
http:
  listen: 127.0.0.1:0
`,
    );
    let previous = new Map<string, Set<number>>();
    let killedWithData = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const daemon = new DaemonProcess(['-c', configPath]);
        try {
          if (round % 4 === 3) {
            // During start-up: opening, migrating, loading the cursor.
            await sleep(Math.floor(Math.random() * 400));
          } else {
            // While polling, committing batches and forwarding: once this run stored something.
            const before = total(previous);
            await waitFor(() => total(storedSoFar(dbPath)) > before, `round ${round}: a commit`);
            await sleep(Math.floor(Math.random() * 500));
          }
          daemon.signal('SIGKILL');
          await daemon.exited;
        } finally {
          await daemon.kill();
        }
        if (!existsSync(dbPath)) {
          // Killed before the database file was created: nothing was ever committed.
          assert.equal(previous.size, 0, `round ${round}: the database file disappeared`);
          continue;
        }
        assert.deepEqual(integrityCheckFile(dbPath), ['ok'], `round ${round}: integrity_check`);
        const current = previous.size === 0 ? storedSoFar(dbPath) : storedKeys(dbPath);
        for (const [channel, before] of previous) {
          const now = current.get(channel) ?? new Set<number>();
          for (const ts of before)
            assert.ok(now.has(ts), `round ${round}: committed reading ${channel}@${ts} lost`);
        }
        if (total(current) > total(previous)) killedWithData++;
        previous = current;
      }
      assert.ok(killedWithData >= (ROUNDS * 3) / 4, `rounds killed while storing: ${killedWithData}`);

      // One clean run with no new readings: InfluxDB catches up with SQLite.
      await fleet.stop();
      fleet = null;
      const stored = storedKeys(dbPath);
      const expected = total(stored);
      const daemon = new DaemonProcess(['-c', configPath, '--log-level', 'info']);
      try {
        await waitFor(
          () => daemon.logged('started: discovering plugs and polling') !== undefined,
          'daemon up',
        );
        // Polled until it holds as many distinct readings as SQLite (the deadline only ends a hang).
        let inVm = new Map<string, Set<number>>();
        for (let i = 0; i < 600; i++) {
          inVm = await timestampsPerDevice(vm);
          if (total(inVm) >= expected) break;
          await sleep(200);
        }
        daemon.signal('SIGTERM');
        assert.equal(await daemon.exited, 0, daemon.stderr);
        assert.deepEqual(
          new Map([...inVm].sort(([a], [b]) => a.localeCompare(b))),
          new Map([...stored].sort(([a], [b]) => a.localeCompare(b))),
          'InfluxDB holds exactly the readings SQLite holds',
        );
      } finally {
        await daemon.kill();
      }
      assert.deepEqual(integrityCheckFile(dbPath), ['ok']);
      assert.deepEqual(outboxFileSummary(dbPath).pendingBySink, { influx: 0 }, 'nothing left to forward');
    } finally {
      await fleet?.stop();
      await vm.close();
    }
  });
});
