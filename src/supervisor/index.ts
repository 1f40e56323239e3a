/** The supervisor: health checks, status aggregation, alerting and recovery. */

export { type AlertPayload, type AlertStats, Alerts, displayUrl } from './alerts.js';
export { type CheckLimits, createChecks, type HealthInputs } from './checks.js';
export { EventLoopLag, type LagSample } from './event-loop.js';
export {
  hasSqliteHeader,
  isCorruptionError,
  isDamagedDatabase,
  type Quarantined,
  quarantineDatabase,
} from './quarantine.js';
export { Recovery, RecoveryExhaustedError, type RecoveryState } from './recovery.js';
export { type StartedStore, startStore } from './start-store.js';
export {
  type HealthReport,
  type PerformanceReport,
  Supervisor,
  type SupervisorDeps,
  type SupervisorOptions,
  type SupervisorTargets,
  supervisorOptions,
} from './supervisor.js';
export {
  type CheckReport,
  type CheckResult,
  type CheckStatus,
  type HealthCheck,
  type RecoveryName,
  worstStatus,
} from './types.js';
