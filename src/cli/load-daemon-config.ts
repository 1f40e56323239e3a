import { loadConfigInChild } from '../config/child-loader.js';
import type { LoadedConfig } from '../config/load.js';
import { type CommandContext, stringFlag } from './command.js';
import { configFailure, printConfigWarnings } from './config-output.js';

/**
 * loadForCommand for the long-running daemon (`run`, `demo`): the same sources, warnings, problems
 * and exit code 78, but the configuration is read in a short-lived child process so the daemon
 * never holds the YAML parser and the schema validator in memory.
 */
export async function loadForDaemon(
  context: CommandContext,
  overrides: Record<string, unknown> = {},
  options: { readonly systemConfig?: boolean } = {},
): Promise<LoadedConfig> {
  const file = stringFlag(context, 'config');
  try {
    const loaded = await loadConfigInChild({
      ...(file === undefined ? {} : { file }),
      env: context.env,
      overrides,
      systemConfig: options.systemConfig,
    });
    printConfigWarnings(context.stderr, loaded.warnings);
    return loaded;
  } catch (error) {
    throw configFailure(context.stderr, error);
  }
}
