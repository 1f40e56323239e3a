import type { Logger } from '../../src/log/logger.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { type PolicySettings, ResiliencePolicy } from '../../src/resilience/index.js';

/**
 * The InfluxDB write policy with the network preset's shape but short delays (10-100 ms, no
 * jitter, breaker open for 100 ms), so a test spends little time waiting; `overrides` change any.
 */
export function fastInfluxPolicy(
  overrides: Partial<PolicySettings> = {},
  logger: Logger = createSilentLogger(),
): ResiliencePolicy {
  return new ResiliencePolicy(
    'influx.write',
    'network',
    {
      strategy: 'exponential',
      baseDelayMs: 10,
      maxDelayMs: 100,
      jitter: false,
      maxAttempts: 5,
      timeoutMs: 2000,
      breakerThreshold: 5,
      breakerHalfOpenAfterMs: 100,
      ...overrides,
    },
    logger,
  );
}
