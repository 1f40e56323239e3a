/** The time zone of energy periods, day rollups and backup schedules. */
import * as z from 'zod';
import { isValidTimeZone, systemTimeZone } from '../../energy/zone.js';
import { key, RESTART } from './building-blocks.js';

export function timeZoneKey() {
  return key(
    z
      .string()
      .nullable()
      .optional()
      .transform((zone, ctx): string => {
        if (zone === null || zone === undefined || zone.trim() === '') return systemTimeZone();
        if (!isValidTimeZone(zone.trim())) {
          ctx.issues.push({
            code: 'custom',
            input: zone,
            message: 'must be an IANA time zone such as Europe/Berlin, America/New_York or UTC',
          });
          return z.NEVER;
        }
        return zone.trim();
      }),
    'IANA time zone of energy periods (days, months), day rollups and backup schedules. Empty: the system zone.',
    RESTART,
  );
}
