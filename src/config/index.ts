export { type HostPort, parseAddress } from './address.js';
export { TplinkAccount, tplinkAccount } from './credentials.js';
export { type ConfigDiff, diffConfig } from './diff.js';
export { DURATION_FORMS, formatDuration, parseDuration } from './duration.js';
export { ConfigError, type ConfigProblem, formatProblem } from './errors.js';
export { configJsonSchema, configJsonSchemaText } from './json-schema.js';
export { CONFIG_KEYS, type ConfigKey, configKey, type KeyKind } from './keys.js';
export {
  CONFIG_FILE_ENV,
  DEFAULT_CONFIG_FILE,
  INFLUX_TOKEN_CREDENTIAL,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
  sqlitePathFromUrl,
  TPLINK_PASSWORD_CREDENTIAL,
  TPLINK_USERNAME_CREDENTIAL,
} from './load.js';
export { REDACTED, redactConfig } from './redact.js';
export {
  type BackupConfig,
  type Config,
  type ConfigInput,
  type ConfigSchema,
  type CredentialsConfig,
  createConfigSchema,
  type DiscoveryConfig,
  defaultConfig,
  defaultDatabasePath,
  type HealthConfig,
  type HttpConfig,
  type InfluxConfig,
  type LogConfig,
  type PollingConfig,
  type PoolConfig,
  type QueueConfig,
  RETRY_PRESET_DEFAULTS,
  RETRY_PRESETS,
  RETRY_STRATEGIES,
  type Reload,
  type RetentionConfig,
  type RetryConfig,
  type RetryPreset,
  type RetryPresetConfig,
  type RetryStrategyName,
  type RollupsConfig,
  type ShutdownConfig,
  type SqliteConfig,
  type StorageConfig,
  type WriterConfig,
} from './schema.js';
