/**
 * The four retry strategies of the original system, as a cockatiel backoff: exponential, linear,
 * fixed and random (between a minimum and a maximum), each optionally jittered and always capped at
 * `maxDelayMs`, except that a peer's Retry-After is honoured when it asks for longer.
 */
import type { IBackoff, IBackoffFactory, IRetryBackoffContext } from 'cockatiel';
import { classifyError } from './errors.js';

export type RetryStrategy = 'exponential' | 'linear' | 'fixed' | 'random';

export interface DelaySettings {
  readonly strategy: RetryStrategy;
  /** First retry's delay; the minimum of the random strategy. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Scale each delay by a random factor in [0.5, 1): spreads clients that failed together. */
  readonly jitter: boolean;
}

/** A source of uniform numbers in [0, 1); tests pass a fixed one. */
export type RandomSource = () => number;

/**
 * The delay before retry number `retry` (1 = the first retry, after the first failed attempt).
 * Never negative, never above `maxDelayMs` (a base above the maximum is cut to it).
 */
export function strategyDelay(
  settings: DelaySettings,
  retry: number,
  random: RandomSource = Math.random,
): number {
  const n = Math.max(1, Math.floor(retry));
  const max = Math.max(0, settings.maxDelayMs);
  const base = Math.min(Math.max(0, settings.baseDelayMs), max);
  let delay: number;
  switch (settings.strategy) {
    case 'exponential':
      // 2 ** 1023 is the largest finite power; the cap applies long before.
      delay = base * 2 ** Math.min(n - 1, 1023);
      break;
    case 'linear':
      delay = base * n;
      break;
    case 'fixed':
      delay = base;
      break;
    case 'random':
      return Math.round(base + random() * (max - base));
  }
  delay = Math.min(delay, max);
  if (settings.jitter) delay *= 0.5 + random() * 0.5;
  return Math.round(delay);
}

/** The delays of retries 1..count, for logs and tests. */
export function strategyDelays(
  settings: DelaySettings,
  count: number,
  random: RandomSource = Math.random,
): number[] {
  return Array.from({ length: count }, (_, i) => strategyDelay(settings, i + 1, random));
}

class StrategyBackoffStep implements IBackoff<IRetryBackoffContext<unknown>> {
  constructor(
    private readonly factory: StrategyBackoff,
    readonly duration: number,
  ) {}

  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    return this.factory.next(context);
  }
}

/**
 * The cockatiel backoff of a policy: the strategy's delay for the attempt, or the failure's
 * Retry-After when that is longer (a 429 or 503 that says "come back in 20 s" gets 20 s).
 */
export class StrategyBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  constructor(
    private readonly settings: DelaySettings,
    private readonly random: RandomSource = Math.random,
  ) {}

  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    const computed = strategyDelay(this.settings, context.attempt, this.random);
    const retryAfter = 'error' in context.result ? classifyError(context.result.error).retryAfterMs : null;
    return new StrategyBackoffStep(this, retryAfter === null ? computed : Math.max(computed, retryAfter));
  }
}
