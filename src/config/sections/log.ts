/** log: logging to stdout. */
import * as z from 'zod';
import type { LogFormat, LogLevel } from '../../log/logger.js';
import { HOT, key, RESTART } from './building-blocks.js';

export const LOG_LEVELS = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
] as const satisfies readonly LogLevel[];
export const LOG_FORMATS = ['auto', 'json', 'journal', 'human'] as const satisfies readonly LogFormat[];

export function logSection() {
  return z
    .strictObject({
      level: key(z.enum(LOG_LEVELS).prefault('info'), 'Least severe level logged.', HOT),
      format: key(
        z.enum(LOG_FORMATS).prefault('auto'),
        'json: one JSON object a line (for log shippers); journal: syslog priority prefix for journald; human: short lines for a person; auto: journal under systemd, human on a terminal, else json.',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'Logging (to stdout).' });
}
