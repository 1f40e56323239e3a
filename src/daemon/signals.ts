/**
 * The daemon as a process: signals, the reload loop and the exit code. SIGTERM/SIGINT drain the
 * queue into SQLite and close cleanly (exit 0); a second stop request, or the fuse at
 * shutdown.timeout + 5 s, exits at once (exit 1). SIGHUP re-reads the configuration: a bad file is
 * rejected and the running configuration stays. An uncaught error takes the same graceful path and
 * then exits 1, so systemd restarts us. systemd is told each step (READY, RELOADING, STOPPING).
 */
import { EXIT_FAILURE, EXIT_OK } from '../cli/exit-codes.js';
import { ConfigError, type ConfigProblem, formatProblem } from '../config/errors.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { ReloadOutcome, SupervisedDaemon } from '../systemd/service.js';

/** Extra time past shutdown.timeout before the fuse ends the process no matter what. */
const HARD_EXIT_GRACE_MS = 5_000;

/** A second stop signal within this time of the first is the same request delivered twice. */
const DUPLICATE_SIGNAL_MS = 1_000;

/** What the process loop drives: the composition root (src/main.ts). */
export interface ServedDaemon extends SupervisedDaemon {
  start(): Promise<void>;
  stop(deadlineMs: number): Promise<unknown>;
  reload(
    next: Config,
  ): Promise<{ readonly applied: readonly string[]; readonly needRestart: readonly string[] }>;
}

/** What the process loop tells systemd (src/systemd/service.ts). */
export interface ServiceNotices {
  ready(daemon: SupervisedDaemon): void;
  reloading(): void;
  reloaded(outcome: ReloadOutcome): void;
  stopping(reason: string): void;
  finalStatus(text: string): void;
  close(): Promise<void>;
}

/** A freshly loaded configuration with its warnings. */
export interface Reloaded {
  readonly config: Config;
  readonly warnings: readonly ConfigProblem[];
}

export interface ProcessOptions {
  readonly daemon: ServedDaemon;
  readonly systemd: ServiceNotices;
  readonly logger: Logger;
  /**
   * Loads the configuration again for a reload, from the same file, environment and flags. May be
   * asynchronous; throws (or rejects with) a ConfigError for a configuration that is not valid.
   */
  readonly loadConfig: () => Reloaded | Promise<Reloaded>;
  /** Called once the daemon is up (the demo starts printing then). */
  readonly onStarted?: () => void;
  /** Called after the daemon stopped, before the exit code is returned. */
  readonly onStopped?: () => Promise<void>;
}

/**
 * Starts the daemon and serves it until a stop request, then stops it. Returns the exit code.
 * Signal handlers are installed before the start and removed before returning.
 */
export async function runUntilStopped(options: ProcessOptions): Promise<number> {
  const { daemon, systemd, logger } = options;
  let exitCode = EXIT_OK;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let started = false;
  let shuttingDown = false;
  let reloadWhenStarted = false;

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
    logger.info({ reason }, 'stopping: draining the queue into the database');
    // During start-up the stop waits until the parts exist, so none is left running.
    if (started) drain();
  };

  const reloads = new ReloadLoop(options, () => shuttingDown);
  const onSighup = () => {
    if (shuttingDown) {
      logger.warn('SIGHUP ignored: the daemon is stopping');
      return;
    }
    if (!started) {
      reloadWhenStarted = true;
      logger.info('SIGHUP during start-up: the configuration is reloaded once started');
      return;
    }
    reloads.request();
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
      options.onStarted?.();
      if (reloadWhenStarted) reloads.request();
    }
    await stopped;
    // A reload still loading its file ends before the process does.
    await reloads.settled();
    await options.onStopped?.();
    return exitCode;
  } finally {
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    process.off('SIGHUP', onSighup);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    await systemd.close();
  }
}

/**
 * SIGHUP reloads, one at a time: a SIGHUP during a reload asks for one more after it (any number of
 * them coalesce into that one), so the file is always read after the last signal. Each reload is
 * announced to systemd (RELOADING=1) and answered (READY=1, with what was applied or rejected).
 */
class ReloadLoop {
  #running: Promise<void> | null = null;
  #again = false;

  constructor(
    private readonly options: ProcessOptions,
    private readonly stopping: () => boolean,
  ) {}

  request(): void {
    if (this.#running !== null) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = null;
    });
  }

  async settled(): Promise<void> {
    await this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      if (this.stopping()) return;
      await this.#reloadOnce();
    } while (this.#again);
  }

  async #reloadOnce(): Promise<void> {
    const { daemon, systemd, logger } = this.options;
    systemd.reloading();
    try {
      const loaded = await this.options.loadConfig();
      // The configuration is read in a child process: a stop may have begun meanwhile.
      if (this.stopping()) {
        logger.warn('SIGHUP ignored: the daemon is stopping');
        return;
      }
      for (const warning of loaded.warnings)
        logger.warn({ key: warning.path }, `config warning: ${formatProblem(warning)}`);
      systemd.reloaded(await daemon.reload(loaded.config));
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
  }
}
