/** The HTTP surface: /health, /metrics and the read API. The only importer of prom-client and node:http's server. */

export { type ChannelCost, EnergyCostTotals } from './energy-cost.js';
export { LatestReadings } from './latest.js';
export { createMetricsRegistry, type MetricsSource } from './metrics.js';
export {
  DEFAULT_READINGS_WINDOW_MS,
  type EnergySettingsNow,
  type HttpOptions,
  HttpServer,
  type HttpSources,
} from './server.js';
