/**
 * End to end: the real daemon (in-process, the composition root main.ts builds) on loopback with
 * 127.255.255.255 finds a mixed fleet — legacy simulated plugs on "9999" and newer plugs of our own
 * simulator on "20002" (KLAP, AES, a P304M-like strip, an HS300 hw 2.0 speaking legacy JSON over
 * KLAP) — and stores each channel's values exactly; a plug with another account yields nothing
 * but one "authentication failed" warning, and is listed with that state.
 * Ports 35900-35999 (legacy), 35102 (20002-style discovery), 35180 (HTTP); addresses 127.35.2-4.x.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { type SmartSimFleet, startSmartSimulators } from '../src/discovery/smart-simulator.js';
import { Daemon } from '../src/main.js';
import { openReadingsReader, type StoredReading } from '../src/storage/sqlite/index.js';
import { captureLogger } from './helpers/capture-logger.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { tempRoot } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const root = tempRoot('kasa-smart-daemon-');

const ACCOUNT = { username: 'Owner@Example.com', password: 'pässword 1' };
const id = (n: number): string => `5B${String(n).padStart(38, '0')}`;

test('a mixed fleet: every channel recorded exactly, a plug on another account recorded never and warned about once', async () => {
  const legacy: SimulatorFleet = await startSimulators({
    port: 35901,
    devices: [
      {
        model: 'hs110v2',
        address: '127.35.2.1',
        deviceId: id(1),
        alias: 'legacy kettle',
        realtime: { power_mw: 1_500_000, voltage_mv: 230_000, current_ma: 6_521, total_wh: 4_000 },
      },
      {
        model: 'hs300',
        address: '127.35.2.2',
        deviceId: id(2),
        alias: 'legacy strip',
        realtime: { power_mw: 10_000, voltage_mv: 120_000, current_ma: 83, total_wh: 50 },
      },
    ],
  });
  const smart: SmartSimFleet = await startSmartSimulators({
    discoveryPort: 35102,
    httpPort: 35180,
    devices: [
      {
        address: '127.35.3.1',
        kind: 'klap',
        model: 'P110',
        deviceId: id(11),
        account: ACCOUNT,
        alias: 'Küche ☕',
        values: { powerMw: 1003, voltageMv: 121_215, currentMa: 33, monthWh: 971 },
      },
      {
        address: '127.35.3.2',
        kind: 'klap',
        model: 'P110',
        deviceId: id(12),
        account: ACCOUNT,
        emeterData: false,
        values: { powerMw: 74_116, monthWh: 1_421 },
      },
      {
        address: '127.35.3.3',
        kind: 'aes',
        loginVersion: 2,
        model: 'KP125M',
        deviceId: id(13),
        account: ACCOUNT,
        emeterData: false,
        values: { powerMw: 2_000, monthWh: 12 },
      },
      {
        address: '127.35.3.4',
        kind: 'klap',
        model: 'P304M',
        deviceId: id(14),
        account: ACCOUNT,
        outlets: ['desk', 'lamp'],
        emeterData: false,
        usagePower: false,
        values: { powerMw: 38_000, monthWh: 23 },
      },
      {
        address: '127.35.3.5',
        kind: 'iot-klap',
        klapVersion: 2,
        model: 'HS300',
        deviceId: id(15),
        account: ACCOUNT,
        outlets: ['tv', 'radio'],
        values: { powerMw: 4_321, voltageMv: 120_500, currentMa: 40, sinceBootWh: 77 },
      },
      {
        address: '127.35.3.6',
        kind: 'klap',
        model: 'P110',
        deviceId: id(16),
        account: { username: 'someone@else.example', password: 'theirs' },
      },
    ],
  });
  const capture = captureLogger('info');
  const dbPath = join(root, 'mixed.db');
  const { config } = loadConfig({
    env: {},
    defaultFile: join(root, 'absent.yaml'),
    overrides: {
      'discovery.broadcast': ['127.255.255.255'],
      'discovery.port': '35901',
      'discovery.smart_port': '35102',
      'discovery.interval': '1s',
      'discovery.timeout': '400ms',
      'credentials.username': ACCOUNT.username,
      'credentials.password': ACCOUNT.password,
      'polling.interval': '2s',
      'polling.timeout': '1500ms',
      'writer.flush_interval': '100ms',
      'storage.sqlite.path': dbPath,
      'storage.sqlite.synchronous': 'NORMAL',
      'http.listen': '127.0.0.1:0',
      'health.min_free_disk_mb': '0',
      'health.interval': '250ms',
    },
  });
  const daemon = new Daemon(config, capture.logger, { onFatal: () => {} });
  try {
    await daemon.start();
    const strip = smart.devices.find((d) => d.deviceId === id(14));
    const hs300 = smart.devices.find((d) => d.deviceId === id(15));
    const legacyStrip = legacy.devices.find((d) => d.deviceId === id(2));
    assert.ok(strip && hs300 && legacyStrip);
    const expected = new Map<string, Omit<StoredReading, 'tsMs' | 'deviceId' | 'alias'>>([
      [id(1), { powerMw: 1_500_000, voltageMv: 230_000, currentMa: 6_521, totalWh: 4_000 }],
      ...legacyStrip.childIds.map(
        (c) => [c, { powerMw: 10_000, voltageMv: 120_000, currentMa: 83, totalWh: 50 }] as const,
      ),
      [id(11), { powerMw: 1003, voltageMv: 121_215, currentMa: 33, totalWh: 971 }],
      [id(12), { powerMw: 74_116, voltageMv: null, currentMa: null, totalWh: 1_421 }],
      [id(13), { powerMw: 2_000, voltageMv: null, currentMa: null, totalWh: 12 }],
      [strip.outletIds[0] ?? '', { powerMw: 38_000, voltageMv: null, currentMa: null, totalWh: 23 }],
      [strip.outletIds[1] ?? '', { powerMw: 39_000, voltageMv: null, currentMa: null, totalWh: 23 }],
      [hs300.outletIds[0] ?? '', { powerMw: 4_321, voltageMv: 120_500, currentMa: 40, totalWh: 77 }],
      [hs300.outletIds[1] ?? '', { powerMw: 5_321, voltageMv: 120_500, currentMa: 40, totalWh: 77 }],
    ]);

    const stored = (): StoredReading[] => {
      const reader = openReadingsReader(dbPath);
      try {
        return [...reader.readings()];
      } finally {
        reader.close();
      }
    };
    let readings: StoredReading[] = [];
    await waitFor(
      () => {
        readings = stored();
        const channels = new Set(readings.map((r) => r.deviceId));
        return [...expected.keys()].every((c) => channels.has(c));
      },
      'a stored reading for every channel of the mixed fleet',
      60_000,
    );
    // Let a few more rounds and polls run: the wrong account must stay at one warning.
    const rounds = daemon.status()?.discovery.rounds ?? 0;
    await waitFor(
      () => (daemon.status()?.discovery.rounds ?? 0) >= rounds + 3,
      'three more discovery rounds',
      30_000,
    );
    readings = stored();

    for (const r of readings) {
      const want = expected.get(r.deviceId);
      assert.ok(
        want,
        `a reading for ${r.deviceId}, which is no channel of the fleet (a strip parent or the wrong-account plug?)`,
      );
      assert.deepEqual(
        { powerMw: r.powerMw, voltageMv: r.voltageMv, currentMa: r.currentMa, totalWh: r.totalWh },
        want,
        `values of ${r.deviceId}`,
      );
    }
    assert.ok(!readings.some((r) => r.deviceId === id(16)), 'nothing for the plug with another account');
    assert.ok(
      !readings.some((r) => r.deviceId === id(14) || r.deviceId === id(15) || r.deviceId === id(2)),
      'no strip parent is a channel',
    );
    const kitchen = readings.find((r) => r.deviceId === id(11));
    assert.equal(kitchen?.alias, 'Küche ☕');

    const authWarnings = capture
      .lines()
      .filter(
        (l) =>
          l.level === 40 && l['component'] === 'discovery' && /authentication failed/.test(String(l.msg)),
      );
    assert.equal(authWarnings.length, 1, JSON.stringify(authWarnings));
    assert.match(String(authWarnings[0]?.msg), /127\.35\.3\.6/);
    const everything = JSON.stringify(capture.lines());
    assert.ok(!everything.includes(ACCOUNT.password), 'the password is never logged');

    const listed = daemon.status()?.discovery.smartPlugs.find((p) => p.host === '127.35.3.6');
    assert.equal(listed?.problem, 'authentication failed');
    assert.equal(listed?.accountWorks, false);

    // Listed in /api/devices and /health with what to do; never with the password.
    const base = `http://127.0.0.1:${daemon.httpAddress?.port}`;
    const api = (await (await fetch(`${base}/api/devices`)).json()) as { devices: Record<string, unknown>[] };
    const failed = api.devices.find((d) => d['host'] === '127.35.3.6');
    assert.equal(failed?.['state'], 'authentication failed');
    assert.deepEqual(failed?.['channels'], []);
    assert.equal(api.devices.find((d) => d['device_id'] === id(13))?.['transport'], 'aes');
    assert.equal(api.devices.find((d) => d['device_id'] === id(15))?.['transport'], 'klap-iot');
    assert.equal(api.devices.find((d) => d['device_id'] === id(1))?.['transport'], 'legacy');
    await waitFor(
      () => daemon.health()?.checks['smart_plugs']?.status === 'degraded',
      'the smart_plugs health check to report the plug',
    );
    const health = await (await fetch(`${base}/health`)).text();
    const report = JSON.parse(health) as { checks: Record<string, { status: string; reason: string }> };
    assert.equal(report.checks['smart_plugs']?.status, 'degraded');
    assert.match(
      report.checks['smart_plugs']?.reason ?? '',
      /127\.35\.3\.6: authentication failed \(add your TP-Link|check the TP-Link/,
    );
    assert.ok(!health.includes(ACCOUNT.password) && !JSON.stringify(api).includes(ACCOUNT.password));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /kasa_monitor_smart_plugs\{state="authentication_failed"\} 1/);
    assert.match(metrics, /kasa_monitor_smart_plugs\{state="ok"\} 5/);
  } finally {
    await daemon.stop();
    await smart.stop();
    await legacy.stop();
  }
});
