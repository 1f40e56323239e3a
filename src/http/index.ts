/**
 * The HTTP surface: /health, /metrics and the read API. metrics.ts is the only importer of prom-client
 * (loaded at the first scrape); server.ts the only user of node:http's server.
 */

export { type ChannelCost, EnergyCostTotals } from './energy-cost.js';
export { LatestReadings } from './latest.js';
export type { MetricsSource } from './metrics.js';
export {
  DEFAULT_READINGS_WINDOW_MS,
  type EnergySettingsNow,
  type HttpOptions,
  HttpServer,
  type HttpSources,
} from './server.js';
