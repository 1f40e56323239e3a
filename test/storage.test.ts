import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ChannelInfo } from '../src/domain/channel.js';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger } from '../src/log/logger.js';
import { isStorageError, KasaStorageCode } from '../src/storage/errors.js';
import {
  openReadingsReader,
  SCHEMA_VERSION,
  type SqliteOptions,
  SqliteStore,
  type StoredReading,
} from '../src/storage/sqlite/index.js';
import { captureLogger } from './helpers/capture-logger.js';
import { rejectsWith } from './helpers/rejections.js';
import { sqliteOptions, withStore } from './helpers/sqlite.js';
import { storedReadings } from './helpers/stored.js';
import { tempRoot } from './helpers/temp.js';

const root = tempRoot('kasa-storage-test-');
let fileCounter = 0;

function options(overrides: Partial<SqliteOptions> = {}): SqliteOptions {
  // A subdirectory that does not exist yet: start() must create it.
  return sqliteOptions(join(root, `db-${++fileCounter}`, 'kasa.db'), { synchronous: 'FULL', ...overrides });
}

const T0 = Date.UTC(2026, 10, 26, 14, 3, 5, 120);

function reading(channel: string, tsMs: number, powerMw = 12_345): Reading {
  return { channel, tsMs, powerMw, voltageMv: 230_123, currentMa: 54, totalWh: 98_765 };
}

const plug: ChannelInfo = {
  id: 'PLUG1',
  alias: 'kettle',
  model: 'HS110(EU)',
  parentId: null,
  parentAlias: null,
};
const strip = 'STRIP';
const outlets: ChannelInfo[] = [0, 1, 2].map((i) => ({
  id: `${strip}0${i}`,
  alias: `desk ${i}`,
  model: 'HS300(US)',
  parentId: strip,
  parentAlias: 'desk strip',
}));

describe('schema and migrations', () => {
  test('start creates the directory and the schema; a second start migrates nothing and keeps the data', async () => {
    const opts = options();
    const first = captureLogger();
    const store = new SqliteStore(opts, first.logger);
    await store.start();
    await store.writeBatch([reading('PLUG1', T0)]);
    await store.stop();
    assert.equal(first.lines().find((l) => l['msg'] === 'SQLite store open')?.['migrated'], SCHEMA_VERSION);

    const second = captureLogger();
    const again = new SqliteStore(opts, second.logger);
    await again.start();
    await again.stop();
    const opened = second.lines().find((l) => l['msg'] === 'SQLite store open');
    assert.equal(opened?.['migrated'], 0);
    assert.equal(opened?.['schema'], SCHEMA_VERSION);
    assert.equal(storedReadings(opts.path).length, 1);
  });

  test('a database written by a newer kasa-monitor is refused at start with a permanent error', async () => {
    const opts = options();
    await withStore(opts, async () => {});
    // user_version lives at byte 60 of the header (big-endian); a clean close checkpointed the WAL.
    const file = await open(opts.path, 'r+');
    const version = Buffer.alloc(4);
    version.writeUInt32BE(SCHEMA_VERSION + 1);
    await file.write(version, 0, 4, 60);
    await file.close();
    const store = new SqliteStore(opts, createSilentLogger());
    const error = await rejectsWith(store.start(), KasaStorageCode.schemaTooNew, false);
    assert.match(error.message, /newer/);
    await store.stop();
    assert.throws(
      () => openReadingsReader(opts.path),
      (e) => isStorageError(e) && e.code === 'KASA_SCHEMA_TOO_NEW',
    );
  });

  test('a file that is not a database fails start with a permanent SQLITE_NOTADB error and can be stopped', async () => {
    const opts = options({ path: join(root, 'not-a-db.db') });
    writeFileSync(opts.path, 'this is not a database\n'.repeat(400));
    const store = new SqliteStore(opts, createSilentLogger());
    const error = await rejectsWith(store.start(), 'SQLITE_NOTADB', false);
    assert.ok(error.cause instanceof Error, 'the driver error is kept as cause');
    await store.stop();
    await store.stop();
  });

  test('invalid options are rejected before anything is opened', async () => {
    const store = new SqliteStore(
      options({ journalMode: 'WAL; DROP TABLE readings' as SqliteOptions['journalMode'] }),
      createSilentLogger(),
    );
    await assert.rejects(store.start(), (e) => isStorageError(e) && e.code === KasaStorageCode.badOptions);
  });
});

describe('SqliteStore writes', () => {
  test('a replayed batch stores nothing twice and reports the duplicates', async () => {
    const opts = options();
    const batch = [reading('PLUG1', T0), reading('PLUG1', T0 + 10_000), reading('STRIP00', T0)];
    await withStore(opts, async (store) => {
      assert.deepEqual(await store.writeBatch(batch), { inserted: 3, duplicates: 0, invalid: 0 });
      assert.deepEqual(await store.writeBatch(batch), { inserted: 0, duplicates: 3, invalid: 0 });
      // Partly new: only the new reading is stored.
      const mixed = [...batch, reading('PLUG1', T0 + 20_000)];
      assert.deepEqual(await store.writeBatch(mixed), { inserted: 1, duplicates: 3, invalid: 0 });
    });
    assert.equal(storedReadings(opts.path).length, 4);
  });

  test('readings round-trip exactly in canonical integer units', async () => {
    const opts = options();
    const written: Reading[] = [
      { channel: 'PLUG1', tsMs: T0, powerMw: 0, voltageMv: 0, currentMa: 0, totalWh: 0 },
      {
        channel: 'PLUG1',
        tsMs: T0 + 1,
        powerMw: 3_680_000,
        voltageMv: 241_999,
        currentMa: 15_999,
        totalWh: 2_147_483_648,
      },
      {
        channel: 'PLUG1',
        tsMs: T0 + 2,
        powerMw: -1,
        voltageMv: 1,
        currentMa: 127,
        totalWh: 9_007_199_254_740_991,
      },
      {
        channel: 'STRIP01',
        tsMs: 1,
        powerMw: 32_768,
        voltageMv: 8_388_608,
        currentMa: 65_536,
        totalWh: 281_474_976_710_656,
      },
    ];
    await withStore(opts, async (store) => {
      await store.upsertChannels([plug, ...outlets]);
      await store.writeBatch(written);
    });
    const aliasOf = new Map([plug, ...outlets].map((c) => [c.id, c.alias]));
    const expected: StoredReading[] = [...written]
      .sort((a, b) => a.tsMs - b.tsMs)
      .map((r) => ({
        tsMs: r.tsMs,
        deviceId: r.channel,
        alias: aliasOf.get(r.channel) ?? '',
        powerMw: r.powerMw,
        voltageMv: r.voltageMv,
        currentMa: r.currentMa,
        totalWh: r.totalWh,
      }));
    assert.deepEqual(storedReadings(opts.path), expected);
  });

  test('a reading for an unknown channel creates a minimal row that discovery later fills in, keeping the id', async () => {
    const opts = options();
    await withStore(opts, async (store) => {
      await store.writeBatch([reading('NEWPLUG', T0)]);
      let reader = openReadingsReader(opts.path);
      assert.deepEqual(
        reader.listChannels().map((c) => [c.deviceId, c.alias, c.model, c.parentId, c.firstSeenMs]),
        [['NEWPLUG', '', '', null, T0]],
      );
      reader.close();
      await store.upsertChannels([
        { id: 'NEWPLUG', alias: 'fridge', model: 'HS110(EU)', parentId: null, parentAlias: null },
      ]);
      await store.writeBatch([reading('NEWPLUG', T0 + 10_000)]);
      await store.upsertChannels([
        { id: 'NEWPLUG', alias: 'freezer', model: 'HS110(EU)', parentId: null, parentAlias: null },
      ]);
      reader = openReadingsReader(opts.path);
      const channels = reader.listChannels();
      assert.deepEqual(
        channels.map((c) => [c.deviceId, c.alias, c.model, c.firstSeenMs]),
        [['NEWPLUG', 'freezer', 'HS110(EU)', T0]],
      );
      // Both readings, old and new, hang off the same channel row and show its current alias.
      assert.deepEqual(
        [...reader.readings()].map((r) => [r.deviceId, r.alias, r.tsMs]),
        [
          ['NEWPLUG', 'freezer', T0],
          ['NEWPLUG', 'freezer', T0 + 10_000],
        ],
      );
      reader.close();
    });
  });

  test('malformed readings are left out and counted; the rest of the batch is stored', async () => {
    const opts = options();
    await withStore(opts, async (store) => {
      const result = await store.writeBatch([
        reading('PLUG1', T0),
        { ...reading('PLUG1', T0 + 1), powerMw: Number.NaN },
        { ...reading('', T0 + 2) },
        reading('PLUG1', T0 + 3),
      ]);
      assert.deepEqual(result, { inserted: 2, duplicates: 0, invalid: 2 });
    });
    assert.deepEqual(
      storedReadings(opts.path).map((r) => r.tsMs),
      [T0, T0 + 3],
    );
  });

  test('calls after stop() reject with KASA_NOT_OPEN and stop() is idempotent', async () => {
    const store = new SqliteStore(options(), createSilentLogger());
    await rejectsWith(store.writeBatch([reading('PLUG1', T0)]), KasaStorageCode.notOpen, false);
    await store.start();
    await Promise.all([store.stop(), store.stop()]);
    await rejectsWith(store.writeBatch([reading('PLUG1', T0)]), KasaStorageCode.notOpen, false);
    await rejectsWith(store.upsertChannels([plug]), KasaStorageCode.notOpen, false);
  });

  test('journal modes other than WAL work too', async () => {
    const opts = options({ journalMode: 'DELETE', synchronous: 'NORMAL', tempStore: 'FILE' });
    await withStore(opts, async (store) => {
      assert.deepEqual(await store.writeBatch([reading('PLUG1', T0)]), {
        inserted: 1,
        duplicates: 0,
        invalid: 0,
      });
    });
    assert.equal(storedReadings(opts.path).length, 1);
  });
});

describe('readings reader', () => {
  // Three channels with interleaved timestamps, written out of order.
  async function populated(): Promise<string> {
    const opts = options();
    await withStore(opts, async (store) => {
      await store.upsertChannels([
        plug,
        ...outlets,
        { id: 'PLUG2', alias: 'desk 1', model: 'HS110', parentId: null, parentAlias: null },
      ]);
      const batch: Reading[] = [];
      for (let i = 4; i >= 0; i--) {
        batch.push(reading('PLUG1', T0 + i * 10_000 + 5, i));
        batch.push(reading('STRIP00', T0 + i * 10_000, 100 + i));
        batch.push(reading('STRIP02', T0 + i * 10_000 + 5, 200 + i));
      }
      await store.writeBatch(batch);
    });
    return opts.path;
  }

  test('orders readings oldest first across channels, ties in device id order', async () => {
    const path = await populated();
    const rows = storedReadings(path);
    assert.equal(rows.length, 15);
    const keys = rows.map((r) => [r.tsMs, r.deviceId] as const);
    const sorted = [...keys].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    assert.deepEqual(keys, sorted);
    assert.deepEqual(
      rows.slice(0, 3).map((r) => [r.deviceId, r.alias, r.powerMw]),
      [
        ['STRIP00', 'desk 0', 100],
        ['PLUG1', 'kettle', 0],
        ['STRIP02', 'desk 2', 200],
      ],
    );
  });

  test('filters by time: from is inclusive, to is exclusive', async () => {
    const path = await populated();
    const rows = storedReadings(path, { fromMs: T0 + 10_000, toMs: T0 + 30_005 });
    assert.deepEqual(
      rows.map((r) => [r.tsMs - T0, r.deviceId]),
      [
        [10_000, 'STRIP00'],
        [10_005, 'PLUG1'],
        [10_005, 'STRIP02'],
        [20_000, 'STRIP00'],
        [20_005, 'PLUG1'],
        [20_005, 'STRIP02'],
        [30_000, 'STRIP00'],
      ],
    );
  });

  test('resolves a plug id, an outlet id, a strip id (all its outlets) and a unique alias', async () => {
    const path = await populated();
    const reader = openReadingsReader(path);
    try {
      assert.deepEqual(reader.resolveDevice('PLUG1'), ['PLUG1']);
      assert.deepEqual(reader.resolveDevice('STRIP01'), ['STRIP01']);
      assert.deepEqual(reader.resolveDevice(strip), ['STRIP00', 'STRIP01', 'STRIP02']);
      assert.deepEqual(reader.resolveDevice('kettle'), ['PLUG1']);
      assert.deepEqual(reader.resolveDevice('desk 2'), ['STRIP02']);
      assert.deepEqual(
        reader.resolveDevice('desk strip'),
        ['STRIP00', 'STRIP01', 'STRIP02'],
        'a strip alias selects its outlets',
      );
      const stripRows = [...reader.readings({ channels: reader.resolveDevice(strip) })];
      assert.deepEqual(new Set(stripRows.map((r) => r.deviceId)), new Set(['STRIP00', 'STRIP02']));
      assert.equal(stripRows.length, 10);
      const kettle = [...reader.readings({ channels: reader.resolveDevice('kettle'), fromMs: T0 + 20_000 })];
      assert.deepEqual(
        kettle.map((r) => [r.deviceId, r.powerMw]),
        [
          ['PLUG1', 2],
          ['PLUG1', 3],
          ['PLUG1', 4],
        ],
      );
    } finally {
      reader.close();
    }
  });

  test('an unknown name and an alias shared by two channels are clear errors', async () => {
    const path = await populated();
    const reader = openReadingsReader(path);
    try {
      assert.throws(
        () => reader.resolveDevice('toaster'),
        (e) => isStorageError(e) && e.code === KasaStorageCode.unknownDevice && /toaster/.test(e.message),
      );
      assert.throws(
        () => reader.resolveDevice('desk 1'),
        (e) =>
          isStorageError(e) &&
          e.code === KasaStorageCode.ambiguousDevice &&
          /PLUG2/.test(e.message) &&
          /STRIP01/.test(e.message),
      );
      assert.throws(
        () => reader.readings({ channels: ['NOPE'] }),
        (e) => isStorageError(e) && e.code === 'KASA_UNKNOWN_DEVICE',
      );
    } finally {
      reader.close();
    }
  });

  test('a missing database file is a clear error and is not created', () => {
    const path = join(root, 'missing', 'kasa.db');
    assert.throws(
      () => openReadingsReader(path),
      (e) => isStorageError(e) && e.code === KasaStorageCode.notFound && e.message.includes(path),
    );
    assert.equal(existsSync(path), false);
  });

  test('stopping an iteration early leaves the reader usable', async () => {
    const path = await populated();
    const reader = openReadingsReader(path);
    try {
      for (const _ of reader.readings()) break;
      const iterator = reader.readings()[Symbol.iterator]();
      iterator.next();
      iterator.return?.();
      assert.equal([...reader.readings()].length, 15);
    } finally {
      reader.close();
    }
  });

  test('reads a consistent snapshot while the daemon keeps writing', async () => {
    const opts = options();
    await withStore(opts, async (store) => {
      await store.writeBatch([reading('PLUG1', T0), reading('PLUG2', T0)]);
      const reader = openReadingsReader(opts.path);
      try {
        const seen: StoredReading[] = [];
        for (const row of reader.readings()) {
          seen.push(row);
          // Written after the iteration began: not part of this snapshot, and not blocked by it.
          if (seen.length === 1) await store.writeBatch([reading('PLUG1', T0 + 1), reading('PLUG2', T0 + 1)]);
        }
        assert.equal(seen.length, 2);
        assert.equal([...reader.readings()].length, 4);
      } finally {
        reader.close();
      }
    });
  });
});
