/**
 * The MQTT sink against a real Mosquitto (started here on 127.39.0.x with its own config file) and
 * simulated plugs on loopback, with the whole daemon: Home Assistant discovery configs retained with
 * the fields HA needs, one state per committed reading with the exported values, an energy counter
 * that does not go backwards when a plug reboots, availability that follows a plug, a 30 s broker
 * outage, and a wrong password.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DeviceSnapshot } from '../src/discovery/registry.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { discoveryConfigs } from '../src/storage/mqtt/index.js';
import { captureLogger } from './helpers/capture-logger.js';
import { simulatedFleetConfig } from './helpers/daemon-config.js';
import { Mosquitto, Subscriber } from './helpers/mosquitto.js';
import { mqttStates, startMqttHome } from './helpers/mqtt-home.js';
import { startSimulators } from './helpers/simulator.js';
import { tempRoot } from './helpers/temp.js';
import { sleep, waitFor } from './helpers/wait.js';

const root = tempRoot('kasa-mqtt-');

function daemonConfig(name: string, simPort: number, overrides: Record<string, unknown>) {
  // A folder per daemon: the MQTT energy counters are kept beside the database.
  const folder = join(root, name);
  mkdirSync(folder, { recursive: true });
  return simulatedFleetConfig(root, {
    'discovery.port': String(simPort),
    'discovery.interval': '1s',
    'discovery.offline_tolerance': '2',
    'storage.sqlite.path': join(folder, 'kasa.db'),
    'storage.sqlite.synchronous': 'NORMAL',
    'http.listen': '127.39.0.1:0',
    ...overrides,
  });
}

describe('MQTT with Home Assistant discovery, against a real Mosquitto', () => {
  test('discovery configs are retained with the fields HA requires; states carry the exported values; energy never decreases across a plug reboot; availability follows the plug', async () => {
    const { broker, fleet, kettle, strip, lamp, live } = await startMqttHome({
      broker: { host: '127.39.0.1', port: 39001 },
      plugsPort: 39101,
      subnet: '127.39.1',
      kettle: { power_mw: 12_345, voltage_mv: 230_120, current_ma: 53, total_wh: 5000 },
    });
    const daemon = new Daemon(daemonConfig('main', 39101, { 'mqtt.url': broker.url }), createSilentLogger());
    try {
      await daemon.start();
      const channels = [kettle.deviceId, ...strip.childIds];
      await waitFor(
        () => channels.every((c) => live.on(`kasa-monitor/${c}/state`).length >= 2),
        'two states of every channel',
      );

      // States: the values as exported (no rounding), ISO time, voltage/current present here.
      const state = mqttStates(live, kettle.deviceId).at(-1) as Record<string, unknown>;
      assert.equal(state['power_w'], 12.345);
      assert.equal(state['voltage_v'], 230.12);
      assert.equal(state['current_a'], 0.053);
      assert.equal(state['energy_kwh'], 5);
      assert.match(String(state['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // One state per committed reading: as many states as SQLite stored readings (at most the one
      // being committed right now apart).
      const written = daemon.status()?.writer.written ?? 0;
      const published = daemon.status()?.mqtt?.statesPublished ?? 0;
      assert.ok(published <= written && published >= written - 10, `${published} states, ${written} stored`);

      // Energy across a reboot: 5000 → 5002 Wh, reboot to 0, then 3 Wh since the reboot.
      fleet.setRealtime(kettle.deviceId, {
        power_mw: 1000,
        voltage_mv: 230_000,
        current_ma: 5,
        total_wh: 5002,
      });
      await waitFor(
        () => mqttStates(live, kettle.deviceId).some((s) => s['energy_kwh'] === 5.002),
        'counter at 5.002',
      );
      fleet.setRealtime(kettle.deviceId, { power_mw: 1000, voltage_mv: 230_000, current_ma: 5, total_wh: 0 });
      const rebootAt = live.messages.length;
      await waitFor(
        () =>
          live.messages.slice(rebootAt).filter((m) => m.topic.endsWith(`${kettle.deviceId}/state`)).length >=
          2,
        'states after the reboot',
      );
      fleet.setRealtime(kettle.deviceId, { power_mw: 1000, voltage_mv: 230_000, current_ma: 5, total_wh: 3 });
      await waitFor(
        () => mqttStates(live, kettle.deviceId).some((s) => s['energy_kwh'] === 5.005),
        'counter at 5.005',
      );
      const energy = mqttStates(live, kettle.deviceId).map((s) => s['energy_kwh'] as number);
      for (let i = 1; i < energy.length; i++) {
        assert.ok(
          (energy[i] as number) >= (energy[i - 1] as number),
          `energy never decreases: ${energy.join(', ')}`,
        );
      }

      // Discovery: a client that connects now gets the configs as retained messages.
      const late = await Subscriber.start(broker.url);
      await waitFor(() => late.messages.some((m) => m.topic === 'kasa-monitor/status'), 'retained status');
      await sleep(300);
      const retained = late.messages.filter((m) => m.retain);
      await late.stop();
      const configs = retained.filter((m) => m.topic.startsWith('homeassistant/sensor/'));
      for (const m of configs) {
        assert.match(m.topic, /^homeassistant\/sensor\/[a-zA-Z0-9_-]+\/[a-zA-Z0-9_-]+\/config$/);
        const c = JSON.parse(m.payload) as Record<string, unknown>;
        assert.ok(typeof c['name'] === 'string' && c['name'] !== '', m.topic);
        assert.ok(typeof c['unique_id'] === 'string' && c['unique_id'] !== '');
        assert.match(String(c['state_topic']), /^kasa-monitor\/[^/]+\/state$/);
        const device = c['device'] as Record<string, unknown>;
        assert.ok(Array.isArray(device['identifiers']) && device['identifiers'].length > 0);
        assert.equal(device['manufacturer'], 'TP-Link');
        assert.ok(typeof device['model'] === 'string');
        const availability = c['availability'] as { topic: string }[];
        assert.ok(availability.some((a) => /^kasa-monitor\/[^/]+\/availability$/.test(a.topic)));
        assert.ok(availability.some((a) => a.topic === 'kasa-monitor/status'));
      }
      const sensor = (channel: string, quantity: string) => {
        const m = configs.find((x) => x.topic === `homeassistant/sensor/${channel}/${quantity}/config`);
        return m === undefined ? undefined : (JSON.parse(m.payload) as Record<string, unknown>);
      };
      for (const channel of channels) {
        const power = sensor(channel, 'power');
        const energyConfig = sensor(channel, 'energy');
        assert.ok(
          power !== undefined && energyConfig !== undefined,
          `power and energy sensors of ${channel}`,
        );
        assert.equal(power['device_class'], 'power');
        assert.equal(power['state_class'], 'measurement');
        assert.equal(power['unit_of_measurement'], 'W');
        assert.match(String(power['value_template']), /value_json\.power_w/);
        assert.equal(energyConfig['device_class'], 'energy');
        assert.equal(energyConfig['state_class'], 'total_increasing');
        assert.equal(energyConfig['unit_of_measurement'], 'kWh');
        assert.match(String(energyConfig['value_template']), /value_json\.energy_kwh/);
        assert.equal(power['state_topic'], `kasa-monitor/${channel}/state`);
      }
      const voltage = sensor(kettle.deviceId, 'voltage');
      assert.equal(voltage?.['device_class'], 'voltage');
      assert.equal(voltage?.['unit_of_measurement'], 'V');
      assert.equal(sensor(kettle.deviceId, 'current')?.['unit_of_measurement'], 'A');
      const outlet = sensor(strip.childIds[0] as string, 'power');
      assert.equal(
        (outlet?.['device'] as Record<string, unknown> | undefined)?.['via_device'],
        `kasa_monitor_${strip.deviceId}`,
      );
      assert.ok(
        !configs.some((m) => m.topic.includes(lamp.deviceId)),
        'a plug without a meter gets no power or energy sensor',
      );
      const ids = configs.map((m) => (JSON.parse(m.payload) as { unique_id: string }).unique_id);
      assert.equal(new Set(ids).size, ids.length, 'unique_id per channel and quantity');
      assert.equal(retained.find((m) => m.topic === 'kasa-monitor/status')?.payload, 'online');
      assert.equal(
        retained.find((m) => m.topic === `kasa-monitor/${kettle.deviceId}/availability`)?.payload,
        'online',
      );
      assert.equal(
        retained.find((m) => m.topic === `kasa-monitor/${lamp.deviceId}/availability`)?.payload,
        'online',
      );

      // Availability follows the plug.
      await fleet.pause(kettle.deviceId);
      await waitFor(
        () => live.last(`kasa-monitor/${kettle.deviceId}/availability`)?.payload === 'offline',
        'kettle offline',
      );
      await fleet.resume(kettle.deviceId);
      await waitFor(
        () => live.last(`kasa-monitor/${kettle.deviceId}/availability`)?.payload === 'online',
        'kettle back online',
      );

      const health = await daemon.refreshHealth();
      assert.equal(health?.checks['mqtt']?.status, 'ok', health?.checks['mqtt']?.reason);
      const http = daemon.httpAddress;
      assert.ok(http !== null);
      const metrics = await (await fetch(`http://${http.host}:${http.port}/metrics`)).text();
      assert.match(metrics, /^kasa_monitor_mqtt_connected 1$/m);
      assert.match(metrics, /^kasa_monitor_mqtt_messages_published_total [1-9]\d*$/m);
      assert.match(metrics, /^kasa_monitor_mqtt_states_dropped_total 0$/m);
    } finally {
      await daemon.stop();
      await waitFor(() => live.last('kasa-monitor/status')?.payload === 'offline', 'offline on stop');
      await live.stop();
      await fleet.stop();
      await broker.dispose();
    }
  });

  test('broker stopped for 30 s and started again: the daemon reconnects, republishes discovery and availability, and publishes current states; memory stays bounded', async () => {
    const broker = new Mosquitto({ host: '127.39.0.2', port: 39002 });
    await broker.start();
    const fleet = await startSimulators({
      port: 39102,
      devices: [
        { model: 'hs110', address: '127.39.2.1', alias: 'Fridge' },
        { model: 'hs300', address: '127.39.2.2', alias: 'Rack' },
      ],
    });
    const channels = [fleet.devices[0]?.deviceId as string, ...(fleet.devices[1]?.childIds ?? [])];
    const daemon = new Daemon(
      daemonConfig('outage', 39102, { 'mqtt.url': broker.url }),
      createSilentLogger(),
    );
    try {
      await daemon.start();
      await waitFor(
        () => daemon.status()?.mqtt?.statesPublished !== 0 && daemon.status()?.mqtt?.connected === true,
        'connected',
      );
      await broker.stop();
      await waitFor(() => daemon.status()?.mqtt?.connected === false, 'disconnect noticed');
      const writtenBefore = daemon.status()?.writer.written ?? 0;
      const heapBefore = process.memoryUsage().heapUsed;
      let maxPending = 0;
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        maxPending = Math.max(maxPending, daemon.status()?.mqtt?.pending ?? 0);
        await sleep(500);
      }
      const outage = daemon.status()?.mqtt;
      assert.ok(
        (daemon.status()?.writer.written ?? 0) > writtenBefore + 100,
        'polling and recording went on',
      );
      assert.ok(maxPending <= channels.length, `at most one held state per channel (${maxPending})`);
      assert.ok((outage?.dropped ?? 0) > 0, 'superseded states are counted as dropped');
      assert.ok((outage?.failedConnects ?? 0) >= 3, 'reconnect attempts during the outage');
      // Far below what a backlog of ~150 readings in MQTT.js's queue would be is not measurable in a
      // heap this noisy; the bound is structural (pending ≤ channels). This only catches a runaway.
      assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, 'no runaway heap growth');

      const restartedAt = Date.now();
      await broker.start();
      const sub = await Subscriber.start(broker.url);
      try {
        await waitFor(
          () => channels.every((c) => sub.messages.some((m) => m.topic === `kasa-monitor/${c}/state`)),
          'states after the broker came back',
          30_000,
        );
        await waitFor(
          () => sub.messages.some((m) => m.topic === 'kasa-monitor/status' && m.payload === 'online'),
          'status',
        );
        const configs = sub.messages.filter((m) => m.topic.startsWith('homeassistant/sensor/'));
        assert.ok(configs.length >= channels.length * 2, 'discovery configs published again');
        for (const c of channels) {
          assert.equal(sub.last(`kasa-monitor/${c}/availability`)?.payload, 'online');
          const s = JSON.parse(sub.last(`kasa-monitor/${c}/state`)?.payload ?? '{}') as { time: string };
          // Current states, not a backlog from the outage (allow one poll interval of slack).
          assert.ok(Date.parse(s.time) >= restartedAt - 2000, `a current state for ${c}: ${s.time}`);
        }
        const outageStates = sub.messages.filter(
          (m) =>
            m.topic.endsWith('/state') &&
            Date.parse((JSON.parse(m.payload) as { time: string }).time) < restartedAt - 2000,
        );
        assert.ok(outageStates.length <= channels.length, `no backlog: ${outageStates.length} old states`);
      } finally {
        await sub.stop();
      }
    } finally {
      await daemon.stop();
      await fleet.stop();
      await broker.dispose();
    }
  });

  test('with a password file: the right password connects; a wrong one keeps polling and logs one clear error per episode, never the password', async () => {
    const password = 'c0rrect horse';
    const broker = new Mosquitto({ host: '127.39.0.3', port: 39003, users: { kasa: password } });
    await broker.start();
    const fleet = await startSimulators({
      port: 39103,
      devices: [{ model: 'hs110', address: '127.39.3.1', alias: 'Boiler' }],
    });
    const channel = fleet.devices[0]?.deviceId as string;
    const goodFile = join(root, 'good-password');
    writeFileSync(goodFile, `${password}\n`, { mode: 0o600 });
    const badFile = join(root, 'bad-password');
    writeFileSync(badFile, 'wrong-secret-123\n', { mode: 0o600 });
    const sub = await Subscriber.start(broker.url, '#', { username: 'kasa', password });
    const { logger, lines } = captureLogger('debug');
    const good = daemonConfig('auth', 39103, {
      'mqtt.url': broker.url,
      'mqtt.username': 'kasa',
      'mqtt.password_file': goodFile,
    });
    const daemon = new Daemon(
      daemonConfig('auth', 39103, {
        'mqtt.url': broker.url,
        'mqtt.username': 'kasa',
        'mqtt.password_file': badFile,
      }),
      logger,
    );
    try {
      await daemon.start();
      await waitFor(
        () => (daemon.status()?.mqtt?.failedConnects ?? 0) >= 4,
        'several refused attempts',
        30_000,
      );
      const written = daemon.status()?.writer.written ?? 0;
      await waitFor(() => (daemon.status()?.writer.written ?? 0) > written + 2, 'still recording');
      const authErrors = lines().filter((l) => /MQTT authentication failed/.test(String(l.msg)));
      assert.equal(authErrors.length, 1, 'one error for the whole episode');
      assert.equal(authErrors[0]?.level, 50);
      assert.match(String(authErrors[0]?.msg), /not authorized|bad user name or password/);
      const health = await daemon.refreshHealth();
      const check = health?.checks['mqtt'];
      assert.equal(check?.status, 'degraded');
      assert.match(String(check?.reason), /refuses the credentials/);
      assert.ok(!JSON.stringify(health).includes('wrong-secret-123'), '/health never shows the password');

      // The right password by a reload: connected, states flow.
      await daemon.reload(good);
      await waitFor(
        () => sub.messages.some((m) => m.topic === `kasa-monitor/${channel}/state`),
        'states with the right password',
      );
      assert.equal(daemon.status()?.mqtt?.connected, true);
      assert.ok(!JSON.stringify(health).includes(password));
    } finally {
      await daemon.stop();
      await sub.stop();
      await fleet.stop();
      await broker.dispose();
    }
    const everything = JSON.stringify(lines());
    assert.ok(
      !everything.includes('wrong-secret-123') && !everything.includes(password),
      'no password in any log line',
    );
    assert.ok(
      !sub.messages.some((m) => m.payload.includes(password)),
      'no password in any published message',
    );
  });

  test('a reload switches MQTT on and moves it to a new topic prefix; expire_after removes a gone plug from Home Assistant until it is back', async () => {
    const broker = new Mosquitto({ host: '127.39.0.4', port: 39004 });
    await broker.start();
    const fleet = await startSimulators({
      port: 39104,
      devices: [{ model: 'hs110', address: '127.39.4.1', alias: 'Heater' }],
    });
    const id = fleet.devices[0]?.deviceId as string;
    const live = await Subscriber.start(broker.url);
    const base = daemonConfig('reload', 39104, {});
    const daemon = new Daemon(base, createSilentLogger());
    try {
      await daemon.start();
      await waitFor(() => (daemon.status()?.writer.written ?? 0) > 0, 'recording without MQTT');
      assert.equal(daemon.status()?.mqtt, null);
      await daemon.reload(
        daemonConfig('reload', 39104, { 'mqtt.url': broker.url, 'mqtt.homeassistant.expire_after': '2s' }),
      );
      await waitFor(() => live.on(`kasa-monitor/${id}/state`).length > 0, 'states once MQTT is switched on');

      await daemon.reload(
        daemonConfig('reload', 39104, {
          'mqtt.url': broker.url,
          'mqtt.homeassistant.expire_after': '2s',
          'mqtt.topic_prefix': 'home/kasa',
        }),
      );
      await waitFor(() => live.on(`home/kasa/${id}/state`).length > 0, 'states under the new prefix');
      assert.equal(live.last('kasa-monitor/status')?.payload, 'offline', 'the old status topic says offline');
      const config = `homeassistant/sensor/${id}/power/config`;
      await waitFor(
        () =>
          (JSON.parse(live.last(config)?.payload || '{}') as { state_topic?: string }).state_topic ===
          `home/kasa/${id}/state`,
        'discovery points at the new state topic',
      );

      await fleet.pause(id);
      await waitFor(
        () => live.last(config)?.payload === '',
        'the gone plug’s config removed (empty retained)',
      );
      assert.equal(live.last(`home/kasa/${id}/availability`)?.payload, 'offline');
      await fleet.resume(id);
      await waitFor(() => (live.last(config)?.payload ?? '') !== '', 'the config back with the plug');
      await waitFor(() => live.last(`home/kasa/${id}/availability`)?.payload === 'online', 'online again');
    } finally {
      await daemon.stop();
      await live.stop();
      await fleet.stop();
      await broker.dispose();
    }
  });

  test('mqtts:// with ca_file: states reach a broker whose certificate that CA signed', async () => {
    const broker = new Mosquitto({ host: '127.39.0.5', port: 39005, tls: true });
    await broker.start();
    const fleet = await startSimulators({
      port: 39105,
      devices: [{ model: 'hs110v2', address: '127.39.5.1', alias: 'Dryer' }],
    });
    const id = fleet.devices[0]?.deviceId as string;
    const sub = await Subscriber.start(broker.url, '#', null, broker.caFile);
    const daemon = new Daemon(
      daemonConfig('tls', 39105, { 'mqtt.url': broker.url, 'mqtt.ca_file': broker.caFile }),
      createSilentLogger(),
    );
    try {
      await daemon.start();
      await waitFor(() => sub.on(`kasa-monitor/${id}/state`).length > 0, 'a state over TLS');
      assert.equal(daemon.status()?.mqtt?.url, broker.url);
    } finally {
      await daemon.stop();
      await sub.stop();
      await fleet.stop();
      await broker.dispose();
    }
  });

  test('the energy counter carries on across a restart of the daemon, even when the plug rebooted meanwhile', async () => {
    const broker = new Mosquitto({ host: '127.39.0.6', port: 39006 });
    await broker.start();
    const fleet = await startSimulators({
      port: 39106,
      devices: [
        {
          model: 'hs110v2',
          address: '127.39.6.1',
          alias: 'Freezer',
          realtime: { power_mw: 500, voltage_mv: 230_000, current_ma: 3, total_wh: 5000 },
        },
      ],
    });
    const id = fleet.devices[0]?.deviceId as string;
    const live = await Subscriber.start(broker.url);
    const config = daemonConfig('restart', 39106, { 'mqtt.url': broker.url });
    try {
      const first = new Daemon(config, createSilentLogger());
      try {
        await first.start();
        fleet.setRealtime(id, { power_mw: 500, voltage_mv: 230_000, current_ma: 3, total_wh: 5002 });
        await waitFor(() => mqttStates(live, id).some((s) => s['energy_kwh'] === 5.002), 'counter at 5.002');
      } finally {
        await first.stop();
      }
      // The plug reboots while the daemon is down: its own counter is back near zero.
      fleet.setRealtime(id, { power_mw: 500, voltage_mv: 230_000, current_ma: 3, total_wh: 1 });
      const restartAt = live.messages.length;
      const second = new Daemon(config, createSilentLogger());
      try {
        await second.start();
        const after = () =>
          live.messages
            .slice(restartAt)
            .filter((m) => m.topic === `kasa-monitor/${id}/state`)
            .map((m) => (JSON.parse(m.payload) as { energy_kwh: number }).energy_kwh);
        await waitFor(() => after().length >= 2, 'states after the restart');
        assert.ok(
          after().every((e) => e >= 5.002),
          `never below 5.002 after the restart: ${after().join(', ')}`,
        );
        assert.equal(after().at(-1), 5.003, 'the 1 Wh since the plug rebooted is added');
      } finally {
        await second.stop();
      }
    } finally {
      await live.stop();
      await fleet.stop();
      await broker.dispose();
    }
  });

  test('a renamed plug keeps its unique_ids; only the names change', () => {
    const device = (alias: string): DeviceSnapshot => ({
      id: 'AA01',
      alias,
      model: 'HS110(EU)',
      firmware: '1.5.6',
      host: '127.39.9.9',
      port: 9999,
      hasEmeter: true,
      polled: true,
      outlets: [],
      channels: [{ id: 'AA01', alias, model: 'HS110(EU)', parentId: null, parentAlias: null }],
      state: { kind: 'online', since: 0 },
      firstSeenMs: 0,
      lastSeenMs: 0,
      missedRounds: 0,
      failedPolls: 0,
    });
    const o = { topicPrefix: 'kasa-monitor', discovery: true, haPrefix: 'homeassistant' };
    const before = discoveryConfigs(o, device('Kettle'), () => true);
    const afterRename = discoveryConfigs(o, device('Tea kettle'), () => true);
    assert.deepEqual([...afterRename.keys()], [...before.keys()], 'same config topics');
    for (const [topic, payload] of afterRename) {
      const a = JSON.parse(before.get(topic) as string) as {
        unique_id: string;
        device: { name: string; sw_version: string };
      };
      const b = JSON.parse(payload) as { unique_id: string; device: { name: string } };
      assert.equal(b.unique_id, a.unique_id);
      assert.equal(a.device.name, 'Kettle');
      assert.equal(b.device.name, 'Tea kettle');
      assert.equal(a.device.sw_version, '1.5.6');
    }
  });
});
