/**
 * What goes on the wire: topic names, the state JSON and the Home Assistant discovery configs.
 * Pure functions of the project's own types, so the contract can be read in one place.
 */
import type { DeviceSnapshot } from '../../discovery/registry.js';
import type { ChannelInfo } from '../../domain/channel.js';
import type { Reading } from '../../domain/reading.js';

export interface TopicOptions {
  readonly topicPrefix: string;
  readonly discovery: boolean;
  readonly haPrefix: string;
  /** The tariff's currency: states carry `cost` and HA gets a cost sensor per channel. Null: no tariff. */
  readonly currency?: string | null;
}

/** A device or channel id usable as one MQTT topic level (no wildcards, separators or NUL). */
export function isTopicSafe(id: string): boolean {
  return id.length > 0 && id.length <= 128 && !/[#+/]/.test(id) && !id.includes(String.fromCharCode(0));
}

/** Home Assistant's node_id / object_id alphabet: [a-zA-Z0-9_-]. */
export function haId(id: string): string {
  return id.replace(/[^a-zA-Z0-9_-]/g, '_');
}

export const stateTopic = (o: TopicOptions, channel: string) => `${o.topicPrefix}/${channel}/state`;
export const availabilityTopic = (o: TopicOptions, id: string) => `${o.topicPrefix}/${id}/availability`;
export const statusTopic = (o: TopicOptions) => `${o.topicPrefix}/status`;

/** Thousandths to base units, as the export writes them (no rounding beyond float formatting). */
const unit = (milli: number) => milli / 1000;

/**
 * `{power_w, voltage_v, current_a, energy_kwh, cost, time}`; voltage and current are left out when the
 * plug does not measure them, cost without a tariff (or before the channel's cost is known).
 * `energyWh` is the daemon's stitched counter (see EnergyStitcher).
 */
export function statePayload(reading: Reading, energyWh: number, cost: number | null = null): string {
  // Built as text: this runs once per reading (1,000 a second on a big fleet). Finite numbers print
  // the same through String() as through JSON.stringify.
  let json = `{"power_w":${unit(reading.powerMw)}`;
  if (reading.voltageMv !== null) json += `,"voltage_v":${unit(reading.voltageMv)}`;
  if (reading.currentMa !== null) json += `,"current_a":${unit(reading.currentMa)}`;
  // Whole mWh: sums of Wh steps in floating point would otherwise print as 1.2340000000000002.
  json += `,"energy_kwh":${Math.round(energyWh * 1000) / 1_000_000}`;
  // Millionths of the currency: the same figure as kasa_energy_cost_total, without float noise.
  if (cost !== null) json += `,"cost":${Math.round(cost * 1_000_000) / 1_000_000}`;
  json += `,"time":"${new Date(reading.tsMs).toISOString()}"}`;
  return json;
}

type Quantity = 'power' | 'energy' | 'voltage' | 'current' | 'cost';

const SENSORS: Readonly<
  Record<Quantity, { name: string; field: string; unit: string; stateClass: string; precision: number }>
> = {
  power: { name: 'Power', field: 'power_w', unit: 'W', stateClass: 'measurement', precision: 1 },
  energy: { name: 'Energy', field: 'energy_kwh', unit: 'kWh', stateClass: 'total_increasing', precision: 3 },
  voltage: { name: 'Voltage', field: 'voltage_v', unit: 'V', stateClass: 'measurement', precision: 1 },
  current: { name: 'Current', field: 'current_a', unit: 'A', stateClass: 'measurement', precision: 2 },
  // The unit is the tariff's currency (set per config); state_class total, not total_increasing: a
  // changed tariff reprices history and may lower the figure, which must not read as a new cycle.
  cost: { name: 'Cost', field: 'cost', unit: '', stateClass: 'total', precision: 2 },
};

/** Cut to a length Home Assistant shows well; aliases come from devices and are untrusted. */
function text(value: string, fallback: string): string {
  const trimmed = value.trim().slice(0, 64);
  return trimmed === '' ? fallback : trimmed;
}

/** The HA device id of a channel or strip. */
export const haDeviceId = (id: string) => `kasa_monitor_${haId(id)}`;

/**
 * Discovery configs (topic → JSON) for one device: per meter channel a power and an energy sensor,
 * and voltage and current when the channel has been seen to measure them. A plug without a meter has
 * no channels, hence no sensors. Each outlet of a strip is its own HA device, `via_device` the strip.
 */
export function discoveryConfigs(
  o: TopicOptions,
  device: DeviceSnapshot,
  measuresVoltage: (channel: string) => boolean,
): Map<string, string> {
  const out = new Map<string, string>();
  if (!o.discovery) return out;
  for (const channel of device.channels) {
    if (!isTopicSafe(channel.id)) continue;
    const quantities: Quantity[] = ['power', 'energy'];
    if (measuresVoltage(channel.id)) quantities.push('voltage', 'current');
    if (o.currency != null) quantities.push('cost');
    for (const quantity of quantities) {
      out.set(
        `${o.haPrefix}/sensor/${haId(channel.id)}/${quantity}/config`,
        JSON.stringify(sensorConfig(o, device, channel, quantity)),
      );
    }
  }
  return out;
}

function sensorConfig(
  o: TopicOptions,
  device: DeviceSnapshot,
  channel: ChannelInfo,
  quantity: Quantity,
): Record<string, unknown> {
  const s = SENSORS[quantity];
  return {
    name: s.name,
    unique_id: `kasa_monitor_${haId(channel.id)}_${quantity}`,
    object_id: `kasa_${haId(channel.id)}_${quantity}`,
    state_topic: stateTopic(o, channel.id),
    value_template: `{{ value_json.${s.field} }}`,
    device_class: quantity === 'cost' ? 'monetary' : quantity,
    state_class: s.stateClass,
    unit_of_measurement: quantity === 'cost' ? (o.currency ?? '') : s.unit,
    suggested_display_precision: s.precision,
    availability_mode: 'all',
    availability: [{ topic: availabilityTopic(o, channel.id) }, { topic: statusTopic(o) }],
    device: {
      identifiers: [haDeviceId(channel.id)],
      name: text(channel.alias, channel.id),
      manufacturer: 'TP-Link',
      model: text(device.model, 'unknown'),
      ...(device.firmware == null ? {} : { sw_version: text(device.firmware, 'unknown') }),
      ...(channel.parentId === null ? {} : { via_device: haDeviceId(channel.parentId) }),
    },
    origin: { name: 'kasa-monitor' },
  };
}
