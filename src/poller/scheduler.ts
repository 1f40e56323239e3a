import type { Logger } from '../log/logger.js';
import { scheduleCron } from './cron.js';

export interface TickHandlers {
  /** A slot is due. `scheduledMs`: the slot (UTC ms); `lateMs`: how long after it this runs. */
  readonly onTick: (scheduledMs: number, lateMs: number) => void;
  /** `count` slots passed without a tick (the event loop was blocked); they are not caught up. */
  readonly onMissed: (count: number, firstScheduledMs: number) => void;
}

export interface TickSource {
  stop(): void;
  /** When the next tick is due (UTC ms), as the source sees it now; null once stopped. */
  nextTickMs(): number | null;
}

export interface ScheduleOptions {
  readonly intervalMs: number;
  /** node-cron expression (six fields allow seconds); wins over `intervalMs` when set. */
  readonly schedule?: string | undefined;
}

/**
 * Ticks at every multiple of `intervalMs` since the epoch (UTC): 10 s gives :00, :10, :20 ...
 *
 * Why aligned to wall-clock multiples: every next slot is computed from the clock, not from the
 * previous timer, so setTimeout's lateness never accumulates into drift (a naive setInterval of
 * 10 s slips by milliseconds per tick); readings of every plug share the same slots, across restarts
 * too, which makes them line up in graphs and per-period sums; and a slot that passed while the event
 * loop was blocked is detected exactly and reported as missed instead of silently shifting the rhythm.
 */
export function startIntervalTicks(intervalMs: number, handlers: TickHandlers): TickSource {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new RangeError(`poll interval must be positive, got ${intervalMs}`);
  }
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let next = Math.floor(Date.now() / intervalMs) * intervalMs + intervalMs;

  const arm = (): void => {
    if (stopped) return;
    timer = setTimeout(fire, Math.max(0, next - Date.now()));
  };
  const fire = (): void => {
    timer = null;
    if (stopped) return;
    const now = Date.now();
    if (now < next) {
      // Timers may fire a millisecond early relative to Date.now(): wait for the slot itself.
      arm();
      return;
    }
    const missed = Math.floor((now - next) / intervalMs);
    const first = next;
    const slot = next + missed * intervalMs;
    next = slot + intervalMs;
    arm();
    if (missed > 0) handlers.onMissed(missed, first);
    handlers.onTick(slot, now - slot);
  };
  arm();
  return {
    stop: () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
    nextTickMs: () => (stopped ? null : next),
  };
}

/** Ticks on `schedule` (node-cron, through src/poller/cron.ts) when set, else every `intervalMs`. */
export function startTicks(options: ScheduleOptions, handlers: TickHandlers, logger: Logger): TickSource {
  if (options.schedule !== undefined && options.schedule.trim() !== '') {
    const job = scheduleCron(options.schedule, {
      onTick: (scheduledMs) => handlers.onTick(scheduledMs, Math.max(0, Date.now() - scheduledMs)),
      onMissed: (scheduledMs) => handlers.onMissed(1, scheduledMs),
      onLog: (level, message) => logger[level]({ schedule: options.schedule }, `node-cron: ${message}`),
    });
    return { stop: () => job.stop(), nextTickMs: () => job.nextRunMs() };
  }
  return startIntervalTicks(options.intervalMs, handlers);
}
