import type { ConfigProblem } from './errors.js';
import type { LoadedConfig } from './load.js';

/** What the config-loading child process answers (load-child.ts → child-loader.ts). */
export type ChildOutcome =
  | { readonly kind: 'loaded'; readonly loaded: LoadedConfig }
  /** A ConfigError: rebuilt in the parent with the same problems, source and message. */
  | { readonly kind: 'invalid'; readonly problems: readonly ConfigProblem[]; readonly source: string | null }
  /** Anything else went wrong: the parent loads in its own process to report it as before. */
  | { readonly kind: 'failed' };
