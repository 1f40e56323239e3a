/**
 * Rough edges found by trying the merged daemon as a person would (README from the top). The built
 * CLI, real simulated plugs and real sockets. Ports 29000-29999 and 127.29.0.x belong to this file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { SqliteStore } from '../src/storage/sqlite/index.js';
import { runCliProcess } from './helpers/cli.js';
import { Mosquitto, Subscriber } from './helpers/mosquitto.js';
import { startSimulators, waitFor } from './helpers/simulator.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kasa-trial-'));
  dirs.push(dir);
  return dir;
}

describe('demo', () => {
  it('exits 1 with a hint, instead of hanging, when its HTTP port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(29_101, '127.29.0.1', resolve));
    try {
      const dir = tempDir();
      const result = await runCliProcess([
        'demo',
        '--devices',
        '1',
        '--port',
        '29102',
        '--database',
        join(dir, 'demo.db'),
        '--set',
        'http.listen=127.29.0.1:29101',
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stdout + result.stderr, /already in use/);
      assert.match(result.stderr, /demo --set http\.listen=/);
    } finally {
      holder.close();
    }
  });
});

/** A database with one plug's readings over the last few minutes (no daemon needed). */
async function databaseWithReadings(): Promise<string> {
  const path = join(tempDir(), 'kasa.db');
  const store = new SqliteStore(
    {
      path,
      journalMode: 'WAL',
      synchronous: 'FULL',
      cacheSize: -2000,
      tempStore: 'MEMORY',
      busyTimeoutMs: 5000,
    },
    createSilentLogger(),
  );
  await store.start();
  try {
    await store.upsertChannels([
      { id: 'TRIAL1', alias: 'Kettle', model: 'HS110(EU)', parentId: null, parentAlias: null },
    ]);
    const now = Date.now();
    await store.writeBatch(
      [0, 1, 2, 3].map((i) => ({
        channel: 'TRIAL1',
        tsMs: now - (4 - i) * 10_000,
        powerMw: 1_000_000,
        voltageMv: 230_000,
        currentMa: 4_300,
        totalWh: 1_000 + i,
      })),
    );
  } finally {
    await store.stop();
  }
  return path;
}

describe('energy', () => {
  it('says nothing about unpriced energy when no tariff is configured', async () => {
    const db = await databaseWithReadings();
    const config = join(tempDir(), 'config.yaml');
    writeFileSync(config, `storage:\n  sqlite:\n    path: ${db}\n`);
    const result = await runCliProcess(['energy', '-c', config]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Kettle/);
    assert.doesNotMatch(result.stdout, /unpriced/);
  });
});

describe('MQTT', () => {
  it('announces voltage and current of strip outlets to Home Assistant, as their states carry them', async () => {
    const broker = new Mosquitto({ host: '127.29.0.1', port: 29_105 });
    await broker.start();
    const fleet = await startSimulators({
      port: 29_106,
      devices: [{ model: 'hs300', address: '127.29.0.21', alias: 'Desk strip' }],
    });
    const strip = fleet.devices[0];
    assert.ok(strip !== undefined);
    const live = await Subscriber.start(broker.url);
    const config = loadConfig({
      env: {},
      defaultFile: join(tempDir(), 'absent.yaml'),
      overrides: {
        'discovery.broadcast': ['127.255.255.255'],
        'discovery.port': '29106',
        'polling.interval': '1s',
        'writer.flush_interval': '100ms',
        'storage.sqlite.path': join(tempDir(), 'kasa.db'),
        'http.listen': '127.29.0.1:0',
        'mqtt.url': broker.url,
      },
    }).config;
    const daemon = new Daemon(config, createSilentLogger());
    try {
      await daemon.start();
      const outlet = strip.childIds[0] as string;
      await waitFor(() => live.on(`kasa-monitor/${outlet}/state`).length >= 2, 'states of the outlet');
      const state = JSON.parse(live.on(`kasa-monitor/${outlet}/state`).at(-1)?.payload ?? '{}') as Record<
        string,
        unknown
      >;
      assert.equal(typeof state['voltage_v'], 'number', 'the simulated outlet measures voltage');
      await waitFor(
        () => live.on(`homeassistant/sensor/${outlet}/voltage/config`).length > 0,
        'a voltage config for the outlet',
      );
      assert.ok(live.on(`homeassistant/sensor/${outlet}/current/config`).length > 0);
    } finally {
      await daemon.stop();
      await live.stop();
      await fleet.stop();
      await broker.stop();
    }
  });
});
