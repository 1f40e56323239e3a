import { ConfigError, type ConfigProblem, formatProblem } from '../config/errors.js';
import { EXIT_CONFIG } from './exit-codes.js';

/** Thrown after the problems were printed; the CLI turns it into exit code 78. */
export class ConfigExit extends Error {
  readonly exitCode = EXIT_CONFIG;
}

/** Prints each non-fatal problem (an unknown KASA_MONITOR_* variable, ...) as `warning: ...`. */
export function printConfigWarnings(stderr: NodeJS.WritableStream, warnings: readonly ConfigProblem[]): void {
  for (const warning of warnings) stderr.write(`warning: ${formatProblem(warning)}\n`);
}

/**
 * A ConfigError becomes every problem printed with its key path and a ConfigExit (exit 78); any
 * other error is returned unchanged. For `throw configFailure(stderr, error)` in a catch block.
 */
export function configFailure(stderr: NodeJS.WritableStream, error: unknown): unknown {
  if (!(error instanceof ConfigError)) return error;
  const where = error.source ?? 'configuration';
  stderr.write(`${where}: ${error.problems.length} problem(s):\n`);
  for (const problem of error.problems) stderr.write(`  ${formatProblem(problem)}\n`);
  return new ConfigExit(error.message);
}
