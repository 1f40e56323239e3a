/**
 * Cost over MQTT, against a real Mosquitto (127.27.0.1:27001, its own config file) and simulated
 * plugs on 127.27.1.x (discovery port 27101, broadcast 127.255.255.255), with the whole daemon: with a
 * tariff the state JSON carries `cost`, the very figure of kasa_energy_cost_total, never going down,
 * and Home Assistant gets a monetary cost sensor per metered channel; a reload that removes the
 * tariff clears those sensors (empty retained config) and the states lose `cost`.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { simulatedFleetConfig } from './helpers/daemon-config.js';
import { Subscriber } from './helpers/mosquitto.js';
import { mqttStates, startMqttHome } from './helpers/mqtt-home.js';
import { tempRoot } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const root = tempRoot('kasa-mqtt-cost-');

/** Costs are refreshed every 30 s: a deadline past two refreshes (only to turn a hang into a failure). */
const COST_DEADLINE_MS = 90_000;

const TARIFF = {
  'tariff.currency': 'EUR',
  // A flat price: 1 Wh costs 0.04 EUR.
  'tariff.periods': [{ from: '2020-01-01', rates: [{ price: 40 }] }],
};

function daemonConfig(brokerUrl: string, tariff: boolean) {
  const folder = join(root, 'daemon');
  mkdirSync(folder, { recursive: true });
  return simulatedFleetConfig(root, {
    'discovery.port': '27101',
    'discovery.interval': '1s',
    'storage.sqlite.path': join(folder, 'kasa.db'),
    'storage.sqlite.synchronous': 'NORMAL',
    'http.listen': '127.27.0.1:0',
    'mqtt.url': brokerUrl,
    ...(tariff ? TARIFF : {}),
  });
}

/** kasa_energy_cost_total of one channel from /metrics, or null. */
async function metricCost(daemon: Daemon, channel: string): Promise<number | null> {
  const http = daemon.httpAddress;
  assert.ok(http !== null);
  const text = await (await fetch(`http://${http.host}:${http.port}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('kasa_energy_cost_total{') && l.includes(`device_id="${channel}"`));
  return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('cost over MQTT, against a real Mosquitto', () => {
  test('with a tariff, states carry the cost of kasa_energy_cost_total, never decreasing, and HA gets a monetary sensor per metered channel; removing the tariff removes them', async () => {
    const { broker, fleet, kettle, strip, lamp, live } = await startMqttHome({
      broker: { host: '127.27.0.1', port: 27001 },
      plugsPort: 27101,
      subnet: '127.27.1',
      kettle: { power_mw: 3_600_000, voltage_mv: 230_000, current_ma: 15_652, total_wh: 5000 },
    });
    const channels = [kettle.deviceId, ...strip.childIds];
    const daemon = new Daemon(daemonConfig(broker.url, true), createSilentLogger());
    // 3.6 kW: its counter advances 1 Wh a second (the cost comes from the counter's steps).
    let totalWh = 5000;
    const meter = setInterval(() => {
      totalWh += 1;
      fleet.setRealtime(kettle.deviceId, {
        power_mw: 3_600_000,
        voltage_mv: 230_000,
        current_ma: 15_652,
        total_wh: totalWh,
      });
    }, 1000);
    const costConfig = (channel: string) => `homeassistant/sensor/${channel}/cost/config`;
    try {
      await daemon.start();

      // Home Assistant: a cost sensor per metered channel, none for the plug without a meter.
      await waitFor(() => channels.every((c) => live.last(costConfig(c)) !== undefined), 'cost sensors');
      for (const channel of channels) {
        const config = JSON.parse(live.last(costConfig(channel))?.payload ?? '{}') as Record<string, unknown>;
        assert.equal(config['device_class'], 'monetary');
        assert.equal(config['state_class'], 'total');
        assert.equal(config['unit_of_measurement'], 'EUR');
        assert.equal(config['state_topic'], `kasa-monitor/${channel}/state`);
        assert.match(String(config['value_template']), /value_json\.cost\b/);
        assert.equal(config['unique_id'], `kasa_monitor_${channel}_cost`);
      }
      assert.ok(!live.messages.some((m) => m.topic === costConfig(lamp.deviceId)));
      // Retained: a client that connects now gets them.
      const late = await Subscriber.start(broker.url);
      await waitFor(
        () => channels.every((c) => late.last(costConfig(c))?.retain === true),
        'retained cost sensors',
      );
      await late.stop();

      // States: the cost as /metrics has it (the same computation, shared): eventually a scrape
      // and the latest state agree to the millionth.
      await waitFor(
        () => mqttStates(live, kettle.deviceId).some((s) => typeof s['cost'] === 'number' && s['cost'] > 0),
        'a state with a cost',
        COST_DEADLINE_MS,
      );
      let agreed: { mqtt: number; metric: number | null } = { mqtt: -1, metric: null };
      await waitFor(
        async () => {
          const metric = await metricCost(daemon, kettle.deviceId);
          const mqtt = mqttStates(live, kettle.deviceId).at(-1)?.['cost'];
          agreed = { mqtt: typeof mqtt === 'number' ? mqtt : -1, metric };
          return metric !== null && Math.abs(metric - agreed.mqtt) < 1e-6;
        },
        'the state’s cost equal to kasa_energy_cost_total',
        60_000,
        200,
      );
      assert.ok(agreed.mqtt > 0, JSON.stringify(agreed));

      // It keeps growing with the energy, and never goes backwards.
      const first = agreed.mqtt;
      await waitFor(
        () =>
          mqttStates(live, kettle.deviceId).some((s) => typeof s['cost'] === 'number' && s['cost'] > first),
        'the cost grows',
        COST_DEADLINE_MS,
      );
      const costs = mqttStates(live, kettle.deviceId)
        .map((s) => s['cost'])
        .filter((c): c is number => typeof c === 'number');
      for (let i = 1; i < costs.length; i++) {
        assert.ok(
          (costs[i] as number) >= (costs[i - 1] as number),
          `cost never decreases: ${costs.join(', ')}`,
        );
      }
      const outlet = strip.childIds[0] as string;
      await waitFor(
        () => mqttStates(live, outlet).some((s) => typeof s['cost'] === 'number'),
        'an outlet’s state with a cost',
        COST_DEADLINE_MS,
      );

      // The tariff removed by a reload: the cost sensors are cleared (empty retained config) and
      // the states go out without cost.
      await daemon.reload(daemonConfig(broker.url, false));
      await waitFor(
        () => channels.every((c) => live.last(costConfig(c))?.payload === ''),
        'cost sensors removed',
      );
      const removedAt = live.messages.length;
      await waitFor(
        () =>
          live.messages.slice(removedAt).filter((m) => m.topic === `kasa-monitor/${kettle.deviceId}/state`)
            .length >= 3,
        'states after the reload',
      );
      const after = live.messages
        .slice(removedAt)
        .filter((m) => m.topic === `kasa-monitor/${kettle.deviceId}/state`)
        .slice(1)
        .map((m) => JSON.parse(m.payload) as Record<string, unknown>);
      for (const s of after) assert.ok(!('cost' in s), JSON.stringify(s));
      assert.equal(typeof after[0]?.['energy_kwh'], 'number');
    } finally {
      clearInterval(meter);
      await daemon.stop();
      await live.stop();
      await fleet.stop();
      await broker.dispose();
    }
  });
});
