/** The data lifecycle (issue 6): storage.rollups, storage.retention with the disk budget, storage.backup. */

import { resolve } from 'node:path';
import * as z from 'zod';
import { isValidCronExpression } from '../../shared/cron.js';
import { AGE_FORMS, AGE_PATTERN, MAX_AGE_MS, parseAge, parseSize, SIZE_FORMS } from '../size.js';
import { duration, HOT, int, key, nullWhenUnset, RESTART } from './building-blocks.js';

/** A retention age ('30d', 'forever'): ms, or null for forever. */
function age(defaultValue: string) {
  return z
    .union([z.string().regex(AGE_PATTERN, { message: `must be ${AGE_FORMS}` }), z.number().nonnegative()], {
      error: `must be ${AGE_FORMS}`,
    })
    .transform((value, ctx): number | null => {
      const ms = parseAge(value);
      if (ms === undefined || (ms !== null && ms <= 0)) {
        ctx.issues.push({ code: 'custom', input: value, message: `must be ${AGE_FORMS}, longer than 0` });
        return z.NEVER;
      }
      return ms === null || ms > MAX_AGE_MS ? null : ms;
    })
    .prefault(defaultValue);
}

export function rollupsSection() {
  return z
    .strictObject({
      enabled: key(
        z.boolean().prefault(true),
        'Keep minute, hour and day rollups of every channel as readings are stored (energy, mean/min/max power).',
        RESTART,
      ),
      gap_limit: key(
        duration('5m'),
        'Readings of a channel further apart than this leave a gap: reported as such, its energy never spread over time.',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'Rollups and energy accounting.' });
}

export function retentionSection() {
  return z
    .strictObject({
      raw: key(age('30d'), 'Raw readings (one row a poll) older than this are deleted.', HOT),
      minute: key(age('365d'), 'Minute rollups older than this are deleted.', HOT),
      hour: key(age('forever'), 'Hour rollups older than this are deleted.', HOT),
      day: key(age('forever'), 'Day rollups older than this are deleted.', HOT),
      max_size: key(
        z
          .union([z.string(), z.number().nonnegative()])
          .nullable()
          .optional()
          .transform((value, ctx): number | null => {
            if (value === null || value === undefined || value === '') return null;
            const bytes = parseSize(value);
            if (bytes === undefined || bytes < 1_048_576) {
              ctx.issues.push({
                code: 'custom',
                input: value,
                message: `must be ${SIZE_FORMS}, at least 1MiB`,
              });
              return z.NEVER;
            }
            return bytes;
          }),
        'Disk budget of the database (WAL included): near it, the oldest raw readings go first, then the oldest minutes, then hours. Empty: no budget.',
        HOT,
      ),
      interval: key(duration('15m'), 'How often retention and the budget are applied.', HOT),
    })
    .prefault({})
    .meta({ description: 'How long data is kept, and how much disk it may use.' });
}

export function backupSection() {
  return z
    .strictObject({
      schedule: key(
        z
          .string()
          .refine((expression) => isValidCronExpression(expression), {
            message: "must be a node-cron expression, for example '0 3 * * *' (every day at 03:00)",
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'When scheduled backups run (node-cron, in time_zone). Empty: none.',
        HOT,
      ),
      keep: key(int(1, 10_000).prefault(7), 'Scheduled backups kept; older ones are deleted.', HOT),
      directory: key(
        z
          .string()
          .nullable()
          .optional()
          .transform((path) => (path ? resolve(path) : null)),
        'Where backups go. Empty: a backups directory beside the database (the state directory).',
        HOT,
      ),
    })
    .prefault({})
    .meta({ description: 'Online backups of the database.' });
}
