import { loadConfigInChild } from '../../config/child-loader.js';
import type { Config } from '../../config/index.js';
import { runUntilStopped } from '../../daemon/signals.js';
import { createRootLogger, type Logger } from '../../log/logger.js';
import { Daemon } from '../../main.js';
import { SystemdService } from '../../systemd/index.js';
import { journalPrefixed } from '../../systemd/journal.js';
import { type Command, type CommandContext, stringFlag, stringListFlag } from '../command.js';
import { loadForDaemon } from '../load-daemon-config.js';
import { parseSetFlags } from '../set-flags.js';

export const runOptions = {
  config: { type: 'string', short: 'c' },
  set: { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  database: { type: 'string' },
  broadcast: { type: 'string', multiple: true },
} as const;

/** Flags of `run` (and `demo`) as config overrides: flags beat the environment and the file. */
export function runOverrides(context: CommandContext): Record<string, unknown> {
  const overrides = parseSetFlags(stringListFlag(context, 'set'));
  const level = stringFlag(context, 'log-level');
  if (level !== undefined) overrides['log.level'] = level;
  const database = stringFlag(context, 'database');
  if (database !== undefined) overrides['storage.sqlite.path'] = database;
  const broadcast = stringListFlag(context, 'broadcast');
  if (broadcast.length > 0) overrides['discovery.broadcast'] = broadcast;
  return overrides;
}

export interface RunHooks {
  /** Called once the daemon is up (the demo starts printing then). */
  readonly onStarted?: (daemon: Daemon, logger: Logger) => void;
  /** Called after the daemon stopped, before the exit code is returned. */
  readonly onStopped?: () => Promise<void>;
}

/**
 * Runs the daemon until SIGTERM/SIGINT; SIGHUP reloads the configuration (src/daemon/signals.ts
 * has the process loop).
 *
 * Under systemd (NOTIFY_SOCKET set) it also tells systemd the truth: READY=1 once the daemon is up
 * (config loaded, database open and checked, signal handlers installed, scheduler armed),
 * RELOADING=1 and READY=1 around each reload, STOPPING=1 when shutdown begins, a STATUS= summary,
 * and WATCHDOG=1 pings while the daemon makes progress (src/systemd).
 */
export function runDaemon(context: CommandContext, config: Config, hooks: RunHooks = {}): Promise<number> {
  const logger = createRootLogger({ level: config.log.level, format: config.log.format });
  const daemon = new Daemon(config, logger);
  const systemd = new SystemdService({ env: context.env, logger: logger.child({ component: 'systemd' }) });
  const file = stringFlag(context, 'config');
  return runUntilStopped({
    daemon,
    systemd,
    logger,
    // A reload reads the same file, environment and flags as the start did.
    // In a child process, so yaml, zod and the schema never stay in the daemon's memory.
    loadConfig: () =>
      loadConfigInChild({
        ...(file === undefined ? {} : { file }),
        env: context.env,
        overrides: runOverrides(context),
      }),
    onStarted: () => hooks.onStarted?.(daemon, logger),
    ...(hooks.onStopped === undefined ? {} : { onStopped: hooks.onStopped }),
  });
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run the daemon (what the systemd unit starts)',
  usage: `[-c FILE] [--set KEY=VALUE]... [--log-level LEVEL] [--database PATH] [--broadcast ADDR]...

Discovers plugs, polls their energy meters and records every reading in SQLite until SIGTERM or
SIGINT; SIGHUP reloads the configuration.

  -c, --config FILE      config file (default: KASA_MONITOR_CONFIG, else /etc/kasa-monitor/config.yaml
                         if present, else built-in defaults)
      --set KEY=VALUE    override any config key, e.g. --set polling.interval=5s (repeatable)
      --log-level LEVEL  fatal, error, warn, info, debug or trace
      --database PATH    the SQLite file (storage.sqlite.path)
      --broadcast ADDR   discovery broadcast address (repeatable); 127.255.255.255 for simulated plugs
`,
  options: runOptions,
  async run(context) {
    // Under journald, problems printed before the logger exists get a priority (shown by -p err).
    const stderr = journalPrefixed(context.stderr, context.env);
    const { config } = await loadForDaemon({ ...context, stderr }, runOverrides(context));
    return runDaemon(context, config);
  },
};
