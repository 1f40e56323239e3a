/**
 * Rough edges found by trying the merged daemon as a person would (README from the top). The built
 * CLI, real simulated plugs and real sockets. Ports 29000-29999 and 127.29.0.x belong to this file.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import type { ChannelInfo } from '../src/domain/channel.js';
import { LatestReadings } from '../src/http/latest.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { openReadingsReader, SqliteStore } from '../src/storage/sqlite/index.js';
import { launchBrowser, screenshot } from './helpers/browser.js';
import { runCliProcess } from './helpers/cli.js';
import { Mosquitto, Subscriber } from './helpers/mosquitto.js';
import { startSimulators } from './helpers/simulator.js';
import { sqliteOptions } from './helpers/sqlite.js';
import { onlineSnapshot, startStandaloneHttp } from './helpers/standalone-http.js';
import { tempDirs } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const tempDir = tempDirs('kasa-trial-');

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
async function databaseWithReadings(
  channel: ChannelInfo = {
    id: 'TRIAL1',
    alias: 'Kettle',
    model: 'HS110(EU)',
    parentId: null,
    parentAlias: null,
  },
  measures: { voltage: boolean } = { voltage: true },
): Promise<string> {
  const path = join(tempDir(), 'kasa.db');
  const store = new SqliteStore(sqliteOptions(path, { synchronous: 'FULL' }), createSilentLogger());
  await store.start();
  try {
    await store.upsertChannels([channel]);
    const now = Date.now();
    await store.writeBatch(
      [0, 1, 2, 3].map((i) => ({
        channel: channel.id,
        tsMs: now - (4 - i) * 10_000,
        powerMw: 1_000_000,
        voltageMv: measures.voltage ? 230_000 : null,
        currentMa: measures.voltage ? 4_300 : null,
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

describe('dashboard', () => {
  it('shows the device page of a plug that measures only power and energy (voltage and current null)', async () => {
    const smart: ChannelInfo = {
      id: 'SMART01',
      alias: 'Fridge',
      model: 'P110(EU)',
      parentId: null,
      parentAlias: null,
    };
    const path = await databaseWithReadings(smart, { voltage: false });
    const latest = new LatestReadings();
    const reader = openReadingsReader(path);
    try {
      for (const r of reader.readings()) {
        latest.record({
          channel: r.deviceId,
          tsMs: r.tsMs,
          powerMw: r.powerMw,
          voltageMv: r.voltageMv,
          currentMa: r.currentMa,
          totalWh: r.totalWh,
        });
      }
    } finally {
      reader.close();
    }
    const now = Date.now();
    const device = onlineSnapshot(smart, '127.29.0.31', now);
    const server = await startStandaloneHttp({ path, host: '127.29.0.1', devices: () => [device], latest });
    const origin = server.origin;
    const browser = await launchBrowser();
    try {
      const { page, log } = await browser.open(origin);
      await page.goto(`${origin}/device?id=${smart.id}`, { waitUntil: 'networkidle0' });
      await page.waitForFunction("document.querySelectorAll('#readings tbody tr td').length > 1", {
        timeout: 20_000,
      });
      const details = await page.$eval('#details', (e) => e.textContent ?? '');
      const cells = await page.$$eval('#readings tbody tr:first-child td', (tds) =>
        tds.map((td) => td.textContent),
      );
      console.log(`screenshot: ${await screenshot(page, 'trial-device-power-only')}`);
      assert.deepEqual(log.pageErrors, []);
      // Energy per day over the last 30 days: one day of data still gives a 30-day axis, not years.
      await page.waitForFunction("(document.getElementById('energy').dataset.xRange ?? '').length > 1");
      const [min, max] = String(await page.$eval('#energy', (e) => e.getAttribute('data-x-range')))
        .split(',')
        .map(Number);
      const days = ((max ?? 0) - (min ?? 0)) / 86_400;
      assert.ok(days >= 29 && days <= 31, `the energy chart spans ${days} days`);
      // The fixed device list has no supervisor behind it: /health answers 503 with an error.
      const notices = await page.evaluate('document.body.innerText');
      assert.doesNotMatch(String(notices), /TypeError/);
      assert.equal(details, 'counter 1003 Wh');
      assert.equal(cells[3], '', 'no voltage');
      assert.equal(cells[4], '', 'no current');
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});

describe('check-config', () => {
  it('says what a tariff band time must be in one plain phrase', async () => {
    const file = join(tempDir(), 'tariff.yaml');
    writeFileSync(
      file,
      'tariff:\n  currency: EUR\n  periods:\n    - from: 2026-01-01\n      rates:\n        - { from: "25:00", to: "06:00", price: 0.18 }\n',
    );
    const result = await runCliProcess(['check-config', '-c', file]);
    assert.equal(result.code, 78);
    assert.match(
      result.stderr,
      /tariff\.periods\.0\.rates\.0\.from \(line 6, column \d+\): must be a local time 'HH:MM' from 00:00 to 24:00 \(inclusive\), got '25:00'/,
    );
  });
});
