/** systemd integration: sd_notify (READY, STATUS, RELOADING, STOPPING, WATCHDOG) and the watchdog gate. */
export {
  binaryTransport,
  monotonicUsec,
  type NotifyMessage,
  type NotifyTransport,
  notifyArguments,
  notifySocketSet,
  oneLine,
  SystemdNotifier,
} from './notify.js';
export { ProgressGate, type ProgressLimits, type ProgressSample, type Verdict } from './progress.js';
export {
  progressLimits,
  progressSample,
  type ReloadOutcome,
  type SupervisedDaemon,
  SystemdService,
} from './service.js';
export { formatStatus, type SinkSummary, type StatusFacts, statusFacts } from './status.js';
export { Watchdog, type WatchdogSettings, watchdogSettings } from './watchdog.js';
