import { loadConfigInChild } from '../../config/child-loader.js';
import { ConfigError, formatProblem } from '../../config/errors.js';
import type { Config } from '../../config/index.js';
import { createRootLogger, type Logger } from '../../log/logger.js';
import { Daemon } from '../../main.js';
import { armTestWedge, SystemdService } from '../../systemd/index.js';
import { journalPrefixed } from '../../systemd/journal.js';
import { type Command, type CommandContext, stringFlag, stringListFlag } from '../command.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { loadForDaemon } from '../load-daemon-config.js';
import { parseSetFlags } from '../set-flags.js';

/** Extra time past shutdown.timeout before the fuse ends the process no matter what. */
const HARD_EXIT_GRACE_MS = 5_000;

/** A second stop signal within this time of the first is the same request delivered twice. */
const DUPLICATE_SIGNAL_MS = 1_000;

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
 * Runs the daemon until SIGTERM/SIGINT. The first signal drains the queue into SQLite and closes
 * cleanly (exit 0); a second signal, or the fuse at shutdown.timeout + 5 s, exits at once (exit 1).
 * SIGHUP re-reads the configuration: a bad file is rejected and the running configuration stays.
 * An uncaught error takes the same graceful path and then exits 1, so systemd restarts us.
 *
 * Under systemd (NOTIFY_SOCKET set) it also tells systemd the truth: READY=1 once the daemon is up
 * (config loaded, database open and checked, these signal handlers installed, scheduler armed),
 * RELOADING=1 and READY=1 around each reload, STOPPING=1 when shutdown begins, a STATUS= summary,
 * and WATCHDOG=1 pings while the daemon makes progress (src/systemd).
 */
export async function runDaemon(
  context: CommandContext,
  config: Config,
  hooks: RunHooks = {},
): Promise<number> {
  const logger = createRootLogger({ level: config.log.level, format: config.log.format });
  const daemon = new Daemon(config, logger);
  const systemd = new SystemdService({ env: context.env, logger: logger.child({ component: 'systemd' }) });
  let exitCode = EXIT_OK;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let started = false;
  let shuttingDown = false;
  let reloadWhenStarted = false;
  let disarmWedge: (() => void) | null = null;

  const drain = () => {
    const budget = daemon.config.shutdown.timeout;
    const fuse = setTimeout(() => {
      logger.error({ timeoutMs: budget }, 'shutdown took too long: exiting without a clean close');
      process.exit(EXIT_FAILURE);
    }, budget + HARD_EXIT_GRACE_MS);
    fuse.unref();
    daemon
      .stop(budget)
      .catch((error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        exitCode = EXIT_FAILURE;
      })
      .finally(() => resolveStopped());
  };

  let firstStopAtMs = 0;
  const shutdown = (reason: string, code: number) => {
    if (shuttingDown) {
      // One Ctrl-C under `npm run` or `timeout` arrives twice (from the terminal or the process
      // group, and forwarded by the parent): only a stop request a moment later means "now".
      if (performance.now() - firstStopAtMs < DUPLICATE_SIGNAL_MS) return;
      logger.warn({ reason }, 'second stop request: exiting now without waiting for the queue');
      process.exit(EXIT_FAILURE);
    }
    firstStopAtMs = performance.now();
    shuttingDown = true;
    exitCode = code;
    systemd.stopping(reason);
    disarmWedge?.();
    logger.info({ reason }, 'stopping: draining the queue into the database');
    // During start-up the stop waits until the parts exist, so none is left running.
    if (started) drain();
  };

  const reload = async () => {
    if (shuttingDown) {
      logger.warn('SIGHUP ignored: the daemon is stopping');
      return;
    }
    if (!started) {
      reloadWhenStarted = true;
      logger.info('SIGHUP during start-up: the configuration is reloaded once started');
      return;
    }
    systemd.reloading();
    const file = stringFlag(context, 'config');
    try {
      const loaded = await loadConfigInChild({
        ...(file === undefined ? {} : { file }),
        env: context.env,
        overrides: runOverrides(context),
      });
      if (shuttingDown) {
        logger.warn('SIGHUP ignored: the daemon is stopping');
        return;
      }
      for (const warning of loaded.warnings)
        logger.warn({ key: warning.path }, `config warning: ${formatProblem(warning)}`);
      systemd.reloaded(daemon.reload(loaded.config));
    } catch (error) {
      if (error instanceof ConfigError) {
        for (const problem of error.problems)
          logger.error({ key: problem.path }, `config rejected: ${formatProblem(problem)}`);
        logger.error('reload rejected: keeping the running configuration');
        systemd.reloaded({ rejected: error.problems.map(formatProblem) });
      } else {
        logger.error({ err: error }, 'reload failed: keeping the running configuration');
        systemd.reloaded({ rejected: [error instanceof Error ? error.message : String(error)] });
      }
    }
  };

  // Reloads run one at a time, in signal order: each reads the configuration in a child process.
  let reloads = Promise.resolve();
  const onSighup = () => {
    reloads = reloads.then(reload);
  };
  const onSigterm = () => shutdown('SIGTERM', EXIT_OK);
  const onSigint = () => shutdown('SIGINT', EXIT_OK);
  const onFatal = (error: unknown) => {
    logger.fatal({ err: error }, 'unexpected error: shutting down');
    shutdown('fatal error', EXIT_FAILURE);
  };
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);
  process.on('SIGHUP', onSighup);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  try {
    try {
      await daemon.start();
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      logger.fatal({ err: error }, `could not start: ${why}`);
      systemd.finalStatus(`could not start: ${why}`);
      await daemon.stop(0).catch(() => undefined);
      return EXIT_FAILURE;
    }
    started = true;
    if (shuttingDown) {
      drain();
    } else {
      systemd.ready(daemon);
      disarmWedge = armTestWedge(context.env, logger);
      hooks.onStarted?.(daemon, logger);
      if (reloadWhenStarted) onSighup();
    }
    await stopped;
    await hooks.onStopped?.();
    return exitCode;
  } finally {
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    process.off('SIGHUP', onSighup);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    disarmWedge?.();
    await systemd.close();
  }
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
