import { statSync } from 'node:fs';
import { type LoadedConfig, loadConfig } from '../config/index.js';
import { type CommandContext, stringFlag } from './command.js';
import { configFailure, printConfigWarnings } from './config-output.js';
import { keepSidecarsOwned } from './ownership.js';

export { ConfigExit } from './config-output.js';
export { parseSetFlags } from './set-flags.js';

/**
 * Loads the configuration for a command: `-c FILE`, else KASA_MONITOR_CONFIG, else
 * /etc/kasa-monitor/config.yaml if present, else defaults; then environment, then `overrides`
 * (dotted key paths from flags). Every problem is printed with its key path.
 */
export function loadForCommand(
  context: CommandContext,
  overrides: Record<string, unknown> = {},
  options: { readonly systemConfig?: boolean } = {},
): LoadedConfig {
  const file = stringFlag(context, 'config');
  try {
    const loaded = loadConfig({
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

/**
 * The database a command reads, checked before anything opens it: when it cannot be used, the
 * error names the path that was tried and why that path (where the setting came from).
 */
export function existingDatabase(loaded: LoadedConfig): string {
  const path = loaded.config.storage.sqlite.path;
  const why = `(${loaded.databaseOrigin})`;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new Error(`${path} is a directory, not a database file ${why}`);
    keepSidecarsOwned(path);
    return path;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      throw new Error(
        `cannot read the database ${path}: permission denied ${why}. The service's database belongs to the service; run this as root (sudo)`,
      );
    }
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const hint =
        loaded.source === null
          ? "To read the service's database, run this as root on the machine where it is installed (it reads /etc/kasa-monitor/config.yaml), or name it with -c FILE or DATABASE_PATH."
          : 'Has the daemon run with this configuration? Otherwise name the database with storage.sqlite.path, -c FILE or DATABASE_PATH.';
      throw new Error(`no database at ${path} ${why}. ${hint}`);
    }
    throw error;
  }
}
