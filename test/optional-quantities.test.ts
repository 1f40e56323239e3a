/**
 * Readings without voltage or current (many newer plugs measure power and energy only): the schema
 * migration of a database written by the previous release keeps every row, and a reading whose
 * voltage/current is null comes out empty (CSV), null (JSON, /api), absent (InfluxDB field, Prometheus
 * series) everywhere, never 0, while a legacy plug's reading is unchanged.
 *
 * Real peers: SQLite files, the built CLI, a real VictoriaMetrics (InfluxDB v2 write API), the HTTP
 * server with a real reader pool on 127.36.0.1. The HTTP server's device list is a fixed snapshot
 * (no smart plug can answer here until the smart simulator exists), fed to the same seam the daemon
 * uses.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { ChannelInfo } from '../src/domain/channel.js';
import type { Reading } from '../src/domain/reading.js';
import { LatestReadings } from '../src/http/latest.js';
import { createSilentLogger } from '../src/log/logger.js';
import { canonicalReading, normaliseRealtime } from '../src/poller/normalise.js';
import { InfluxForwarder, InfluxHttpWriter, readingLine } from '../src/storage/influx/index.js';
import {
  openRollupReader,
  SCHEMA_VERSION,
  type SqliteOptions,
  SqliteStore,
} from '../src/storage/sqlite/index.js';
import { captureLogger } from './helpers/capture-logger.js';
import { runCliProcess } from './helpers/cli.js';
import { fastInfluxPolicy } from './helpers/policies.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { integrityCheckFile, outboxFileSummary } from './helpers/sqlite-files.js';
import { onlineSnapshot, startStandaloneHttp } from './helpers/standalone-http.js';
import { storedReadings } from './helpers/stored.js';
import { tempRoot } from './helpers/temp.js';
import { settledSamplesPerDevice, startVictoria, type Victoria, victoriaSkip } from './helpers/victoria.js';
import { waitFor } from './helpers/wait.js';

const root = tempRoot('kasa-optional-');
let counter = 0;

/** Written by the release at fb04e27 (schema 3) with test/fixtures/make-release-db.mjs. */
const RELEASE_DB = new URL('../../test/fixtures/release-0.1.0-schema3.sqlite', import.meta.url);

function storeOptions(path: string, overrides: Partial<SqliteOptions> = {}): SqliteOptions {
  return sqliteOptions(path, {
    outbox: true,
    lifecycle: { rollups: true, timeZone: 'Europe/Berlin', gapLimitMs: 5 * 60_000 },
    ...overrides,
  });
}

/** `PRAGMA user_version` from the file header (byte 60, big-endian), without opening the database. */
function userVersionOf(path: string): number {
  return readFileSync(path).readUInt32BE(60);
}

/** Every rollup series (stored rows and the tail computed from raw readings) of every channel. */
function rollupsOf(path: string): unknown[] {
  const reader = openRollupReader(path, { timeZone: 'Europe/Berlin', gapLimitMs: 5 * 60_000 });
  try {
    const out: unknown[] = [];
    for (const channel of reader.channels()) {
      for (const tier of ['minute', 'hour', 'day'] as const) {
        out.push([channel, tier, reader.series(channel, tier, 0, Date.UTC(2030, 0, 1))]);
      }
    }
    return out;
  } finally {
    reader.close();
  }
}

describe('schema migration on a database written by the previous release', () => {
  test('every reading, rollup, channel and pending outbox row survives; null voltage can be stored afterwards', async () => {
    const path = join(root, `release-${++counter}.db`);
    copyFileSync(RELEASE_DB, path);
    assert.equal(userVersionOf(path), 3, 'the fixture is a schema-3 file as the release wrote it');
    const readingsBefore = storedReadings(path);
    assert.equal(readingsBefore.length, 556);
    const rollupsBefore = rollupsOf(path);
    const outboxBefore = outboxFileSummary(path);
    assert.ok(
      (outboxBefore.pendingBySink['influx'] ?? 0) > 0,
      'the fixture has readings InfluxDB has not had yet',
    );

    const log = captureLogger();
    const store = new SqliteStore(storeOptions(path), log.logger);
    await store.start();
    try {
      const opened = log.lines().find((l) => l['msg'] === 'SQLite store open');
      assert.equal(opened?.['migrated'], SCHEMA_VERSION - 3, 'the migrations after the release ran');
      assert.deepEqual(integrityCheckFile(path), ['ok'], 'integrity_check on a second connection');
      assert.deepEqual(storedReadings(path), readingsBefore, 'every reading kept, values unchanged');
      assert.deepEqual(rollupsOf(path), rollupsBefore, 'rollups unchanged');
      const cursor = await store.loadCursor('influx');
      assert.equal(
        cursor.pending,
        outboxBefore.pendingBySink['influx'],
        'InfluxDB still gets what it missed',
      );

      const tsMs = Date.UTC(2026, 9, 31, 12, 0, 0, 0);
      const written = await store.writeBatch([
        { channel: 'PLUG0001', tsMs, powerMw: 5000, voltageMv: null, currentMa: null, totalWh: 99 },
      ]);
      assert.equal(written.inserted, 1);
    } finally {
      await store.stop();
    }
    assert.equal(userVersionOf(path), SCHEMA_VERSION);
    const last = storedReadings(path).at(-1);
    assert.deepEqual(last, {
      tsMs: Date.UTC(2026, 9, 31, 12, 0, 0, 0),
      deviceId: 'PLUG0001',
      alias: 'kettle',
      powerMw: 5000,
      voltageMv: null,
      currentMa: null,
      totalWh: 99,
    });
  });

  test('opening the migrated file again migrates nothing and keeps the data', async () => {
    const path = join(root, `release-${++counter}.db`);
    copyFileSync(RELEASE_DB, path);
    const before = storedReadings(path);
    for (const expectMigrated of [SCHEMA_VERSION - 3, 0]) {
      const log = captureLogger();
      const store = new SqliteStore(storeOptions(path), log.logger);
      await store.start();
      await store.stop();
      assert.equal(log.lines().find((l) => l['msg'] === 'SQLite store open')?.['migrated'], expectMigrated);
    }
    assert.deepEqual(storedReadings(path), before);
  });
});

describe('normalising values a plug sent in canonical units', () => {
  test('voltage and current may be absent and stay null; power and energy are required and checked', () => {
    const ok = canonicalReading(
      { powerMw: 1003.4, voltageMv: undefined, currentMa: null, totalWh: 971 },
      'P1',
      7,
    );
    assert.deepEqual(ok, {
      ok: true,
      reading: { channel: 'P1', tsMs: 7, powerMw: 1003, voltageMv: null, currentMa: null, totalWh: 971 },
    });
    const full = canonicalReading(
      { powerMw: 1003, voltageMv: 121_215, currentMa: 33, totalWh: 971 },
      'P1',
      7,
    );
    assert.ok(full.ok && full.reading.voltageMv === 121_215 && full.reading.currentMa === 33);
    const bad = (values: Parameters<typeof canonicalReading>[0]) => {
      const r = canonicalReading(values, 'P1', 7);
      assert.ok(!r.ok, JSON.stringify(values));
      return r.reason;
    };
    assert.equal(bad({ powerMw: undefined, voltageMv: null, currentMa: null, totalWh: 1 }), 'malformed');
    assert.equal(bad({ powerMw: 1, voltageMv: null, currentMa: null, totalWh: null }), 'malformed');
    assert.equal(bad({ powerMw: 1, voltageMv: '230', currentMa: null, totalWh: 1 }), 'malformed');
    assert.equal(bad({ powerMw: 1, voltageMv: Number.NaN, currentMa: null, totalWh: 1 }), 'malformed');
    assert.equal(bad({ powerMw: 1, voltageMv: null, currentMa: -1, totalWh: 1 }), 'implausible');
    assert.equal(bad({ powerMw: 1, voltageMv: 400_000, currentMa: null, totalWh: 1 }), 'implausible');
  });

  test('a legacy plug answer still needs voltage and current, as before', () => {
    const r = normaliseRealtime(
      { emeter: { get_realtime: { err_code: 0, power_mw: 1, total_wh: 4 } } },
      'LEGACY',
      1,
    );
    assert.ok(!r.ok && r.reason === 'malformed');
  });
});

const LEGACY: ChannelInfo = {
  id: 'LEGACY01',
  alias: 'kettle',
  model: 'HS110(EU)',
  parentId: null,
  parentAlias: null,
};
const SMART: ChannelInfo = {
  id: 'SMART01',
  alias: 'Küche ☕',
  model: 'P110(EU)',
  parentId: null,
  parentAlias: null,
};
const HALF: ChannelInfo = {
  id: 'HALF01',
  alias: 'half',
  model: 'P110M(EU)',
  parentId: null,
  parentAlias: null,
};

describe('a reading without voltage or current in every sink and export', () => {
  const path = join(root, 'sinks.db');
  const t0 = Date.now() - 3_600_000 - (Date.now() % 1000);
  const readings: Reading[] = [];
  for (let i = 0; i < 3; i++) {
    const tsMs = t0 + i * 10_000;
    readings.push({
      channel: LEGACY.id,
      tsMs,
      powerMw: 1_850_500,
      voltageMv: 229_800,
      currentMa: 8050,
      totalWh: 12_400 + i,
    });
    readings.push({
      channel: SMART.id,
      tsMs: tsMs + 1,
      powerMw: 17_000 + i,
      voltageMv: null,
      currentMa: null,
      totalWh: 1421 + i,
    });
    readings.push({
      channel: HALF.id,
      tsMs: tsMs + 2,
      powerMw: 0,
      voltageMv: 0,
      currentMa: null,
      totalWh: 0,
    });
  }

  before(async () => {
    const store = new SqliteStore(storeOptions(path), createSilentLogger());
    await store.start();
    await store.upsertChannels([LEGACY, SMART, HALF]);
    const result = await store.writeBatch(readings);
    assert.equal(result.inserted, readings.length);
    assert.equal(result.invalid, 0, 'null is a valid voltage/current');
    await store.stop();
  });

  test('SQLite stores null (not 0) and the reader gives it back; a measured 0 V stays 0', () => {
    const stored = storedReadings(path);
    const smart = stored.filter((r) => r.deviceId === SMART.id);
    assert.equal(smart.length, 3);
    for (const r of smart) assert.ok(r.voltageMv === null && r.currentMa === null, JSON.stringify(r));
    const half = stored.filter((r) => r.deviceId === HALF.id);
    for (const r of half) assert.ok(r.voltageMv === 0 && r.currentMa === null, JSON.stringify(r));
    const legacy = stored.filter((r) => r.deviceId === LEGACY.id);
    for (const r of legacy) assert.ok(r.voltageMv === 229_800 && r.currentMa === 8050, JSON.stringify(r));
  });

  test('kasa-monitor export: empty CSV cells and JSON null; the legacy plug unchanged', async () => {
    const config = join(root, 'export.yaml');
    writeFileSync(config, `storage:\n  sqlite:\n    path: ${path}\n`);
    const range = ['--from', new Date(t0 - 1000).toISOString(), '--to', new Date(t0 + 60_000).toISOString()];
    const csv = await runCliProcess(['export', '-c', config, '--format', 'csv', ...range]);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines[0], 'time,device_id,alias,power_w,voltage_v,current_a,total_wh');
    const time = (ms: number) => new Date(ms).toISOString();
    assert.equal(lines[1], `${time(t0)},LEGACY01,kettle,1850.5,229.8,8.05,12400`);
    assert.equal(lines[2], `${time(t0 + 1)},SMART01,Küche ☕,17,,,1421`);
    assert.equal(lines[3], `${time(t0 + 2)},HALF01,half,0,0,,0`);

    const json = await runCliProcess(['export', '-c', config, '--format', 'json', ...range]);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as Record<string, unknown>[];
    assert.equal(rows.length, readings.length);
    assert.deepEqual(rows[0], {
      time: time(t0),
      device_id: 'LEGACY01',
      alias: 'kettle',
      power_w: 1850.5,
      voltage_v: 229.8,
      current_a: 8.05,
      total_wh: 12400,
    });
    assert.deepEqual(rows[1], {
      time: time(t0 + 1),
      device_id: 'SMART01',
      alias: 'Küche ☕',
      power_w: 17,
      voltage_v: null,
      current_a: null,
      total_wh: 1421,
    });
    assert.equal(rows[2]?.['voltage_v'], 0, 'a measured 0 stays 0');
    assert.equal(rows[2]?.['current_a'], null);
  });

  test('InfluxDB line: the unmeasured fields are left out of the point', () => {
    const tags = { deviceId: SMART.id, alias: 'p', model: 'P110(EU)', parentId: null };
    assert.equal(
      readingLine(tags, { tsMs: 5, powerMw: 17_000, voltageMv: null, currentMa: null, totalWh: 1421 }),
      'kasa_energy,alias=p,device_id=SMART01,model=P110(EU) power_w=17,total_wh=1421 5',
    );
    assert.equal(
      readingLine(tags, { tsMs: 5, powerMw: 0, voltageMv: 0, currentMa: null, totalWh: 0 }),
      'kasa_energy,alias=p,device_id=SMART01,model=P110(EU) power_w=0,voltage_v=0,total_wh=0 5',
    );
  });

  test('InfluxDB (real VictoriaMetrics) from the outbox: no voltage_v/current_a samples for the plug that does not measure them', {
    skip: victoriaSkip(),
  }, async () => {
    const vm: Victoria = await startVictoria();
    const store = new SqliteStore(storeOptions(path), createSilentLogger());
    await store.start();
    const logger = createSilentLogger();
    const forwarder = new InfluxForwarder(
      store,
      new InfluxHttpWriter(
        { url: vm.url, token: 't', org: 'home', bucket: 'kasa', timeoutMs: 10_000, gzip: false },
        logger,
      ),
      fastInfluxPolicy({ timeoutMs: 5000 }, logger),
      { batchSize: 100, flushIntervalMs: 20, tags: {}, maxHoldMs: 200 },
      logger,
    );
    try {
      await forwarder.start();
      await waitFor(() => forwarder.stats().written === readings.length, 'every reading forwarded');
      const samples = async (field: string) => {
        const out = new Map<string, number[]>();
        for (const s of await vm.exportSeries(`{__name__="kasa_energy_${field}"}`)) {
          out.set(s.metric['device_id'] ?? '', [...s.values]);
        }
        return out;
      };
      await settledSamplesPerDevice(vm, (counts) => counts.size === 3, 'the series are searchable');
      const power = await samples('power_w');
      assert.deepEqual(power.get(SMART.id), [17, 17.001, 17.002]);
      const voltage = await samples('voltage_v');
      const current = await samples('current_a');
      assert.deepEqual([...voltage.keys()].sort(), [HALF.id, LEGACY.id]);
      assert.deepEqual(voltage.get(LEGACY.id), [229.8, 229.8, 229.8]);
      assert.deepEqual(voltage.get(HALF.id), [0, 0, 0]);
      assert.deepEqual([...current.keys()], [LEGACY.id]);
      assert.deepEqual((await samples('total_wh')).get(SMART.id), [1421, 1422, 1423]);
    } finally {
      await forwarder.stop();
      await store.stop();
      await vm.close();
    }
  });

  test('/metrics has no voltage/current series for it, /api/devices and /api/readings say null', async () => {
    const latest = new LatestReadings();
    for (const r of readings) latest.record(r);
    const server = await startStandaloneHttp({
      path,
      host: '127.36.0.1',
      devices: () => [LEGACY, SMART, HALF].map((c) => onlineSnapshot(c, '127.36.0.9', t0)),
      latest,
    });
    const base = server.origin;
    try {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const series = (name: string) =>
        metrics
          .split('\n')
          .filter((l) => l.startsWith(`${name}{`))
          .map((l) => /device_id="([^"]+)"/.exec(l)?.[1])
          .sort();
      assert.deepEqual(series('kasa_power_watts'), [HALF.id, LEGACY.id, SMART.id]);
      assert.deepEqual(series('kasa_energy_joules'), [HALF.id, LEGACY.id, SMART.id]);
      assert.deepEqual(series('kasa_voltage_volts'), [HALF.id, LEGACY.id]);
      assert.deepEqual(series('kasa_current_amperes'), [LEGACY.id]);
      assert.match(metrics, /kasa_voltage_volts\{device_id="LEGACY01",alias="kettle"\} 229\.8/);

      const devices = (await (await fetch(`${base}/api/devices`)).json()) as {
        devices: { device_id: string; channels: { latest: Record<string, unknown> }[] }[];
      };
      const latestOf = (id: string) => devices.devices.find((d) => d.device_id === id)?.channels[0]?.latest;
      assert.deepEqual(latestOf(SMART.id), {
        time: new Date(t0 + 20_001).toISOString(),
        power_w: 17.002,
        voltage_v: null,
        current_a: null,
        total_wh: 1423,
      });
      assert.equal(latestOf(LEGACY.id)?.['voltage_v'], 229.8);
      assert.equal(latestOf(LEGACY.id)?.['current_a'], 8.05);

      const from = encodeURIComponent(new Date(t0 - 1000).toISOString());
      const api = (await (await fetch(`${base}/api/readings?device=SMART01&from=${from}`)).json()) as Record<
        string,
        unknown
      >[];
      assert.equal(api.length, 3);
      for (const r of api) assert.ok(r['voltage_v'] === null && r['current_a'] === null, JSON.stringify(r));
      const csv = await (await fetch(`${base}/api/readings?device=SMART01&from=${from}&format=csv`)).text();
      assert.equal(csv.split('\n')[1], `${new Date(t0 + 1).toISOString()},SMART01,Küche ☕,17,,,1421`);
    } finally {
      await server.stop();
    }
  });
});

describe('rollups and energy accounting of a plug without voltage or current', () => {
  test('are exactly those of a twin plug that measures them, counter restarts included', async () => {
    const path = join(root, 'twins.db');
    const store = new SqliteStore(storeOptions(path), createSilentLogger());
    await store.start();
    const t0 = Date.UTC(2026, 10, 30, 23, 58, 0, 0);
    // Every 10 s for 6 minutes; the counter restarts once (a reboot, or a month's reset on newer plugs).
    const totals = Array.from({ length: 36 }, (_, i) =>
      i < 20 ? 1421 + Math.floor(i / 4) : Math.floor((i - 20) / 4),
    );
    const readings: Reading[] = totals.flatMap((totalWh, i) => [
      {
        channel: 'NOVOLT',
        tsMs: t0 + i * 10_000,
        powerMw: 1_500_000 + i * 1000,
        voltageMv: null,
        currentMa: null,
        totalWh,
      },
      {
        channel: 'TWIN',
        tsMs: t0 + i * 10_000,
        powerMw: 1_500_000 + i * 1000,
        voltageMv: 230_000,
        currentMa: 6520,
        totalWh,
      },
    ]);
    try {
      await store.writeBatch(readings.slice(0, 30));
      await store.writeBatch(readings.slice(30));
    } finally {
      await store.stop();
    }
    const reader = openRollupReader(path, { timeZone: 'Europe/Berlin', gapLimitMs: 5 * 60_000 });
    try {
      const byId = new Map(reader.channels().map((c) => [c.deviceId, c]));
      const novolt = byId.get('NOVOLT');
      const twin = byId.get('TWIN');
      assert.ok(novolt !== undefined && twin !== undefined);
      for (const tier of ['minute', 'hour', 'day'] as const) {
        const a = reader.series(novolt, tier, 0, Date.UTC(2030, 0, 1));
        const b = reader.series(twin, tier, 0, Date.UTC(2030, 0, 1));
        assert.deepEqual(a, b, tier);
        assert.ok(a.buckets.length > 0, tier);
        assert.equal(
          a.buckets.reduce((n, bucket) => n + bucket.readings, 0),
          36,
          `${tier}: every reading counted`,
        );
        assert.equal(
          a.buckets.reduce((n, bucket) => n + bucket.resets, 0),
          1,
          `${tier}: the restart is seen`,
        );
      }
    } finally {
      reader.close();
    }
  });
});
