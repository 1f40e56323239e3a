/** Resilience: retry / circuit-breaker / timeout policies, error classification, statistics. The only importer of cockatiel. */

export {
  type DelaySettings,
  type RandomSource,
  type RetryStrategy,
  StrategyBackoff,
  strategyDelay,
  strategyDelays,
} from './backoff.js';
export {
  type Clock,
  DeviceBackoff,
  type DeviceBackoffOptions,
  type DeviceBackoffState,
  type DeviceBackoffStats,
} from './device-backoff.js';
export {
  classifyError,
  type FailureClass,
  type FailureKind,
  isOpenCircuitError,
  isTimeoutError,
  isTransientDeviceFailure,
  isTransientHttpStatus,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
} from './errors.js';
export {
  type ExecutionPolicy,
  OperationAbortedError,
  type PolicySettings,
  ResiliencePolicy,
  unguarded,
} from './policy.js';
export { type PresetSettings, presetSettings, Resilience, type RetryPreset } from './presets.js';
export type { BreakerState, BreakerStats, OperationStats, RetryStatistics } from './stats.js';
