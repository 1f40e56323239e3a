/**
 * Recovery on real parts (SqliteStore's writer worker, the reader pool, the writer and its queue,
 * the standard SQLite checks): a writer connection whose worker died is reopened and the held
 * readings are written; a database that quick_check finds damaged while running is moved aside
 * (after every connection closed) and a fresh one takes its place, with an alert naming where the
 * old one went.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ChannelInfo } from '../src/domain/channel.js';
import type { Reading } from '../src/domain/reading.js';
import { createSilentLogger } from '../src/log/logger.js';
import type { DaemonStatus } from '../src/main.js';
import { BoundedQueue } from '../src/queue/bounded-queue.js';
import {
  openReadingsReader,
  ReaderPool,
  type SqliteOptions,
  SqliteStore,
} from '../src/storage/sqlite/index.js';
import { Writer } from '../src/storage/writer.js';
import {
  createChecks,
  EventLoopLag,
  type HealthInputs,
  quarantineDatabase,
  type RecoveryExhaustedError,
  Supervisor,
  type SupervisorOptions,
  startStore,
} from '../src/supervisor/index.js';
import { corruptPages, overwriteBytes } from './helpers/damage.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { createSyntheticDatabase } from './helpers/sqlite-files.js';
import { storedCount } from './helpers/stored.js';
import { tempRoot } from './helpers/temp.js';
import { sleep, waitFor } from './helpers/wait.js';
import { startWebhookReceiver } from './helpers/webhook.js';
import { faultyWriter, writerFaults } from './helpers/writer-faults.js';

const root = tempRoot('kasa-supervisor-recovery-');

const OPTIONS: SupervisorOptions = {
  intervalMs: 60_000,
  alertAfter: 1,
  webhookUrl: null,
  quickCheckIntervalMs: 1,
  minFreeDiskMb: 0,
  maxWalMb: 256,
  maxEventLoopLagMs: 5000,
  maxMemoryMb: 4096,
  maxPollErrorRate: 0.5,
  maxInfluxLagMs: 60_000,
  recoveryAttempts: 3,
  recoveryBackoffMs: 100,
  recoveryBackoffMaxMs: 1000,
};

const CHANNEL: ChannelInfo = {
  id: 'PLUG1',
  alias: 'kettle',
  model: 'HS110(EU)',
  parentId: null,
  parentAlias: null,
};

function sqlite(path: string): SqliteOptions {
  return sqliteOptions(path, { busyTimeoutMs: 100 });
}

/** The real storage parts plus a supervisor running the SQLite checks on them. */
async function rig(path: string, webhookUrl: string) {
  const logger = createSilentLogger();
  // The writer worker with fault injection: the crash test makes it die.
  const store = new SqliteStore(sqlite(path), logger, faultyWriter);
  await store.start();
  await store.upsertChannels([CHANNEL]);
  const readers = new ReaderPool(
    { path, size: 2, maxOverflow: 2, timeoutMs: 5000, recycleMs: 3_600_000 },
    logger,
  );
  await readers.start();
  const queue = new BoundedQueue<Reading>({ capacity: 100_000, overflow: 'drop-oldest' }, logger);
  const writer = new Writer(queue, store, { batchSize: 50, flushIntervalMs: 20 }, logger, () => 20);
  writer.start();
  const status = () =>
    ({
      writer: writer.stats(),
      queue: queue.stats(),
      retries: { operations: {} },
    }) as unknown as DaemonStatus;
  const lag = new EventLoopLag();
  const inputs: HealthInputs = {
    status,
    databasePath: path,
    storeState: () => store.state,
    readers,
    influxUrl: () => null,
    pollIntervalMs: () => 1000,
    discoveryIntervalMs: () => 1000,
    lag,
    limits: () => OPTIONS,
  };
  const exhausted: RecoveryExhaustedError[] = [];
  const supervisor = new Supervisor({
    status,
    databasePath: path,
    influxUrl: () => null,
    pollIntervalMs: () => 1000,
    discoveryIntervalMs: () => 1000,
    targets: {
      store,
      readers,
      discovery: { stop: async () => undefined, start: () => undefined },
      poller: { stop: async () => undefined, start: () => undefined },
    },
    options: { ...OPTIONS, webhookUrl },
    logger,
    onExhausted: (error) => exhausted.push(error),
    checks: createChecks(inputs).filter((c) => c.name === 'sqlite' || c.name === 'integrity'),
  });
  let ts = Date.UTC(2026, 0, 1);
  let offered = 0;
  const producer = setInterval(() => {
    for (let i = 0; i < 5; i++) {
      queue.offer({
        channel: CHANNEL.id,
        tsMs: ts++,
        powerMw: 1000,
        voltageMv: 230_000,
        currentMa: 4,
        totalWh: 1,
      });
      offered++;
    }
  }, 5);
  return {
    store,
    readers,
    writer,
    queue,
    supervisor,
    exhausted,
    offered: () => offered,
    async close() {
      clearInterval(producer);
      await supervisor.stop();
      await writer.stop(10_000);
      await readers.stop();
      await store.stop();
      lag.stop();
    },
    stopProducing() {
      clearInterval(producer);
    },
  };
}

describe('recovery on real parts', () => {
  test('quarantineDatabase moves the database with its -wal, -shm and -journal under one new name', () => {
    const dir = join(root, 'moves');
    const path = join(dir, 'kasa.db');
    createSyntheticDatabase(sqlite(path), {
      channels: [{ id: 'X', alias: 'x' }],
      startMs: 0,
      perChannel: 10,
      intervalMs: 1000,
    });
    for (const suffix of ['-wal', '-shm', '-journal'])
      writeFileSync(`${path}${suffix}`, `content of ${suffix}`);
    const size = statSync(path).size;
    const q = quarantineDatabase(path, Date.UTC(2026, 10, 26, 14, 3, 5));
    assert.equal(q.movedTo, `${path}.corrupt-2026-11-26T14-03-05Z`);
    assert.deepEqual(
      q.files.map(([from, to]) => [from.slice(dir.length + 1), to.slice(dir.length + 1)]),
      [
        ['kasa.db', 'kasa.db.corrupt-2026-11-26T14-03-05Z'],
        ['kasa.db-journal', 'kasa.db.corrupt-2026-11-26T14-03-05Z-journal'],
        ['kasa.db-shm', 'kasa.db.corrupt-2026-11-26T14-03-05Z-shm'],
        ['kasa.db-wal', 'kasa.db.corrupt-2026-11-26T14-03-05Z-wal'],
      ],
    );
    for (const suffix of ['', '-wal', '-shm', '-journal']) assert.ok(!existsSync(`${path}${suffix}`));
    assert.equal(statSync(q.movedTo).size, size);
    assert.equal(readFileSync(`${q.movedTo}-wal`, 'utf8'), 'content of -wal');
    createSyntheticDatabase(sqlite(path), { channels: [], startMs: 0, perChannel: 0, intervalMs: 1 });
    const again = quarantineDatabase(path, Date.UTC(2026, 10, 26, 14, 3, 5));
    assert.equal(again.movedTo, `${path}.corrupt-2026-11-26T14-03-05Z-2`, 'never overwrites an earlier copy');
  });

  test('at start, a SQLite file with a damaged header is moved aside; a file that never was a database is not', async () => {
    const dir = join(root, 'start');
    const damaged = join(dir, 'damaged.db');
    createSyntheticDatabase(sqlite(damaged), {
      channels: [{ id: 'X', alias: 'x' }],
      startMs: 0,
      perChannel: 100,
      intervalMs: 1000,
    });
    // Keep the magic string, break the page size and what follows.
    overwriteBytes(damaged, Buffer.alloc(84, 0xff), 16);
    const logger = createSilentLogger();
    const started = await startStore(() => new SqliteStore(sqlite(damaged), logger), damaged, logger);
    try {
      assert.ok(started.quarantined !== null, 'moved aside');
      assert.match(started.quarantined.reason, /SQLITE_NOTADB|not a database|malformed/);
      assert.ok(existsSync(started.quarantined.files.movedTo));
      assert.equal(started.store.state, 'open', 'a fresh database in its place');
    } finally {
      await started.store.stop();
    }

    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'this is not a database, just text '.repeat(200));
    await assert.rejects(
      startStore(() => new SqliteStore(sqlite(text), logger), text, logger),
      /not a database/,
    );
    assert.equal(readFileSync(text, 'utf8').slice(0, 12), 'this is not ', 'left where it was, untouched');
  });

  test("the writer's worker dies: SQLite is failed, the connection is reopened, the held readings are written", async () => {
    const hook = await startWebhookReceiver();
    const path = join(root, 'crash', 'kasa.db');
    const r = await rig(path, hook.url);
    try {
      await waitFor(() => r.writer.stats().written > 100, 'readings written');
      assert.equal((await r.supervisor.refresh()).checks['sqlite']?.status, 'ok');
      await writerFaults(path).crashOnNextCall();
      // The store's next call (this one, or a batch of the writer's) meets the crash; either way this
      // one settles only once the worker is dead.
      await r.store.loadCursor('crash-probe').catch(() => undefined);
      assert.equal(r.store.state, 'failed');
      await waitFor(() => r.writer.stats().failedBatches > 0, 'a write failed');

      const report = await r.supervisor.refresh();
      assert.equal(report.status, 'failed');
      assert.equal(report.checks['sqlite']?.status, 'failed');
      assert.match(report.checks['sqlite']?.reason ?? '', /the writer's connection is lost/);
      assert.equal(report.checks['sqlite']?.recovery, 'reopen-sqlite');
      await r.supervisor.recovery.settle();
      assert.equal(r.store.state, 'open', 'reopened');
      const writtenAtReopen = r.writer.stats().written;
      await waitFor(() => r.writer.stats().written > writtenAtReopen + 100, 'writes go on');
      const after = await r.supervisor.refresh();
      assert.equal(after.checks['sqlite']?.status, 'ok', after.checks['sqlite']?.reason);
      assert.equal(after.recovery['reopen-sqlite']?.succeeded, 1);
      await r.supervisor.alerts.flush();
      assert.deepEqual(
        hook.received.map((a) => [a.check, a.event]),
        [
          ['sqlite', 'alert'],
          ['sqlite', 'resolved'],
        ],
      );
      r.stopProducing();
      await waitFor(() => r.queue.size === 0 && r.writer.stats().inFlight === 0, 'drained');
      const s = r.writer.stats();
      assert.equal(
        s.written + s.duplicates,
        r.offered(),
        'every reading offered is stored, none lost to the crash',
      );
      assert.deepEqual(r.exhausted, []);
    } finally {
      await r.close();
      await hook.close();
    }
    assert.equal(storedCount(path), (await Promise.resolve(r.writer.stats())).written);
  });

  test('quick_check finds the running database damaged: it is moved aside, a fresh one is created, the alert says where', async () => {
    const hook = await startWebhookReceiver();
    const path = join(root, 'runtime', 'kasa.db');
    createSyntheticDatabase(sqlite(path), {
      channels: [{ id: 'OLD', alias: 'old' }],
      startMs: 0,
      perChannel: 60_000,
      intervalMs: 60_000,
    });
    const r = await rig(path, hook.url);
    try {
      await waitFor(() => r.writer.stats().written > 50, 'readings written');
      const first = await r.supervisor.refresh();
      assert.equal(first.checks['integrity']?.status, 'ok');
      const size = statSync(path).size;
      corruptPages(path);

      const report = await r.supervisor.refresh();
      assert.equal(report.checks['integrity']?.status, 'failed');
      assert.match(
        report.checks['integrity']?.reason ?? '',
        /quick_check found damage|database disk image is malformed/,
      );
      assert.equal(report.checks['integrity']?.recovery, 'quarantine-database');
      await r.supervisor.recovery.settle();

      await r.supervisor.alerts.flush();
      const incident = hook.received.find((a) => a.check === 'database');
      assert.ok(incident !== undefined, 'the database alert');
      const movedTo = String(incident.details['moved_to']);
      assert.match(incident.reason, /moved to .*kasa\.db\.corrupt-.*; a fresh database was created/);
      assert.ok(statSync(movedTo).size >= size, 'the damaged file, kept');
      assert.equal(r.store.state, 'open');
      assert.equal(r.readers.stats().mode, 'pool');
      const writtenAfter = r.writer.stats().written;
      await waitFor(() => r.writer.stats().written > writtenAfter + 50, 'writes go on into the fresh file');
      const later = await r.supervisor.refresh();
      assert.equal(later.checks['integrity']?.status, 'ok', 'the fresh file passes quick_check');
      assert.equal(later.database.quarantined[0]?.moved_to, movedTo);
      const reader = openReadingsReader(path);
      try {
        assert.deepEqual(
          reader.listChannels().map((c) => c.deviceId),
          [CHANNEL.id],
          'a fresh database: the old channel is gone, the writer recreates its own',
        );
      } finally {
        reader.close();
      }
      assert.deepEqual(r.exhausted, []);
    } finally {
      await r.close();
      await hook.close();
    }
  });
});

describe('InfluxDB client recovery', () => {
  test('recreates the Influx client when InfluxDB answers but writes fail, and never escalates it', async () => {
    // A real loopback HTTP server stands in for InfluxDB's /health: the server is up.
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => res.writeHead(200).end('OK'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    const url = `http://127.0.0.1:${address.port}`;
    try {
      const logger = createSilentLogger();
      // Writes fail: the influx.write breaker is open while the forwarder still runs.
      const status = () =>
        ({
          influx: { running: true, lagMs: 1000, queued: 10, written: 0, lastWriteAtMs: null, lastError: 'x' },
          retries: { operations: { 'influx.write': { breaker: { state: 'open' } } } },
        }) as unknown as DaemonStatus;
      let recreated = 0;
      const exhausted: RecoveryExhaustedError[] = [];
      const inputs: HealthInputs = {
        status,
        databasePath: join(root, 'unused.db'),
        storeState: () => 'open',
        readers: {
          ping: async () => ({ channels: 0, ms: 0 }),
          quickCheck: async () => ['ok'],
          stats: () => ({}) as never,
        },
        influxUrl: () => url,
        pollIntervalMs: () => 1000,
        discoveryIntervalMs: () => 1000,
        lag: new EventLoopLag(),
        limits: () => OPTIONS,
      };
      const supervisor = new Supervisor({
        status,
        databasePath: inputs.databasePath,
        influxUrl: inputs.influxUrl,
        pollIntervalMs: () => 1000,
        discoveryIntervalMs: () => 1000,
        targets: {
          store: { state: 'open', reopen: async () => undefined, stop: async () => undefined },
          readers: {
            ...inputs.readers,
            reopen: async () => undefined,
            suspend: async () => undefined,
            resume: async () => undefined,
          },
          discovery: { stop: async () => undefined, start: () => undefined },
          poller: { stop: async () => undefined, start: () => undefined },
          influx: { recreateClient: () => recreated++ },
        },
        options: { ...OPTIONS, recoveryAttempts: 2, recoveryBackoffMs: 1, recoveryBackoffMaxMs: 1 },
        logger,
        onExhausted: (error) => exhausted.push(error),
        checks: createChecks(inputs).filter((c) => c.name === 'influx'),
      });
      for (let i = 0; i < 6; i++) {
        await supervisor.refresh();
        await sleep(5);
      }
      assert.ok(recreated >= 1, 'the client was recreated');
      assert.equal(exhausted.length, 0, 'InfluxDB trouble never ends the daemon');
      assert.equal(supervisor.report().checks['influx']?.status, 'degraded');
    } finally {
      server.close();
    }
  });
});
