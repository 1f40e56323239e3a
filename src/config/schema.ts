import * as z from 'zod';
import { backfillSection } from './sections/backfill.js';
import type { CrossCheck } from './sections/building-blocks.js';
import { credentialsSection } from './sections/credentials.js';
import { discoverySection } from './sections/discovery.js';
import { healthCrossChecks, healthSection } from './sections/health.js';
import { httpCrossChecks, httpSection } from './sections/http.js';
import { logSection } from './sections/log.js';
import { mqttSection } from './sections/mqtt.js';
import { pollingCrossChecks, pollingSection } from './sections/polling.js';
import { queueSection } from './sections/queue.js';
import { retryCrossChecks, retrySection } from './sections/retry.js';
import { shutdownSection } from './sections/shutdown.js';
import { defaultDatabasePath } from './sections/sqlite.js';
import { storageSection } from './sections/storage.js';
import { tariffSection } from './sections/tariff.js';
import { timeZoneKey } from './sections/time-zone.js';
import { writerSection } from './sections/writer.js';

/**
 * The configuration schema: the single source of truth for key names, types, defaults, descriptions
 * (shown in the JSON Schema) and reload behaviour. Keys keep their YAML snake_case names in the parsed
 * object too, so a problem's key path is exactly what the user typed. Durations parse to milliseconds.
 * Each section is built in its own module under ./sections; this one puts them together.
 */

export {
  type CrossCheck,
  hasUrlCredentials,
  type KeyInfo,
  keyRegistry,
  type Reload,
} from './sections/building-blocks.js';
export { isLoopbackHost } from './sections/http.js';
export { RESERVED_TAGS } from './sections/influx.js';
export { LOG_FORMATS, LOG_LEVELS } from './sections/log.js';
export {
  defaultPollTimeout,
  MAX_DEFAULT_POLL_TIMEOUT_MS,
  TRANSPORTS,
} from './sections/polling.js';
export { OVERFLOW_POLICIES } from './sections/queue.js';
export {
  RETRY_PRESET_DEFAULTS,
  RETRY_PRESETS,
  RETRY_STRATEGIES,
  type RetryPreset,
  type RetryPresetDefaults,
  type RetryStrategyName,
} from './sections/retry.js';
export { defaultDatabasePath, JOURNAL_MODES, SYNCHRONOUS_MODES, TEMP_STORES } from './sections/sqlite.js';

/**
 * The rules between keys, also enforced inside the schema. zod skips a section's rule once any key
 * of it fails to parse; the loader runs these on their own keys then, so one run reports everything.
 */
export const CROSS_CHECKS: readonly CrossCheck[] = [
  ...pollingCrossChecks,
  ...retryCrossChecks,
  ...httpCrossChecks,
  ...healthCrossChecks,
];

/**
 * Builds the schema. The only environment-dependent part is the default SQLite path (from
 * STATE_DIRECTORY); relative paths resolve against the current directory.
 */
export function createConfigSchema(env: NodeJS.ProcessEnv = process.env) {
  const databaseDefault = defaultDatabasePath(env);
  return z
    .strictObject({
      discovery: discoverySection(),
      polling: pollingSection(),
      queue: queueSection(),
      writer: writerSection(),
      storage: storageSection(databaseDefault),
      retry: retrySection(),
      http: httpSection(),
      log: logSection(),
      shutdown: shutdownSection(),
      health: healthSection(),
      time_zone: timeZoneKey(),
      credentials: credentialsSection(),
      tariff: tariffSection(),
      backfill: backfillSection(),
      mqtt: mqttSection(),
    })
    .meta({ title: 'kasa-monitor configuration', description: 'The kasa-monitor YAML configuration file.' });
}

export type ConfigSchema = ReturnType<typeof createConfigSchema>;

/** The parsed configuration: defaults applied, durations in milliseconds, addresses split into host and port. */
export type Config = z.output<ConfigSchema>;
/** The configuration as users write it (YAML file). */
export type ConfigInput = z.input<ConfigSchema>;

export type DiscoveryConfig = Config['discovery'];
export type PollingConfig = Config['polling'];
export type QueueConfig = Config['queue'];
export type WriterConfig = Config['writer'];
export type StorageConfig = Config['storage'];
export type SqliteConfig = StorageConfig['sqlite'];
export type PoolConfig = StorageConfig['pool'];
export type InfluxConfig = StorageConfig['influx'];
export type RetryConfig = Config['retry'];
export type RetryPresetConfig = RetryConfig['database'];
export type HttpConfig = Config['http'];
export type HealthConfig = Config['health'];
export type LogConfig = Config['log'];
export type ShutdownConfig = Config['shutdown'];
export type RollupsConfig = StorageConfig['rollups'];
export type RetentionConfig = StorageConfig['retention'];
export type BackupConfig = StorageConfig['backup'];
export type CredentialsConfig = Config['credentials'];
export type TariffSectionConfig = Config['tariff'];
export type MqttConfig = Config['mqtt'];

/** The configuration with nothing set: every default (the SQLite path depends on `env`). */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return createConfigSchema(env).parse({});
}
