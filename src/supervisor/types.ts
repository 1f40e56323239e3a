/** The supervisor's vocabulary: check results, the aggregate report, recovery actions. */

export type CheckStatus = 'ok' | 'degraded' | 'failed';

/** What the supervisor can do about a problem. */
export type RecoveryName =
  /** Close and reopen the writer's connection (a new worker) and the readers. */
  | 'reopen-sqlite'
  /** Move a corrupt database aside with its -wal/-shm files and start a fresh one. */
  | 'quarantine-database'
  /** Close and reopen the reader pool (after a fallback: try the workers again). */
  | 'reopen-readers'
  /** Stop and start discovery (new sockets). */
  | 'restart-discovery'
  /** Stop and start the poll scheduler. */
  | 'restart-scheduler'
  /** Replace the InfluxDB client (fresh HTTP connections); the outbox cursor stays where it is. */
  | 'recreate-influx-client';

export interface CheckResult {
  readonly status: CheckStatus;
  /** One line a person can act on; for ok, what was seen. */
  readonly reason: string;
  readonly details?: Readonly<Record<string, unknown>>;
  /** What to try; only for bad results. */
  readonly recovery?: RecoveryName;
  /**
   * A process restart could fix it: when the recovery attempts are used up, the daemon exits
   * non-zero so the service manager restarts it. False for what a restart cannot fix (InfluxDB
   * down, disk full, every plug offline): those are reported and alerted, never escalated.
   */
  readonly escalate?: boolean;
}

/** A check as /health shows it. */
export interface CheckReport {
  readonly status: CheckStatus;
  readonly reason: string;
  readonly details: Readonly<Record<string, unknown>>;
  /** When the check entered its current status (ISO 8601). */
  readonly since: string;
  /** Consecutive runs that were degraded or failed (0 when ok). */
  readonly consecutive_bad: number;
  /** An alert is open for it. */
  readonly alerting: boolean;
  readonly recovery: RecoveryName | null;
  readonly checked_at: string;
  readonly duration_ms: number;
}

export interface HealthCheck {
  readonly name: string;
  run(nowMs: number): Promise<CheckResult> | CheckResult;
}

/** The worst of the statuses: failed > degraded > ok. */
export function worstStatus(statuses: Iterable<CheckStatus>): CheckStatus {
  let worst: CheckStatus = 'ok';
  for (const status of statuses) {
    if (status === 'failed') return 'failed';
    if (status === 'degraded') worst = 'degraded';
  }
  return worst;
}

export const ok = (reason: string, details?: Record<string, unknown>): CheckResult => ({
  status: 'ok',
  reason,
  ...(details === undefined ? {} : { details }),
});

export const degraded = (
  reason: string,
  details?: Record<string, unknown>,
  extra: Pick<CheckResult, 'recovery' | 'escalate'> = {},
): CheckResult => ({ status: 'degraded', reason, ...(details === undefined ? {} : { details }), ...extra });

export const failed = (
  reason: string,
  details?: Record<string, unknown>,
  extra: Pick<CheckResult, 'recovery' | 'escalate'> = {},
): CheckResult => ({ status: 'failed', reason, ...(details === undefined ? {} : { details }), ...extra });
