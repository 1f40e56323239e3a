/** InfluxDB sink: the only importer of @influxdata/influxdb-client. Fed from SQLite through the outbox. */

export { type InfluxClientOptions, InfluxHttpWriter, type LineWriter, safeUrl } from './client.js';
export {
  type ForwarderError,
  type ForwarderOptions,
  type ForwarderStats,
  INFLUX_SINK,
  InfluxForwarder,
  type OutboxSource,
} from './forwarder.js';
export {
  type ChannelTags,
  fieldsAndTime,
  type LineReading,
  MEASUREMENT,
  readingLine,
  seriesPrefix,
} from './line-protocol.js';
