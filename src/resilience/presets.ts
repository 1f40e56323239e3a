import type { RetryConfig, RetryPreset, RetryPresetConfig } from '../config/index.js';
import { RETRY_PRESETS } from '../config/retry-presets.js';
import type { Logger } from '../log/logger.js';
import type { RandomSource } from './backoff.js';
import { type PolicySettings, ResiliencePolicy, validatePolicySettings } from './policy.js';
import { type RetryStatistics, summarise } from './stats.js';

export type { RetryPreset };

export type PresetSettings = Readonly<Record<RetryPreset, PolicySettings>>;

function fromPreset(preset: RetryPresetConfig, retry: RetryConfig): PolicySettings {
  return {
    strategy: preset.strategy,
    // RETRY_MAX_ATTEMPTS / RETRY_BASE_DELAY / RETRY_MAX_DELAY (retry.*) replace every preset's value.
    maxAttempts: retry.max_attempts ?? preset.max_attempts,
    baseDelayMs: retry.base_delay ?? preset.base_delay,
    maxDelayMs: retry.max_delay ?? preset.max_delay,
    jitter: preset.jitter,
    timeoutMs: preset.timeout,
    breakerThreshold: preset.breaker_threshold,
    breakerHalfOpenAfterMs: preset.breaker_half_open_after,
  };
}

/** The three presets as the configuration (file, environment, flags) resolved them. */
export function presetSettings(retry: RetryConfig): PresetSettings {
  return {
    database: fromPreset(retry.database, retry),
    network: fromPreset(retry.network, retry),
    file: fromPreset(retry.file, retry),
  };
}

/**
 * The daemon's policies, one per operation, and their statistics. Each operation has its own
 * breaker and counters; operations sharing a preset share only its settings.
 */
export class Resilience {
  readonly #policies = new Map<string, ResiliencePolicy>();
  #presets: PresetSettings;

  constructor(
    presets: PresetSettings,
    private readonly logger: Logger,
    private readonly random: RandomSource = Math.random,
  ) {
    this.#presets = presets;
  }

  /** The policy of `operation` (created on first use with `preset`'s settings). */
  policy(operation: string, preset: RetryPreset): ResiliencePolicy {
    let policy = this.#policies.get(operation);
    if (policy === undefined) {
      if (!RETRY_PRESETS.includes(preset)) throw new RangeError(`unknown retry preset ${String(preset)}`);
      policy = new ResiliencePolicy(
        operation,
        preset,
        this.#presets[preset],
        this.logger.child({ operation }),
        this.random,
      );
      this.#policies.set(operation, policy);
    }
    return policy;
  }

  settings(preset: RetryPreset): PolicySettings {
    return this.#presets[preset];
  }

  /**
   * A reload: every operation gets its preset's new settings, in place (the writer and the
   * forwarder keep the same policy object), with its statistics and its breaker's state (see
   * ResiliencePolicy.reconfigure). Operations created later use the new presets. All settings are
   * checked first, so a bad preset changes nothing. Returns the operations whose settings changed.
   */
  reconfigure(presets: PresetSettings): string[] {
    for (const preset of RETRY_PRESETS) validatePolicySettings(presets[preset]);
    this.#presets = presets;
    const changed: string[] = [];
    for (const [operation, policy] of this.#policies) {
      if (policy.reconfigure(presets[policy.preset as RetryPreset])) changed.push(operation);
    }
    return changed;
  }

  stats(): RetryStatistics {
    return summarise([...this.#policies.values()].map((p) => p.recorder));
  }
}
