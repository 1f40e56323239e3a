/**
 * The MQTT tests' home: a real Mosquitto, simulated plugs (a metered kettle, a six-outlet desk strip
 * and a lamp without a meter) and a subscriber to everything the broker carries.
 */
import { Mosquitto, type MosquittoOptions, Subscriber } from './mosquitto.js';
import { type SimRealtime, type SimulatorFleet, startSimulators } from './simulator.js';

type SimulatedPlug = SimulatorFleet['devices'][number];

export interface MqttHome {
  readonly broker: Mosquitto;
  readonly fleet: SimulatorFleet;
  readonly kettle: SimulatedPlug;
  readonly strip: SimulatedPlug;
  readonly lamp: SimulatedPlug;
  /** Subscribed to every topic since before the daemon started. */
  readonly live: Subscriber;
}

/**
 * Starts the broker, then the plugs at `${subnet}.1` (kettle, reading `kettle`), `.2` (strip) and
 * `.3` (lamp) answering discovery on `plugsPort`, then the subscriber. The test stops each of them.
 */
export async function startMqttHome(options: {
  readonly broker: MosquittoOptions;
  readonly plugsPort: number;
  readonly subnet: string;
  readonly kettle: SimRealtime;
}): Promise<MqttHome> {
  const broker = new Mosquitto(options.broker);
  await broker.start();
  const fleet = await startSimulators({
    port: options.plugsPort,
    devices: [
      { model: 'hs110v2', address: `${options.subnet}.1`, alias: 'Kettle', realtime: options.kettle },
      { model: 'hs300', address: `${options.subnet}.2`, alias: 'Desk strip' },
      { model: 'hs100', address: `${options.subnet}.3`, alias: 'Lamp' },
    ],
  });
  const [kettle, strip, lamp] = fleet.devices as [SimulatedPlug, SimulatedPlug, SimulatedPlug];
  const live = await Subscriber.start(broker.url);
  return { broker, fleet, kettle, strip, lamp, live };
}

/** The state messages of `channel` that `sub` has received, parsed. */
export function mqttStates(sub: Subscriber, channel: string): Record<string, unknown>[] {
  return sub.on(`kasa-monitor/${channel}/state`).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
}
