// The retry vocabulary without the schema: the resilience layer reads it in the running daemon,
// which must not load zod.
export const RETRY_STRATEGIES = ['exponential', 'linear', 'fixed', 'random'] as const;
export type RetryStrategyName = (typeof RETRY_STRATEGIES)[number];
export const RETRY_PRESETS = ['database', 'network', 'file'] as const;
export type RetryPreset = (typeof RETRY_PRESETS)[number];
