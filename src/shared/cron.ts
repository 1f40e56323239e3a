import cron from 'node-cron';

/** The only importer of node-cron. */

/** True when `expression` is a node-cron expression (five fields, or six with seconds first). */
export function isValidCronExpression(expression: string): boolean {
  return cron.validate(expression);
}

export interface CronHandlers {
  /** A scheduled slot is due; `scheduledMs` is the slot's time (UTC ms). */
  readonly onTick: (scheduledMs: number) => void;
  /** node-cron reports a slot it could not run in time (it never catches up). */
  readonly onMissed: (scheduledMs: number) => void;
  /** node-cron's own warnings and errors. */
  readonly onLog?: (level: 'warn' | 'error', message: string) => void;
}

export interface CronJob {
  stop(): void;
  /** The next slot after now (UTC ms), as node-cron computes it; null once stopped. */
  nextRunMs(): number | null;
}

/**
 * Runs `onTick` on every slot of `expression` (six fields allow seconds). `onTick` must return at once:
 * the poller does its own per-device overlap control, so node-cron's `noOverlap` is off.
 */
export function scheduleCron(expression: string, handlers: CronHandlers, timezone?: string): CronJob {
  const log = handlers.onLog ?? (() => {});
  const task = cron.schedule(
    expression,
    (context) => {
      handlers.onTick(context.date.getTime());
    },
    {
      noOverlap: false,
      ...(timezone === undefined ? {} : { timezone }),
      logger: {
        info: () => {},
        debug: () => {},
        warn: (message) => log('warn', message),
        error: (message) => log('error', String(message)),
      },
    },
  );
  task.on('execution:missed', (context) => {
    handlers.onMissed(context.date.getTime());
  });
  let stopped = false;
  return {
    stop: () => {
      stopped = true;
      void task.destroy();
    },
    nextRunMs: () => (stopped ? null : (task.getNextRun()?.getTime() ?? null)),
  };
}

/** The slots of a cron expression, for a scheduler that runs its own timers (src/poller/scheduler.ts). */
export interface CronSlots {
  /** The first slot after the wall clock's now (UTC ms). */
  nextAfterNow(): number;
  /** True when `wallMs` (rounded down to the second) is a slot. */
  matches(wallMs: number): boolean;
  dispose(): void;
}

/**
 * node-cron's matcher without its runner. The runner sleeps until the next slot by the wall clock, so a
 * clock stepped back pauses it for as long as the step, and a step ahead replays every slot passed
 * over as "missed"; src/poller/scheduler.ts plans on the monotonic clock instead and asks node-cron only
 * which wall-clock times are slots. The task is never started.
 */
export function cronSlots(expression: string, timezone?: string): CronSlots {
  const task = cron.createTask(expression, () => {}, timezone === undefined ? {} : { timezone });
  return {
    nextAfterNow: () => task.getNextRuns(1)[0]?.getTime() ?? Number.NaN,
    matches: (wallMs) => task.match(new Date(Math.floor(wallMs / 1000) * 1000)),
    dispose: () => {
      void task.destroy();
    },
  };
}
