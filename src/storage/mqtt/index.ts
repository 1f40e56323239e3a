/** MQTT sink with Home Assistant discovery: the only importer of mqtt (MQTT.js). Fed by the writer's commits. */

export { MqttLinkError } from './client.js';
export { EnergyLedger, EnergyStitcher, type StitchedCounter } from './energy.js';
export {
  availabilityTopic,
  discoveryConfigs,
  haId,
  statePayload,
  stateTopic,
  statusTopic,
  type TopicOptions,
} from './payloads.js';
export {
  type ChannelCostTotal,
  type CostSource,
  type DeviceSource,
  type MqttError,
  type MqttOptions,
  MqttPublisher,
  type MqttStats,
  safeMqttUrl,
} from './publisher.js';
