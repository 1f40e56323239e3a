/** tariff: what energy costs (issue 13); the rules are checked in ../tariff.ts. */
import * as z from 'zod';
import { currencyInput, periodsInput, pricesFileInput } from '../tariff.js';
import { HOT, key, whenParsed } from './building-blocks.js';

export function tariffSection() {
  return z
    .strictObject({
      currency: key(
        currencyInput,
        'Currency of every price (three letters, such as EUR). Needed when periods or prices_file are set.',
        HOT,
      ),
      periods: key(
        periodsInput.prefault([]),
        'Tariff periods, each from its date (in time_zone) until the next: standing_charge per day and rates (days, from, to, price per kWh; first match wins).',
        HOT,
      ),
      prices_file: key(
        pricesFileInput,
        'CSV of dynamic prices (header start,end,price; ISO 8601 times with offset; end exclusive; rows must touch). A row overrides the rates for its interval.',
        HOT,
      ),
    })
    .superRefine(
      (section, ctx) => {
        const periods: unknown = section.periods;
        const priced =
          (Array.isArray(periods) && periods.length > 0) || typeof section.prices_file === 'string';
        if (section.currency === null && priced) {
          ctx.addIssue({
            code: 'custom',
            path: ['currency'],
            message: 'must be set when tariff.periods or tariff.prices_file is (such as EUR)',
          });
        }
      },
      // Also when a period has a problem: a missing currency is reported in the same run.
      whenParsed('currency'),
    )
    .prefault({})
    .meta({
      description: 'What energy costs: tariff periods with rates and standing charges, and dynamic prices.',
    });
}
