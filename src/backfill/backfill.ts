/**
 * Backfill: after a gap (daemon stopped, plug offline, host asleep), asks the plugs for their own
 * day statistics and stores, per local day the gap touches, what the plug counted that the
 * readings do not show: plug day total − energy the readings attribute to that day, never negative,
 * as a gap fill with its source (never as invented readings).
 *
 * The plug's days are its own local days, so a day is filled only when the plug's clock offset
 * equals the configured time_zone's offset all that day; otherwise (a plug set to another zone, or
 * a day with a DST change the plug may not share) its month is filled from the month statistics
 * instead, once the month has ended, and that is logged once per plug.
 *
 * Idempotent and bounded: only complete days within `horizonDays` that have no fill yet; at most
 * `maxRequests` statistics requests per channel per run (older months first; the rest next run).
 */
import type { EnergyStatsSource } from '../discovery/energy-stats.js';
import { zoneCalendar } from '../energy/index.js';
import {
  type EnergyFill,
  openRollupReader,
  type RollupChannel,
  type RollupReader,
  writeFillsToFile,
} from '../storage/sqlite/index.js';

const HOUR_MS = 3_600_000;

/** One plug: where its statistics come from and its meter channels. */
export interface BackfillTarget {
  readonly deviceId: string;
  readonly stats: EnergyStatsSource;
  /** `childId` null for a single plug, the full child id for a strip outlet. */
  readonly channels: readonly { readonly channel: string; readonly childId: string | null }[];
}

export interface BackfillOptions {
  readonly dbPath: string;
  readonly timeZone: string;
  readonly gapLimitMs: number;
  /** How far back gaps are filled (legacy plugs keep day statistics for about two months). */
  readonly horizonDays?: number;
  readonly maxRequests?: number;
  readonly busyTimeoutMs?: number;
}

export interface BackfillReport {
  /** Fills stored in this run. */
  readonly filled: number;
  /** Statistics requests sent (clock included). */
  readonly requests: number;
  /** Plugs that could not be asked (offline, an error answer), with why. */
  readonly failed: readonly { readonly deviceId: string; readonly error: string }[];
  /** Plugs whose clock is not in time_zone: filled per month (the caller warns once per plug). */
  readonly otherClock: readonly { readonly deviceId: string; readonly offsetMinutes: number }[];
}

interface Day {
  readonly startMs: number;
  readonly endMs: number;
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

interface Plan {
  readonly channel: RollupChannel;
  readonly childId: string | null;
  readonly days: Day[];
  readonly filledDays: Set<number>;
  readonly filledMonths: Set<number>;
}

/** Energy the readings (counted intervals) attribute to [fromMs, toMs), Wh. */
function measuredWh(reader: RollupReader, channel: RollupChannel, fromMs: number, toMs: number): number {
  const tier = fromMs % HOUR_MS === 0 && toMs % HOUR_MS === 0 ? 'hour' : 'minute';
  let sum = 0;
  for (const b of reader.series(channel, tier, fromMs, toMs).buckets) {
    if (b.startMs >= fromMs && b.startMs < toMs) sum += b.energyWh;
  }
  return sum;
}

export class Backfill {
  readonly #options: BackfillOptions;

  constructor(options: BackfillOptions) {
    this.#options = options;
  }

  async run(targets: readonly BackfillTarget[], nowMs: number = Date.now()): Promise<BackfillReport> {
    const zone = this.#options.timeZone;
    const cal = zoneCalendar(zone);
    const horizonMs = nowMs - (this.#options.horizonDays ?? 62) * 24 * HOUR_MS;
    const maxRequests = this.#options.maxRequests ?? 4;
    const reader = openRollupReader(this.#options.dbPath, {
      timeZone: zone,
      gapLimitMs: this.#options.gapLimitMs,
      ...(this.#options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: this.#options.busyTimeoutMs }),
    });
    let requests = 0;
    const failed: { deviceId: string; error: string }[] = [];
    const otherClock: { deviceId: string; offsetMinutes: number }[] = [];
    const fills: EnergyFill[] = [];
    try {
      const known = new Map(reader.channels().map((c) => [c.deviceId, c]));
      for (const target of targets) {
        const plans: Plan[] = [];
        for (const { channel: id, childId } of target.channels) {
          const channel = known.get(id);
          if (channel === undefined) continue;
          const { gaps } = reader.series(channel, 'hour', horizonMs, nowMs);
          if (gaps.length === 0) continue;
          const existing = reader.fills(channel, horizonMs - 31 * 24 * HOUR_MS, nowMs);
          const filledDays = new Set(existing.filter((f) => f.kind === 'day').map((f) => f.startMs));
          const filledMonths = new Set(existing.filter((f) => f.kind === 'month').map((f) => f.startMs));
          const days = new Map<number, Day>();
          for (const g of gaps) {
            for (let d = cal.dayStart(Math.max(g.fromMs, horizonMs)); d < g.toMs; d = cal.nextDayStart(d)) {
              const end = cal.nextDayStart(d);
              // Only ended days: the plug's total of today is still growing.
              if (end > nowMs || filledDays.has(d) || filledMonths.has(cal.monthStart(d))) continue;
              const p = cal.parts(d);
              days.set(d, { startMs: d, endMs: end, year: p.year, month: p.month, day: p.day });
            }
          }
          if (days.size > 0) {
            plans.push({
              channel,
              childId,
              days: [...days.values()].sort((a, b) => a.startMs - b.startMs),
              filledDays,
              filledMonths,
            });
          }
        }
        if (plans.length === 0) continue;
        try {
          requests++;
          const offset = await target.stats.clockOffsetMs();
          let warned = false;
          for (const plan of plans) {
            const result = await this.#fillChannel(reader, target, plan, offset, maxRequests, nowMs);
            requests += result.requests;
            if (result.otherClock && !warned) {
              warned = true;
              otherClock.push({ deviceId: target.deviceId, offsetMinutes: offset / 60_000 });
            }
            fills.push(...result.fills);
          }
        } catch (error) {
          failed.push({
            deviceId: target.deviceId,
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }
    } finally {
      reader.close();
    }
    const filled =
      fills.length === 0
        ? 0
        : writeFillsToFile(this.#options.dbPath, fills, nowMs, this.#options.busyTimeoutMs);
    return { filled, requests, failed, otherClock };
  }

  async #fillChannel(
    reader: RollupReader,
    target: BackfillTarget,
    plan: Plan,
    plugOffsetMs: number,
    maxRequests: number,
    nowMs: number,
  ): Promise<{ fills: EnergyFill[]; requests: number; otherClock: boolean }> {
    const cal = zoneCalendar(this.#options.timeZone);
    const fills: EnergyFill[] = [];
    let requests = 0;
    const sameClock = (d: Day) =>
      cal.offsetMs(d.startMs) === plugOffsetMs && cal.offsetMs(d.endMs - 1) === plugOffsetMs;
    // A month with any day on another clock is filled as a whole month (never days and month both).
    const otherClock = new Set(plan.days.filter((d) => !sameClock(d)).map((d) => cal.monthStart(d.startMs)));
    const dayLevel = plan.days.filter((d) => !otherClock.has(cal.monthStart(d.startMs)));
    const monthLevel = plan.days.filter((d) => otherClock.has(cal.monthStart(d.startMs)));
    // Day level: one get_daystat per month.
    const months = new Map<string, Day[]>();
    for (const d of dayLevel) {
      const key = `${d.year}-${d.month}`;
      months.set(key, [...(months.get(key) ?? []), d]);
    }
    for (const days of months.values()) {
      if (requests >= maxRequests) break;
      const first = days[0] as Day;
      requests++;
      const stats = await target.stats.dayStats(plan.childId, first.year, first.month);
      for (const d of days) {
        const deviceWh = stats.get(d.day);
        if (deviceWh === undefined) continue;
        const measured = measuredWh(reader, plan.channel, d.startMs, d.endMs);
        fills.push({
          deviceId: plan.channel.deviceId,
          kind: 'day',
          startMs: d.startMs,
          endMs: d.endMs,
          energyWh: Math.max(0, deviceWh - measured),
          deviceWh,
          measuredWh: measured,
          source: 'daystat',
        });
      }
    }
    // Month level: ended months only, one get_monthstat per year.
    const byYear = new Map<number, Set<number>>();
    for (const d of monthLevel) {
      const start = cal.monthStart(d.startMs);
      if (cal.nextMonthStart(start) > nowMs || plan.filledMonths.has(start)) continue;
      byYear.set(d.year, (byYear.get(d.year) ?? new Set()).add(d.month));
    }
    for (const [year, monthsOfYear] of byYear) {
      if (requests >= maxRequests) break;
      requests++;
      const stats = await target.stats.monthStats(plan.childId, year);
      for (const month of monthsOfYear) {
        const deviceWh = stats.get(month);
        if (deviceWh === undefined) continue;
        const start = cal.midnight(year, month, 1);
        const end = cal.nextMonthStart(start);
        const measured = measuredWh(reader, plan.channel, start, end);
        fills.push({
          deviceId: plan.channel.deviceId,
          kind: 'month',
          startMs: start,
          endMs: end,
          energyWh: Math.max(0, deviceWh - measured),
          deviceWh,
          measuredWh: measured,
          source: 'monthstat',
        });
      }
    }
    return { fills, requests, otherClock: monthLevel.length > 0 };
  }
}

/**
 * Logs a run's outcome: each plug on another clock once per `warned` set (the set lives as long as
 * the caller: the daemon's scheduler, or one CLI run), failures at warn, fills at info.
 */
export function logBackfill(
  report: BackfillReport,
  logger: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
  timeZone: string,
  warned: Set<string>,
): void {
  for (const { deviceId, offsetMinutes } of report.otherClock) {
    if (warned.has(deviceId)) continue;
    warned.add(deviceId);
    logger.warn(
      { device_id: deviceId, plug_offset_minutes: offsetMinutes, time_zone: timeZone },
      'backfill: the plug’s clock is not in time_zone, so its days are not ours: its gaps are filled per month',
    );
  }
  for (const { deviceId, error } of report.failed) {
    logger.warn(
      { device_id: deviceId, error },
      'backfill: cannot read the plug’s energy statistics; trying again next run',
    );
  }
  if (report.filled > 0) {
    logger.info(
      { filled: report.filled, requests: report.requests },
      `backfill: ${report.filled} gap fill(s) from the plugs’ statistics`,
    );
  }
}
