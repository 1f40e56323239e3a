/** polling: reading the energy meters, and the poll timeout it derives from the interval. */
import * as z from 'zod';
import { isValidCronExpression } from '../../shared/cron.js';
import { formatDuration } from '../duration.js';
import {
  type CrossCheck,
  duration,
  HOT,
  int,
  key,
  nullWhenUnset,
  optionalDuration,
  RESTART,
  whenParsed,
} from './building-blocks.js';

export const TRANSPORTS = ['udp', 'tcp'] as const;

/** The longest poll timeout taken when `polling.timeout` is not set. */
export const MAX_DEFAULT_POLL_TIMEOUT_MS = 3000;

/**
 * `polling.timeout` when the user did not set it: 80% of the interval, at most 3 s, so that
 * `interval: 1s` alone works (a poll gets 800 ms) and the default stays 3 s from `interval: 4s` up.
 */
export function defaultPollTimeout(interval: number): number {
  return Math.max(1, Math.min(MAX_DEFAULT_POLL_TIMEOUT_MS, Math.floor(interval * 0.8)));
}

function pollingTimeoutProblem(
  interval: number,
  timeout: number | null,
  schedule: string | null,
): string | undefined {
  // Only a timeout the user set is checked: the default is derived from the interval.
  if (timeout === null || schedule !== null || timeout < interval) return undefined;
  return `must be shorter than polling.interval (${formatDuration(interval)}), got ${formatDuration(timeout)}`;
}

export const pollingCrossChecks: readonly CrossCheck[] = [
  {
    path: 'polling.timeout',
    keys: ['polling.interval', 'polling.timeout', 'polling.schedule'],
    problem: ([interval, timeout, schedule]) =>
      pollingTimeoutProblem(interval as number, timeout as number | null, schedule as string | null),
  },
];

export function pollingSection() {
  return z
    .strictObject({
      interval: key(duration('10s'), 'Time between two polls of a plug (unless `schedule` is set).', HOT),
      schedule: key(
        z
          .string()
          .refine((expression) => isValidCronExpression(expression), {
            message:
              "must be a node-cron expression: 5 fields, or 6 with seconds first (for example '*/10 * * * * *')",
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'A node-cron expression (a seconds field is allowed). When set it replaces `interval`.',
        HOT,
      ),
      timeout: key(
        optionalDuration(),
        'How long one poll may take before it counts as missed. Must be shorter than `interval`. Not set: 80% of `interval`, at most 3s.',
        HOT,
      ),
      concurrency: key(int(1, 10_000).prefault(64), 'Polls in flight at most.', HOT),
      transport: key(z.enum(TRANSPORTS).prefault('udp'), 'How polls reach a plug: udp or tcp.', RESTART),
      backoff_after: key(
        int(1, 1000).prefault(3),
        'Consecutive polls a plug leaves unanswered (timeout, refused) before it is backed off: polled again after one interval, then two, four, ... up to backoff_max, until it answers.',
        HOT,
      ),
      backoff_max: key(
        duration('5m'),
        'Longest pause between two polls of a plug that does not answer.',
        HOT,
      ),
    })
    .superRefine(
      (section, ctx) => {
        const message = pollingTimeoutProblem(section.interval, section.timeout, section.schedule);
        if (message) ctx.addIssue({ code: 'custom', path: ['timeout'], message });
      },
      whenParsed('interval', 'timeout', 'schedule'),
    )
    .transform((section) => ({
      ...section,
      timeout: section.timeout ?? defaultPollTimeout(section.interval),
    }))
    .prefault({})
    .meta({ description: 'Reading the energy meters.' });
}
