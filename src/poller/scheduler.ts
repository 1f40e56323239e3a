import type { Logger } from '../log/logger.js';
import { cronSlots } from '../shared/cron.js';
import { type Clock, type ClockStep, ClockStepDetector, MAX_TIMER_MS, SYSTEM_CLOCK } from './clock.js';

export interface TickHandlers {
  /** A slot is due. `scheduledMs`: the slot (UTC ms); `lateMs`: how long after it this runs. */
  readonly onTick: (scheduledMs: number, lateMs: number) => void;
  /** `count` slots passed without a tick (the event loop was blocked); they are not caught up. */
  readonly onMissed: (count: number, firstScheduledMs: number) => void;
  /**
   * The wall clock stepped (NTP, `date -s`, resume from suspend). The slots now follow the new wall
   * clock; slots passed over by a step ahead are not missed ticks, a step back does not pause ticking.
   */
  readonly onClockStep?: (step: ClockStep) => void;
}

export interface TickSource {
  stop(): void;
  /** When the next tick is due (UTC ms), as the source sees it now; null once stopped. */
  nextTickMs(): number | null;
  /**
   * When the next tick is due on the monotonic clock (performance.now() milliseconds); null once
   * stopped. Health checks judge a stall by this: it does not move when the wall clock steps.
   */
  nextTickMonoMs(): number | null;
}

export interface ScheduleOptions {
  readonly intervalMs: number;
  /** node-cron expression (six fields allow seconds); wins over `intervalMs` when set. */
  readonly schedule?: string | undefined;
}

/**
 * Longest wait between two looks at the wall clock: a clock step is seen within this, even when the
 * next slot is an hour away (a step back then moves that slot closer, a step ahead further away).
 */
export const CLOCK_LOOK_MS = 1000;

/** Longest run of missed cron slots counted one by one (seconds scanned); beyond it, counted as this. */
const MAX_CRON_SCAN_S = 3600;

/** Which wall-clock times are slots. */
interface SlotPlan {
  /** The first slot strictly after `wallMs`. */
  nextAfter(wallMs: number): number;
  /** Slots strictly after `fromMs` and at or before `toMs`, and the last of them (null: none). */
  between(fromMs: number, toMs: number): { readonly count: number; readonly last: number | null };
  dispose(): void;
}

function intervalPlan(intervalMs: number): SlotPlan {
  return {
    nextAfter: (wallMs) => Math.floor(wallMs / intervalMs) * intervalMs + intervalMs,
    between: (fromMs, toMs) => {
      const count = Math.max(0, Math.floor((toMs - fromMs) / intervalMs));
      return { count, last: count === 0 ? null : fromMs + count * intervalMs };
    },
    dispose: () => {},
  };
}

function cronPlan(expression: string): SlotPlan {
  const slots = cronSlots(expression);
  return {
    // node-cron answers for the wall clock's now, which is what the scheduler just read; only after a
    // tick that ran a moment before its slot's wall time (a step too small to notice) is `wallMs` ahead
    // of now, and then the next slot after it is found by scanning.
    nextAfter: (wallMs) => {
      const next = slots.nextAfterNow();
      if (next > wallMs) return next;
      const first = Math.floor(wallMs / 1000) * 1000 + 1000;
      for (let t = first; t < first + MAX_CRON_SCAN_S * 1000; t += 1000) {
        if (slots.matches(t)) return t;
      }
      return next;
    },
    between: (fromMs, toMs) => {
      let count = 0;
      let last: number | null = null;
      const first = Math.floor(fromMs / 1000) * 1000 + 1000;
      const end = Math.min(toMs, first + MAX_CRON_SCAN_S * 1000);
      for (let t = first; t <= end; t += 1000) {
        if (slots.matches(t)) {
          count++;
          last = t;
        }
      }
      return { count, last };
    },
    dispose: () => slots.dispose(),
  };
}

/**
 * Ticks on the slots of `plan`, planned on the monotonic clock and labelled with the wall clock.
 *
 * Why both clocks: slots are wall-clock times (multiples of the interval since the epoch, or a cron
 * expression), so readings of every plug share them, across restarts too, and line up in graphs. But
 * waiting for a wall-clock time breaks when the clock steps: stepped back two minutes, a scheduler that
 * sleeps "until 12:00:10" sleeps two more minutes; stepped ahead a day, it sees 86,400 slots "missed".
 * So each slot, when planned, is turned into a monotonic due time (setTimeout runs on that clock as
 * well), and the wall clock is looked at least every CLOCK_LOOK_MS: when it stepped, the next slot is
 * planned afresh from the new wall time. A tick is then never more than one slot away, whichever way
 * the clock moved, and a slot passed while the event loop was blocked is still counted as missed.
 *
 * After a step back, slot times repeat (the wall clock shows them again) and are ticked again: the
 * schedule follows the clock people read, and polling never pauses. After a step ahead, the slots
 * passed over are neither run nor counted as missed: they never came in real time.
 */
function startPlannedTicks(plan: SlotPlan, handlers: TickHandlers, clock: Clock): TickSource {
  const detector = new ClockStepDetector(clock);
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  /** The next slot (wall ms) and when it is due (monotonic ms). */
  let slot = 0;
  let due = 0;

  const planFrom = (wall: number, mono: number): void => {
    slot = plan.nextAfter(wall);
    due = mono + Math.max(0, slot - wall);
  };
  const arm = (): void => {
    if (stopped) return;
    const wait = Math.max(0, Math.min(due - clock.monotonicMs(), CLOCK_LOOK_MS, MAX_TIMER_MS));
    timer = setTimeout(wake, wait);
  };
  const wake = (): void => {
    timer = null;
    if (stopped) return;
    const step = detector.look();
    const wall = clock.wallMs();
    const mono = clock.monotonicMs();
    if (step !== null) {
      // The slot held was planned from a wall time that no longer holds: plan from the new one. If it
      // was due already, tick now (on time by the monotonic clock), labelled with the wall time now.
      const wasDue = mono >= due;
      planFrom(wall, mono);
      handlers.onClockStep?.(step);
      if (wasDue) handlers.onTick(wall, 0);
      arm();
      return;
    }
    if (mono < due) {
      // A look at the clock between slots, or a timer that fired a moment early.
      arm();
      return;
    }
    // Due. Slots after the held one that have also passed were missed (the loop was blocked): tick
    // the latest, count the others.
    const later = plan.between(slot, wall);
    const missed = later.count;
    const first = slot;
    const run = later.last ?? slot;
    planFrom(Math.max(wall, run), mono);
    arm();
    if (missed > 0) handlers.onMissed(missed, first);
    handlers.onTick(run, Math.max(0, wall - run));
  };

  planFrom(clock.wallMs(), clock.monotonicMs());
  arm();
  return {
    stop: () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      plan.dispose();
    },
    nextTickMs: () => (stopped ? null : slot),
    nextTickMonoMs: () => (stopped ? null : due),
  };
}

/**
 * Ticks at every multiple of `intervalMs` since the epoch (UTC): 10 s gives :00, :10, :20 ... Every
 * next slot is computed from the clock, not from the previous timer, so setTimeout's lateness never
 * accumulates into drift; see startPlannedTicks for how the wall and monotonic clocks share the work.
 */
export function startIntervalTicks(
  intervalMs: number,
  handlers: TickHandlers,
  clock: Clock = SYSTEM_CLOCK,
): TickSource {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new RangeError(`poll interval must be positive, got ${intervalMs}`);
  }
  return startPlannedTicks(intervalPlan(intervalMs), handlers, clock);
}

/** Ticks on `schedule` (node-cron's matcher, through src/poller/cron.ts) when set, else every `intervalMs`. */
export function startTicks(options: ScheduleOptions, handlers: TickHandlers, _logger?: Logger): TickSource {
  if (options.schedule !== undefined && options.schedule.trim() !== '') {
    return startPlannedTicks(cronPlan(options.schedule), handlers, SYSTEM_CLOCK);
  }
  return startIntervalTicks(options.intervalMs, handlers);
}
