/**
 * A mistake in how something was asked for (a flag, a query parameter): the CLI shows the message
 * with a hint and exits 64; the HTTP API answers 400. Here, not in src/cli/, so parsers shared by the
 * CLI and the HTTP API (src/shared/time.ts) depend on nothing above them.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
