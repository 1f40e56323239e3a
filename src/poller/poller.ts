import { performance } from 'node:perf_hooks';
import type { Endpoint, Transport } from '../discovery/kasa.js';
import type { PollTarget } from '../discovery/registry.js';
import type { AnswerFailure, Responder } from '../discovery/types.js';
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../log/logger.js';
import {
  DeviceBackoff,
  type DeviceBackoffOptions,
  type DeviceBackoffStats,
  isTransientDeviceFailure,
} from '../resilience/index.js';
import { describeStep } from './clock.js';
import { DurationHistogram, type DurationSummary } from './histogram.js';
import { canonicalReading, normaliseRealtime, type RejectReason } from './normalise.js';
import { startTicks, type TickSource } from './scheduler.js';

export interface PollerOptions {
  /** Poll period when no `schedule` is set; ticks fall on multiples of it (UTC). */
  readonly intervalMs: number;
  /** node-cron expression (six fields allow seconds); wins over `intervalMs`. */
  readonly schedule?: string | undefined;
  /** Per request: a plug that has not answered by then is counted as a timeout. */
  readonly timeoutMs: number;
  /** Devices polled at once, across the whole fleet. */
  readonly concurrency: number;
  readonly transport: Transport;
  /** Consecutive unanswered polls before a plug is backed off (default 3). */
  readonly backoffAfter?: number | undefined;
  /** Longest pause of a backed-off plug (default 5 min); the first pause is one interval. */
  readonly backoffMaxMs?: number | undefined;
}

export const DEFAULT_BACKOFF_AFTER = 3;
export const DEFAULT_BACKOFF_MAX_MS = 5 * 60_000;

export function deviceBackoffOptions(options: PollerOptions): DeviceBackoffOptions {
  return {
    after: options.backoffAfter ?? DEFAULT_BACKOFF_AFTER,
    baseMs: options.intervalMs,
    maxMs: Math.max(options.intervalMs, options.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS),
  };
}

/**
 * Why a request gave no reading: no answer (transport), an answer that is not one (`malformed`), an
 * answer from another device than the one polled (`other-device`: its address changed hands), or
 * an answer rejected by normalise.
 */
export type PollFailure = AnswerFailure | RejectReason | 'other-device';

export const POLL_FAILURES: readonly PollFailure[] = [
  'timeout',
  'refused',
  'network',
  'malformed',
  'error-code',
  'implausible',
  'other-device',
];

/** What the poller needs from the registry (DeviceRegistry implements it). */
export interface PollSource {
  pollTargets(): readonly PollTarget[];
  /**
   * The outcome of one poll job: `answered` when the device answered and proved who it is (even
   * with a reading rejected as implausible: a plug that answers is online).
   */
  recordPoll(deviceId: string, answered: boolean, nowMs?: number): void;
  /**
   * A poll of `deviceId` at `endpoint` was answered by another device: record nothing for the
   * expected one; the registry learns who is at that address now. `identity` is the transport's
   * description of the responder (see EnergyAnswer).
   */
  answeredBy(
    deviceId: string,
    endpoint: Endpoint,
    responder: Responder,
    identity: unknown,
    nowMs?: number,
  ): void;
}

/** Where readings go: the bounded queue. `offer` must never block. */
export interface ReadingSink {
  offer(reading: Reading): unknown;
}

export interface PollerStats {
  readonly ticks: number;
  /** Slots that passed without a tick (event loop blocked); never caught up. */
  readonly missedTicks: number;
  /** Ticks that ran more than LATE_TICK_MS after their slot. */
  readonly lateTicks: number;
  /** Device polls not started because the device's previous poll was still running. */
  readonly skippedOverlap: number;
  /** Readings produced (and offered to the queue). */
  readonly pollsOk: number;
  /** Requests that produced no reading, by reason. */
  readonly rejected: Readonly<Record<PollFailure, number>>;
  /** Device jobs queued or running now. */
  readonly inFlight: number;
  /** Requests sent, ever. */
  readonly requests: number;
  /** When the last tick ran (UTC ms), and how late after its slot. */
  readonly lastTickMs: number | null;
  readonly lastTickLateMs: number | null;
  /**
   * When the next tick is due (UTC ms) as the schedule sees it now; null while stopped. A due time
   * that stays in the past means the scheduler stopped ticking (the systemd watchdog checks this).
   */
  readonly nextTickMs: number | null;
  /**
   * The same due time on the monotonic clock (performance.now() ms): what health checks compare with,
   * since it does not move when the wall clock steps. Null while stopped.
   */
  readonly nextTickMonoMs: number | null;
  /** Wall-clock steps seen by the scheduler (each logged once). */
  readonly clockSteps: number;
  /** The latest any tick ran after its slot, ever. */
  readonly maxTickLateMs: number;
  /** Duration of single requests (send to answer or timeout). */
  readonly pollDuration: DurationSummary;
  /** Per-plug backoff: plugs paused, polls skipped because of it. */
  readonly backoff: DeviceBackoffStats;
}

/** A tick that runs this long after its slot is counted late. */
export const LATE_TICK_MS = 250;

interface Episode {
  failures: number;
  reason: PollFailure;
}

function emptyFailures(): Record<PollFailure, number> {
  return {
    timeout: 0,
    refused: 0,
    network: 0,
    malformed: 0,
    'error-code': 0,
    implausible: 0,
    'other-device': 0,
  };
}

/** The answer proves it comes from the device polled (for a strip: one with every outlet polled). */
function isExpected(target: PollTarget, responder: Responder): boolean {
  if (responder.deviceId !== target.deviceId) return false;
  return target.channels.every((c) => c.childId === null || responder.childIds.includes(c.childId));
}

/**
 * Polls the energy meter of every online, meter-bearing device on each tick.
 *
 * - No overlap per device: a device whose previous job is still queued or running is skipped (counted).
 * - A global bound (`concurrency`) on devices polled at once; a strip's outlets are polled one after
 *   another inside the strip's job, so a strip never has more than one request in flight.
 * - Every request has its own timeout, so a slow plug holds one slot for at most that long and delays
 *   no other plug beyond it. After a timeout/refusal the rest of a strip's outlets wait for next tick.
 * - A reading's tsMs is taken when its request is sent. Readings are offered to the queue, never awaited.
 * - Every job proves who answers (sysinfo in the same request) on its first and last request; an
 *   answer from another device records nothing for the job and tells the registry who is there.
 *   A strip's readings are offered at the end of its job, once the last answer proved it again.
 * - Failures never throw: they are counted by reason, logged once per device episode at warn (then at
 *   debug), and reported to the registry, which takes the device offline after the tolerance.
 */
export class Poller {
  readonly name = 'poller';
  #options: PollerOptions;
  #ticks: TickSource | null = null;
  #stopping = false;
  readonly #busy = new Set<string>();
  readonly #jobs = new Set<Promise<void>>();
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #episodes = new Map<string, Episode>();
  readonly #durations = new DurationHistogram();
  #tickCount = 0;
  #missedTicks = 0;
  #lateTicks = 0;
  #skippedOverlap = 0;
  #pollsOk = 0;
  #requests = 0;
  readonly #rejected = emptyFailures();
  #lastTickMs: number | null = null;
  #lastTickLateMs: number | null = null;
  #maxTickLateMs = 0;
  #clockSteps = 0;

  readonly #backoff: DeviceBackoff;

  constructor(
    private readonly registry: PollSource,
    private readonly queue: ReadingSink,
    options: PollerOptions,
    private readonly logger: Logger,
    /** Per-plug backoff; built from the options when not given (tests pass one with a fake clock). */
    backoff?: DeviceBackoff,
  ) {
    Poller.#validate(options);
    this.#options = options;
    this.#backoff = backoff ?? new DeviceBackoff(deviceBackoffOptions(options));
  }

  get options(): PollerOptions {
    return this.#options;
  }

  /** Starts ticking (on `schedule`, or on multiples of `intervalMs`). */
  start(): void {
    if (this.#ticks !== null) return;
    this.#stopping = false;
    this.#ticks = startTicks(
      this.#options,
      {
        onTick: (scheduledMs, lateMs) => {
          void this.#tick(scheduledMs, lateMs);
        },
        onMissed: (count, firstScheduledMs) => {
          this.#missedTicks += count;
          this.logger.warn(
            { missed: count, slot: new Date(firstScheduledMs).toISOString() },
            'poll ticks missed: the event loop was blocked',
          );
        },
        onClockStep: (step) => {
          this.#clockSteps++;
          this.logger.warn(
            {
              stepMs: Math.round(step.stepMs),
              expected: new Date(step.expectedWallMs).toISOString(),
              now: new Date(step.wallMs).toISOString(),
            },
            `wall clock step: the clock jumped ${describeStep(step.stepMs)}; polling goes on by the monotonic clock, readings keep wall-clock times`,
          );
        },
      },
      this.logger,
    );
  }

  /**
   * Stops ticking; jobs waiting for a slot are dropped, strips stop between outlets, and the requests
   * in flight are awaited (each bounded by its timeout).
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#ticks?.stop();
    this.#ticks = null;
    for (const wake of this.#waiting.splice(0)) wake();
    await Promise.allSettled([...this.#jobs]);
  }

  /** Applies reloaded options: a changed interval or schedule reschedules at once. */
  reconfigure(options: PollerOptions): void {
    Poller.#validate(options);
    const previous = this.#options;
    this.#backoff.setOptions(deviceBackoffOptions(options));
    this.#options = options;
    const reschedule = previous.intervalMs !== options.intervalMs || previous.schedule !== options.schedule;
    if (reschedule && this.#ticks !== null) {
      this.#ticks.stop();
      this.#ticks = null;
      this.start();
    }
    this.#drain();
  }

  /** Runs one tick now; resolves when every job it started has finished (for tests and benchmarks). */
  tick(): Promise<void> {
    this.#stopping = false;
    return this.#tick(Date.now(), 0);
  }

  stats(): PollerStats {
    return {
      ticks: this.#tickCount,
      missedTicks: this.#missedTicks,
      lateTicks: this.#lateTicks,
      skippedOverlap: this.#skippedOverlap,
      pollsOk: this.#pollsOk,
      rejected: { ...this.#rejected },
      inFlight: this.#busy.size,
      requests: this.#requests,
      lastTickMs: this.#lastTickMs,
      lastTickLateMs: this.#lastTickLateMs,
      nextTickMs: this.#ticks?.nextTickMs() ?? null,
      nextTickMonoMs: this.#ticks?.nextTickMonoMs() ?? null,
      clockSteps: this.#clockSteps,
      maxTickLateMs: this.#maxTickLateMs,
      pollDuration: this.#durations.summary(),
      backoff: this.#backoff.stats(),
    };
  }

  /** Something else saw the plug (discovery): if it is backed off, its next poll is a trial. */
  wake(deviceId: string): void {
    this.#backoff.wake(deviceId);
  }

  static #validate(options: PollerOptions): void {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`poll concurrency must be a positive integer, got ${options.concurrency}`);
    }
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new RangeError(`poll timeout must be positive, got ${options.timeoutMs}`);
    }
  }

  #tick(scheduledMs: number, lateMs: number): Promise<void> {
    this.#tickCount++;
    this.#lastTickMs = scheduledMs + lateMs;
    this.#lastTickLateMs = lateMs;
    if (lateMs > this.#maxTickLateMs) this.#maxTickLateMs = lateMs;
    if (lateMs > LATE_TICK_MS) this.#lateTicks++;
    let targets: readonly PollTarget[];
    try {
      targets = this.registry.pollTargets();
    } catch (err) {
      this.logger.error({ err }, 'poll tick failed: no targets');
      return Promise.resolve();
    }
    const started: Promise<void>[] = [];
    for (const target of targets) {
      // A plug that keeps failing is paused (counted in backoff.skippedPolls) until its next trial.
      if (!this.#backoff.allow(target.deviceId)) continue;
      if (this.#busy.has(target.deviceId)) {
        this.#skippedOverlap++;
        this.logger.debug({ deviceId: target.deviceId }, 'previous poll still running: skipped');
        continue;
      }
      this.#busy.add(target.deviceId);
      const job = this.#job(target).finally(() => {
        this.#busy.delete(target.deviceId);
        this.#jobs.delete(job);
      });
      this.#jobs.add(job);
      started.push(job);
    }
    return Promise.all(started).then(() => undefined);
  }

  async #job(target: PollTarget): Promise<void> {
    await this.#acquire();
    if (this.#stopping) {
      this.#release();
      return;
    }
    let ok = false;
    let attempted = false;
    /** The device answered and proved who it is (a reading may still have been rejected). */
    let answered = false;
    /** Another device answered at the address: the registry sorts out who is where. */
    let misdirected = false;
    /** The plug did not answer at all (timeout, refused, network): counts towards its backoff. */
    let unanswered = false;
    /** Readings of this job, offered once the job's last answer has proven who answered again. */
    const held: Reading[] = [];
    const last = target.channels.length - 1;
    try {
      for (const [index, { channel, childId }] of target.channels.entries()) {
        if (this.#stopping) break;
        attempted = true;
        const { transport, timeoutMs } = this.#options;
        const endpoint = target.connection.endpoint;
        const tsMs = Date.now();
        const t0 = performance.now();
        this.#requests++;
        // Who answers is asked on the job's first request and again on its last: a strip's outlets in
        // between follow within milliseconds, and its sysinfo on each would cost most of the CPU.
        const identify = !answered || index === last;
        const answer = await target.connection.getEnergy(childId, { transport, timeoutMs, identify });
        this.#durations.record(performance.now() - t0);
        if (!answer.ok) {
          unanswered = isTransientDeviceFailure(answer.failure);
          this.#failed(target.deviceId, channel, answer.failure, answer.detail);
          // The device is not answering: its other outlets would only time out one after another.
          // A garbled answer (malformed) says nothing about the next outlet: go on.
          if (unanswered) break;
          continue;
        }
        if (answer.responder !== null && !isExpected(target, answer.responder)) {
          // Never file another device's reading under this one; the registry logs the change once.
          misdirected = true;
          held.length = 0;
          this.#rejected['other-device']++;
          this.registry.answeredBy(target.deviceId, endpoint, answer.responder, answer.identity);
          break;
        }
        answered = true;
        const result =
          answer.canonical === undefined
            ? normaliseRealtime(answer.reply, channel, tsMs)
            : canonicalReading(answer.canonical, channel, tsMs);
        if (result.ok) {
          held.push(result.reading);
        } else {
          this.#failed(target.deviceId, channel, result.reason, result.detail);
        }
      }
      for (const reading of held) {
        ok = true;
        this.#pollsOk++;
        this.#offer(reading);
      }
      if (attempted && !misdirected) {
        if (ok) this.#recovered(target.deviceId);
        this.#backoffOutcome(target.deviceId, ok || !unanswered);
        this.registry.recordPoll(target.deviceId, answered);
      }
    } catch (err) {
      // Not expected (connections never reject, the registry catches its listeners' errors):
      // whatever happens, the poller and the other devices carry on.
      this.logger.error({ err, deviceId: target.deviceId }, 'poll job failed');
    } finally {
      this.#release();
    }
  }

  #offer(reading: Reading): void {
    try {
      this.queue.offer(reading);
    } catch (err) {
      // The queue never blocks; a throwing onOffer listener must not cost the other readings.
      this.logger.error({ err, channel: reading.channel }, 'reading sink threw on offer');
    }
  }

  #failed(deviceId: string, channel: string, reason: PollFailure, detail: string): void {
    this.#rejected[reason]++;
    const episode = this.#episodes.get(deviceId);
    if (episode === undefined) {
      this.#episodes.set(deviceId, { failures: 1, reason });
      this.logger.warn(
        { deviceId, channel, reason, detail },
        'poll failed (further failures logged at debug)',
      );
    } else {
      episode.failures++;
      this.logger.debug({ deviceId, channel, reason, detail }, 'poll failed');
    }
  }

  #backoffOutcome(deviceId: string, answered: boolean): void {
    if (answered) {
      if (this.#backoff.answered(deviceId)) {
        this.logger.info({ deviceId }, 'backed-off plug answers again: polled on every tick');
      }
      return;
    }
    const pauseMs = this.#backoff.unanswered(deviceId);
    if (pauseMs === 0) return;
    const failures = this.#backoff.state(deviceId)?.failures ?? 0;
    const first = failures === (this.#options.backoffAfter ?? DEFAULT_BACKOFF_AFTER);
    this.logger[first ? 'warn' : 'debug'](
      { deviceId, failures, pauseMs },
      first
        ? 'plug does not answer: backing off (polled less and less often until it answers)'
        : 'plug still not answering',
    );
  }

  #recovered(deviceId: string): void {
    const episode = this.#episodes.get(deviceId);
    if (episode === undefined) return;
    this.#episodes.delete(deviceId);
    this.logger.info({ deviceId, failures: episode.failures }, 'device answering polls again');
  }

  #acquire(): Promise<void> {
    if (this.#active < this.#options.concurrency && this.#waiting.length === 0) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#waiting.push(() => {
        this.#active++;
        resolve();
      });
    });
  }

  #release(): void {
    this.#active--;
    this.#drain();
  }

  #drain(): void {
    while (this.#active < this.#options.concurrency && this.#waiting.length > 0) {
      this.#waiting.shift()?.();
    }
  }
}
