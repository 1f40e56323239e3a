/** health: the supervisor's checks, alerts and recovery. */
import * as z from 'zod';
import {
  type CrossCheck,
  duration,
  HOT,
  int,
  isHttpUrl,
  key,
  nullWhenUnset,
  retryDelayProblem,
  whenParsed,
} from './building-blocks.js';

export const healthCrossChecks: readonly CrossCheck[] = [
  {
    path: 'health.recovery_backoff',
    keys: ['health.recovery_backoff', 'health.recovery_backoff_max'],
    problem: ([backoff, max]) =>
      retryDelayProblem(backoff as number, max as number, 'health.recovery_backoff_max'),
  },
];

export function healthSection() {
  return z
    .strictObject({
      interval: key(duration('30s'), 'How often every health check runs.', HOT),
      alert_after: key(
        int(1, 1000).prefault(3),
        'Consecutive bad checks (degraded or failed) before a problem becomes an alert.',
        HOT,
      ),
      webhook_url: key(
        z
          .string()
          .refine((text) => text === '' || isHttpUrl(text), {
            message: 'must be an http:// or https:// URL, or empty for no webhook',
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'Alerts and their "resolved" notices are POSTed here as JSON (through the network retry policy). Absent or empty: log only.',
        HOT,
      ),
      quick_check_interval: key(
        duration('6h', { allowZero: true }),
        'How often `PRAGMA quick_check` runs on a reader connection (it always runs at start); 0: only at start.',
        HOT,
      ),
      min_free_disk_mb: key(
        int(0).prefault(100),
        'Free space (MiB) on the database file system below which the database check is degraded.',
        HOT,
      ),
      max_wal_mb: key(
        int(1).prefault(256),
        'Size (MiB) of the -wal file above which the database check is degraded (checkpoints are starved).',
        HOT,
      ),
      max_event_loop_lag: key(
        duration('200ms'),
        'p99 event-loop delay over one check interval above which the event-loop check is degraded.',
        HOT,
      ),
      max_memory_mb: key(
        int(16).prefault(512),
        'Resident memory (MiB) above which the memory check is degraded.',
        HOT,
      ),
      max_poll_error_rate: key(
        z.number().min(0).max(1).prefault(0.5),
        'Share of poll requests (0-1) that gave no reading over one check interval above which polling is degraded.',
        HOT,
      ),
      max_influx_lag: key(
        duration('5m'),
        'How far InfluxDB may trail SQLite (age of the oldest reading not yet sent) before the InfluxDB check is degraded.',
        HOT,
      ),
      recovery_attempts: key(
        int(1, 1000).prefault(5),
        'Recovery actions (reopen SQLite, restart discovery or the scheduler) tried per problem before the daemon exits non-zero so the service manager restarts it.',
        HOT,
      ),
      recovery_backoff: key(
        duration('1s'),
        'Wait before the second recovery attempt; it doubles each time.',
        HOT,
      ),
      recovery_backoff_max: key(duration('1m'), 'Longest wait between two recovery attempts.', HOT),
    })
    .superRefine(
      (section, ctx) => {
        const message = retryDelayProblem(
          section.recovery_backoff,
          section.recovery_backoff_max,
          'health.recovery_backoff_max',
        );
        if (message) ctx.addIssue({ code: 'custom', path: ['recovery_backoff'], message });
      },
      whenParsed('recovery_backoff', 'recovery_backoff_max'),
    )
    .prefault({})
    .meta({ description: 'The supervisor: health checks, alerts and recovery.' });
}
