/** retry: retry, circuit-breaker and timeout policies, by preset. */
import * as z from 'zod';
import {
  RETRY_PRESETS,
  RETRY_STRATEGIES,
  type RetryPreset,
  type RetryStrategyName,
} from '../retry-presets.js';
import {
  type CrossCheck,
  duration,
  HOT,
  int,
  key,
  nullWhenUnset,
  optionalDuration,
  retryDelayProblem,
  whenParsed,
} from './building-blocks.js';

export { RETRY_PRESETS, RETRY_STRATEGIES, type RetryPreset, type RetryStrategyName };

/** Defaults of one retry preset, as users would write them. */
export interface RetryPresetDefaults {
  readonly strategy: RetryStrategyName;
  readonly maxAttempts: number;
  readonly baseDelay: string;
  readonly maxDelay: string;
  readonly jitter: boolean;
  readonly timeout: string;
  readonly breakerThreshold: number;
  readonly breakerHalfOpenAfter: string;
}

/** The presets of the original system: database 3 × exponential ≤ 5 s, network 5 × exponential ≤ 30 s, file 3 × linear ≤ 1 s. */
export const RETRY_PRESET_DEFAULTS: Readonly<Record<RetryPreset, RetryPresetDefaults>> = {
  database: {
    strategy: 'exponential',
    maxAttempts: 3,
    baseDelay: '100ms',
    maxDelay: '5s',
    jitter: true,
    timeout: '30s',
    breakerThreshold: 5,
    breakerHalfOpenAfter: '10s',
  },
  network: {
    strategy: 'exponential',
    maxAttempts: 5,
    baseDelay: '1s',
    maxDelay: '30s',
    jitter: true,
    timeout: '10s',
    breakerThreshold: 5,
    breakerHalfOpenAfter: '30s',
  },
  file: {
    strategy: 'linear',
    maxAttempts: 3,
    baseDelay: '100ms',
    maxDelay: '1s',
    jitter: false,
    timeout: '30s',
    breakerThreshold: 5,
    breakerHalfOpenAfter: '10s',
  },
};

export const retryCrossChecks: readonly CrossCheck[] = [
  {
    path: 'retry.base_delay',
    keys: ['retry.base_delay', 'retry.max_delay'],
    problem: ([baseDelay, maxDelay]) =>
      retryDelayProblem(baseDelay as number | null, maxDelay as number | null),
  },
  ...(['database', 'network', 'file'] as const).map(
    (preset): CrossCheck => ({
      path: `retry.${preset}.base_delay`,
      keys: [`retry.${preset}.base_delay`, `retry.${preset}.max_delay`],
      problem: ([baseDelay, maxDelay]) =>
        retryDelayProblem(baseDelay as number, maxDelay as number, `retry.${preset}.max_delay`),
    }),
  ),
];

const preset = (name: RetryPreset, defaults: RetryPresetDefaults, use: string) =>
  z
    .strictObject({
      strategy: key(
        z.enum(RETRY_STRATEGIES).prefault(defaults.strategy),
        'How the delay between attempts grows: exponential (doubles), linear (base, 2x base, ...), fixed (always base_delay) or random (between base_delay and max_delay).',
        HOT,
      ),
      max_attempts: key(
        int(1, 1000).prefault(defaults.maxAttempts),
        'Attempts per operation, the first one included.',
        HOT,
      ),
      base_delay: key(
        duration(defaults.baseDelay),
        'Delay before the first retry (the minimum for the random strategy).',
        HOT,
      ),
      max_delay: key(duration(defaults.maxDelay), 'Longest delay between two attempts.', HOT),
      jitter: key(
        z.boolean().prefault(defaults.jitter),
        'Randomise each delay between half and all of its value, so many clients do not retry in step.',
        HOT,
      ),
      timeout: key(
        duration(defaults.timeout),
        'How long one attempt may take before it counts as failed.',
        HOT,
      ),
      breaker_threshold: key(
        int(1, 1_000_000).prefault(defaults.breakerThreshold),
        'Consecutive failed attempts that open the circuit breaker: calls then fail at once, without touching the resource.',
        HOT,
      ),
      breaker_half_open_after: key(
        duration(defaults.breakerHalfOpenAfter),
        'How long an open breaker waits before it lets one trial call through (success closes it).',
        HOT,
      ),
    })
    .superRefine(
      (section, ctx) => {
        const message = retryDelayProblem(section.base_delay, section.max_delay, `retry.${name}.max_delay`);
        if (message) ctx.addIssue({ code: 'custom', path: ['base_delay'], message });
      },
      whenParsed('base_delay', 'max_delay'),
    )
    .prefault({})
    .meta({ description: `The ${name} preset: ${use}.` });

export function retrySection() {
  return z
    .strictObject({
      max_attempts: key(
        int(1, 1000).nullable().optional().transform(nullWhenUnset),
        'When set, replaces max_attempts of every preset (RETRY_MAX_ATTEMPTS).',
        HOT,
      ),
      base_delay: key(
        optionalDuration(),
        'When set, replaces base_delay of every preset (RETRY_BASE_DELAY, in seconds).',
        HOT,
      ),
      max_delay: key(
        optionalDuration(),
        'When set, replaces max_delay of every preset (RETRY_MAX_DELAY, in seconds).',
        HOT,
      ),
      database: preset('database', RETRY_PRESET_DEFAULTS.database, 'SQLite writes'),
      network: preset('network', RETRY_PRESET_DEFAULTS.network, 'InfluxDB writes'),
      file: preset('file', RETRY_PRESET_DEFAULTS.file, 'file operations'),
    })
    .superRefine(
      (section, ctx) => {
        const message = retryDelayProblem(section.base_delay, section.max_delay);
        if (message) ctx.addIssue({ code: 'custom', path: ['base_delay'], message });
      },
      whenParsed('base_delay', 'max_delay'),
    )
    .prefault({})
    .meta({ description: 'Retry, circuit-breaker and timeout policies, by preset.' });
}
