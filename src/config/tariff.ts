import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { parsePricesCsv } from '../energy/prices.js';
import { DAY_NAMES, type DayName, parseClock } from '../energy/tariff-rules.js';

/**
 * The `tariff` section (issue 13): what energy costs. Validated here down to the prices file's rows,
 * so a bad tariff is a configuration error with a key path (exit 78, rejected at reload) rather than
 * a surprise in a report. Keys are tagged by the caller (schema.ts owns the registry).
 */

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function isCalendarDate(text: string): boolean {
  const match = DATE.exec(text);
  if (!match) return false;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const probe = new Date(Date.UTC(y, m - 1, d));
  return probe.getUTCFullYear() === y && probe.getUTCMonth() === m - 1 && probe.getUTCDate() === d;
}

const clock = (what: string) =>
  z
    .string({ error: `must be a local time 'HH:MM' from 00:00 to 24:00 (${what})` })
    .refine((text) => parseClock(text) !== null, {
      message: `must be a local time 'HH:MM' from 00:00 to 24:00 (${what})`,
    });

const rate = z
  .strictObject({
    days: z
      .array(
        z.enum(DAY_NAMES, { error: `must be a day name: ${DAY_NAMES.join(', ')}` }) as z.ZodType<DayName>,
      )
      .min(1, { message: 'must name at least one day (leave days out for every day)' })
      .nullable()
      .optional()
      .transform((days) => (days === null || days === undefined ? null : [...new Set(days)])),
    from: clock('inclusive').nullable().optional().transform(nullish),
    to: clock('exclusive; earlier than from wraps past midnight').nullable().optional().transform(nullish),
    price: z
      .number({ error: 'must be a price per kWh (a number)' })
      .min(0, { message: 'must not be negative' }),
  })
  .superRefine(
    (value, ctx) => {
      if ((value.from === null) !== (value.to === null)) {
        ctx.addIssue({
          code: 'custom',
          path: [value.from === null ? 'from' : 'to'],
          message: 'set both from and to, or neither (a rate without them covers the whole day)',
        });
        return;
      }
      const from = value.from === null ? null : parseClock(value.from);
      const to = value.to === null ? null : parseClock(value.to);
      if (from !== null && to !== null && from % 1440 === to % 1440) {
        ctx.addIssue({ code: 'custom', path: ['to'], message: `must differ from from ('${value.from}')` });
      }
    },
    whenFieldsParsed('from', 'to'),
  );

const period = z.strictObject({
  from: z
    .string({ error: "must be a date 'YYYY-MM-DD' (in time_zone)" })
    .refine(isCalendarDate, { message: "must be a date 'YYYY-MM-DD' (in time_zone)" }),
  standing_charge: z
    .number({ error: 'must be a charge per day (a number)' })
    .min(0, { message: 'must not be negative' })
    .nullable()
    .optional()
    .transform(nullish),
  rates: z
    .array(rate, { error: 'must be a list of rates' })
    .min(1, { message: 'must hold at least one rate' }),
});

/** Runs an object's rule when the named fields themselves parsed (other fields may have failed). */
function whenFieldsParsed(...fields: string[]) {
  return {
    when: (payload: z.core.ParsePayload): boolean =>
      !payload.issues.some((issue) => fields.includes(String(issue.path?.[0] ?? ''))),
  };
}

function nullish<T>(value: T | null | undefined): T | null {
  return value === null || value === undefined ? null : value;
}

export const periodsInput = z
  .array(period, { error: 'must be a list of periods, each with from and rates' })
  .superRefine(
    (periods, ctx) => {
      for (let i = 1; i < periods.length; i++) {
        const before = (periods[i - 1] as { from: unknown }).from;
        const here = (periods[i] as { from: unknown }).from;
        if (typeof before !== 'string' || typeof here !== 'string') continue;
        if (here === before) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'from'],
            message: `overlaps the period before (both start on ${here})`,
          });
        } else if (here < before) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'from'],
            message: `periods must be in date order: ${here} comes before ${before}`,
          });
        }
      }
    },
    {
      // Order is checked even when a rate has a problem: one run reports everything.
      when: (payload) =>
        Array.isArray(payload.value) && !payload.issues.some((issue) => issue.path?.[1] === 'from'),
    },
  );

export const currencyInput = z
  .string()
  .refine((text) => text === '' || /^[A-Za-z]{3}$/.test(text), {
    message: 'must be a three-letter currency code such as EUR, GBP or USD',
  })
  .nullable()
  .optional()
  .transform((text) => (text === null || text === undefined || text === '' ? null : text.toUpperCase()));

/** The prices file path; its rows are checked here (a gap or an overlap is an error of this key). */
export const pricesFileInput = z
  .string()
  .nullable()
  .optional()
  .transform((path, ctx): string | null => {
    if (path === null || path === undefined || path.trim() === '') return null;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      ctx.issues.push({
        code: 'custom',
        input: path,
        message: `cannot read the prices file ${path} (${code})`,
      });
      return z.NEVER;
    }
    const parsed = parsePricesCsv(text);
    if (!parsed.ok) {
      for (const problem of parsed.problems) {
        ctx.issues.push({ code: 'custom', input: path, message: problem });
      }
      return z.NEVER;
    }
    return path;
  });
