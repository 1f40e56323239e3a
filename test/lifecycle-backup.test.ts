/**
 * Backup and restore on real SQLite files: online backups while the writer is busy (from another
 * connection, as `kasa-monitor backup` takes them, and on the writer's own connection, as the
 * daemon's schedule does), rotation of scheduled backups, and restore through the CLI, which must
 * refuse while a real daemon process has the database open.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger } from '../src/log/logger.js';
import { unguarded } from '../src/resilience/index.js';
import { fileOps } from '../src/storage/file-ops.js';
import { DataLifecycle } from '../src/storage/lifecycle.js';
import {
  backupDatabaseFile,
  openReadingsReader,
  SCHEDULED_BACKUP,
  type SqliteOptions,
  SqliteStore,
} from '../src/storage/sqlite/index.js';
import { DaemonProcess, runCliProcess } from './helpers/cli.js';
import { testStoreOptions } from './helpers/sqlite.js';
import { integrityCheckFile } from './helpers/sqlite-files.js';
import { tempRoot } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const root = tempRoot('kasa-lifecycle-backup-');
let counter = 0;

const T0 = Date.UTC(2026, 5, 1);
const CHANNELS = Array.from({ length: 20 }, (_, i) => `BK${String(i).padStart(2, '0')}`);

function options(): SqliteOptions {
  return testStoreOptions(join(root, `db-${++counter}`, 'kasa.db'), { timeZone: 'UTC' });
}

/** Round `round` of polls of every channel, 10 s apart. */
function round(n: number): Reading[] {
  return CHANNELS.map((channel, i) => ({
    channel,
    tsMs: T0 + n * 10_000,
    powerMw: 50_000 + i,
    voltageMv: 230_000,
    currentMa: 217,
    totalWh: Math.floor(n / 7),
  }));
}

/** Writes rounds of readings, one batch after another, until stopped; tracks what is committed. */
class BusyWriter {
  committedRounds = 0;
  #stop = false;
  readonly #done: Promise<void>;

  constructor(store: SqliteStore, roundsPerBatch = 50) {
    this.#done = (async () => {
      while (!this.#stop) {
        const batch: Reading[] = [];
        for (let i = 0; i < roundsPerBatch; i++) batch.push(...round(this.committedRounds + i));
        await store.writeBatch(batch);
        this.committedRounds += roundsPerBatch;
      }
    })();
  }

  /** Every reading committed so far has a time before this. */
  get committedBeforeMs(): number {
    return T0 + this.committedRounds * 10_000;
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

function countReadings(path: string, toMs?: number): { count: number; lastMs: number } {
  const reader = openReadingsReader(path);
  try {
    let count = 0;
    let lastMs = 0;
    for (const r of reader.readings(toMs === undefined ? {} : { toMs })) {
      count++;
      lastMs = Math.max(lastMs, r.tsMs);
    }
    return { count, lastMs };
  } finally {
    reader.close();
  }
}

describe('online backups', () => {
  test('a backup taken while the writer is busy passes integrity_check and holds every reading committed before it started', async () => {
    const opts = options();
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    const writer = new BusyWriter(store);
    try {
      await waitFor(() => writer.committedRounds >= 4000, '80,000 readings committed');
      const committedBefore = writer.committedBeforeMs;
      const rounds = writer.committedRounds;
      const dest = join(root, `busy-${counter}.db`);
      // Small steps, so that the daemon's writes land between them and SQLite restarts the copy.
      const result = await backupDatabaseFile({
        source: opts.path,
        dest,
        files: fileOps(unguarded),
        stepPages: 8,
      });
      const roundsAfter = writer.committedRounds;
      await writer.stop();
      assert.ok(roundsAfter > rounds, 'the writer kept committing during the backup');
      assert.deepEqual(integrityCheckFile(dest), ['ok']);
      assert.deepEqual(countReadings(dest, committedBefore).count, rounds * CHANNELS.length);
      assert.ok(result.readings >= rounds * CHANNELS.length);
      assert.ok(!existsSync(`${dest}-wal`), 'the copy is one self-contained file');
    } finally {
      await writer.stop();
      await store.stop();
    }
  });

  test('scheduled backups run on the writer’s connection while it writes, are checked, and only the last N are kept', async () => {
    const opts = options();
    const dir = join(root, `scheduled-${counter}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'kasa-monitor-20200101T000000Z-manual.db'), 'a manual backup is never rotated');
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    const writer = new BusyWriter(store);
    let clock = Date.UTC(2026, 10, 26, 3);
    const lifecycle = new DataLifecycle(
      store,
      {
        retention: { rawMs: null, minuteMs: null, hourMs: null, dayMs: null, maxBytes: null },
        maintenanceIntervalMs: 3_600_000,
        backupSchedule: null,
        backupKeep: 2,
        backupDirectory: dir,
        timeZone: 'UTC',
      },
      createSilentLogger(),
      unguarded,
      { now: () => clock },
    );
    try {
      await waitFor(() => writer.committedRounds >= 2000, '40,000 readings committed');
      const taken: { path: string; rounds: number }[] = [];
      for (let i = 0; i < 3; i++) {
        clock += 86_400_000;
        const rounds = writer.committedRounds;
        const result = await lifecycle.backupNow();
        taken.push({ path: result.path, rounds });
        assert.ok(result.readings >= rounds * CHANNELS.length);
      }
      await writer.stop();
      const names = readdirSync(dir).sort();
      assert.deepEqual(
        names.filter((n) => SCHEDULED_BACKUP.test(n)),
        ['kasa-monitor-20261128T030000Z.db', 'kasa-monitor-20261129T030000Z.db'],
      );
      assert.ok(names.includes('kasa-monitor-20200101T000000Z-manual.db'));
      for (const { path, rounds } of taken.slice(1)) {
        assert.deepEqual(integrityCheckFile(path), ['ok']);
        assert.equal(countReadings(path, T0 + rounds * 10_000).count, rounds * CHANNELS.length);
      }
      assert.equal(lifecycle.stats().backups.taken, 3);
    } finally {
      await writer.stop();
      await lifecycle.stop();
      await store.stop();
    }
  });
});

describe('restore', () => {
  test('restore round-trips a backup and keeps the replaced database beside it', async () => {
    const opts = options();
    const config = join(root, `restore-${counter}.yaml`);
    writeFileSync(config, `storage:\n  sqlite:\n    path: ${opts.path}\n`);
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    const backup = join(root, `roundtrip-${counter}.db`);
    try {
      for (let n = 0; n < 100; n++) await store.writeBatch(round(n));
      const made = await runCliProcess(['backup', '-c', config, '--to', backup]);
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /backup written: .*2000 readings of 20 channels; integrity_check ok/);
      for (let n = 100; n < 150; n++) await store.writeBatch(round(n));
    } finally {
      await store.stop();
    }
    const restored = await runCliProcess(['restore', '-c', config, backup]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /the replaced database is kept at (.*\.replaced-\d{8}T\d{6}Z)/);
    const replaced = /kept at (\S+)/.exec(restored.stdout)?.[1] ?? '';
    assert.deepEqual(countReadings(opts.path), { count: 2000, lastMs: T0 + 99 * 10_000 });
    assert.deepEqual(countReadings(replaced), { count: 3000, lastMs: T0 + 149 * 10_000 });
    // The restored database opens for writing again, rollups and all.
    const again = new SqliteStore(opts, createSilentLogger());
    await again.start();
    try {
      assert.equal((await again.writeBatch(round(100))).inserted, CHANNELS.length);
    } finally {
      await again.stop();
    }
  });

  test('restore checks the file first and refuses while the daemon runs', async () => {
    const dir = join(root, `daemon-${++counter}`);
    mkdirSync(dir, { recursive: true });
    const dbPath = join(dir, 'kasa.db');
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      `discovery:\n  enabled: false\nhttp:\n  listen: 127.0.0.1:0\nstorage:\n  sqlite:\n    path: ${dbPath}\n`,
    );
    const opts = { ...options(), path: dbPath };
    const store = new SqliteStore(opts, createSilentLogger());
    await store.start();
    await store.writeBatch(round(0));
    await store.stop();
    const backup = join(dir, 'backup.db');
    assert.equal((await runCliProcess(['backup', '-c', config, '--to', backup])).code, 0);

    const garbage = join(dir, 'not-a-database.db');
    writeFileSync(garbage, 'x'.repeat(8192));
    const bad = await runCliProcess(['restore', '-c', config, garbage]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot be restored: not a SQLite database/);

    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(
        () => daemon.logged('started: discovering plugs and polling') !== undefined,
        'the daemon started',
      );
      const refused = await runCliProcess(['restore', '-c', config, backup]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /is open in another process: is the daemon running\?/);
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);
    } finally {
      await daemon.kill();
    }
    assert.ok(!readdirSync(dir).some((n) => n.includes('.replaced-')), 'nothing was replaced while it ran');
    const ok = await runCliProcess(['restore', '-c', config, backup]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(countReadings(dbPath).count, CHANNELS.length);
  });
});
