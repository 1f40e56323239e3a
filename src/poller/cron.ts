import cron from 'node-cron';

/** The only importer of node-cron. */

/** True when `expression` is a node-cron expression (five fields, or six with seconds first). */
export function isValidCronExpression(expression: string): boolean {
  return cron.validate(expression);
}
