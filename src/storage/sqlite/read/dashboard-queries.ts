/**
 * The dashboard's queries: power series of any range in a bounded number of points, and energy per
 * local day. Power comes from raw readings for short ranges and from the minute or hour rollups for
 * long ones (stored rows are closed buckets; the part after the last stored row is grouped from raw
 * readings here), so a 30-day chart reads ~720 rows a channel instead of ~260,000 readings.
 * Synchronous: runs in a reader worker (reader-session.ts).
 */
import { PeriodCalendar, summarisePeriods, type Tier } from '../../../energy/index.js';
import { KasaStorageCode, StorageError } from '../../errors.js';
import type { Db } from '../connection.js';
import { openRollupReader } from './rollup-reader.js';

export type SeriesResolution = 'raw' | 'minute' | 'hour';

export interface SeriesQuery {
  /** Inclusive, UTC ms. */
  readonly fromMs: number;
  /** Exclusive, UTC ms. */
  readonly toMs: number;
  /** Channel ids (device ids / child ids); all channels when absent. */
  readonly channels?: readonly string[];
  /** Most points per channel; the bucket width follows from it. */
  readonly points: number;
  /** Force a source; by default the coarsest that still gives the bucket width. */
  readonly resolution?: SeriesResolution;
}

export interface ChannelSeries {
  readonly device_id: string;
  readonly alias: string;
  readonly parent_id: string | null;
  /** Buckets, ascending: bucket i starts at start_ms + i x step_ms (small numbers keep the JSON small). */
  readonly i: number[];
  /** Mean power in each bucket, W (one decimal). */
  readonly w: number[];
}

export interface SeriesResult {
  readonly from_ms: number;
  readonly to_ms: number;
  readonly resolution: SeriesResolution;
  readonly step_ms: number;
  /** Start of bucket 0: from_ms rounded down to a multiple of step_ms. */
  readonly start_ms: number;
  readonly channels: ChannelSeries[];
}

export interface DailyEnergyQuery {
  readonly channels?: readonly string[];
  /** Local days up to and including today. */
  readonly days: number;
  readonly nowMs: number;
  readonly timeZone: string;
  readonly gapLimitMs: number;
}

export interface DayEnergy {
  /** Local date, '2026-11-26'. */
  readonly day: string;
  readonly start_ms: number;
  readonly energy_kwh: number;
  /** The day has ended. */
  readonly complete: boolean;
}

export interface DailyEnergyResult {
  readonly time_zone: string;
  readonly channels: { readonly device_id: string; readonly alias: string; readonly days: DayEnergy[] }[];
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const TIER_MS: Readonly<Record<Exclude<SeriesResolution, 'raw'>, number>> = {
  minute: MINUTE_MS,
  hour: HOUR_MS,
};

/** The source and bucket width for `points` buckets over the range. */
export function seriesPlan(
  fromMs: number,
  toMs: number,
  points: number,
  forced?: SeriesResolution,
): { resolution: SeriesResolution; stepMs: number } {
  const wanted = Math.max(1000, Math.ceil((toMs - fromMs) / points));
  // A tier is used once the wanted bucket is at least half of its own (the bucket then grows to
  // it): far fewer rows read for at most twice as coarse a chart.
  const resolution = forced ?? (wanted < MINUTE_MS / 2 ? 'raw' : wanted < HOUR_MS / 2 ? 'minute' : 'hour');
  const unit = resolution === 'raw' ? 1000 : TIER_MS[resolution];
  return { resolution, stepMs: Math.ceil(wanted / unit) * unit };
}

interface ChannelRow {
  readonly id: number;
  readonly deviceId: string;
  readonly alias: string;
  readonly parentId: string | null;
}

function selectChannels(db: Db, wanted: readonly string[] | undefined): ChannelRow[] {
  const all = db
    .prepare(
      'SELECT id, device_id AS deviceId, alias, parent_id AS parentId FROM channels ORDER BY device_id',
    )
    .all() as ChannelRow[];
  if (wanted === undefined) return all;
  const set = new Set(wanted);
  const selected = all.filter((c) => set.has(c.deviceId));
  if (selected.length !== set.size) {
    throw new StorageError(`unknown channel among ${[...set].join(', ')}`, {
      code: KasaStorageCode.unknownDevice,
      transient: false,
    });
  }
  return selected;
}

/** Mean power per bucket of every selected channel, from one read snapshot. */
export function powerSeries(db: Db, query: SeriesQuery): SeriesResult {
  const { fromMs, toMs } = query;
  const { resolution, stepMs } = seriesPlan(fromMs, toMs, query.points, query.resolution);
  const raw = db.prepare<[number, number, number, number]>(
    `SELECT ts_ms - (ts_ms % ?) AS b, sum(power_mw), count(*) FROM readings
     WHERE channel_id = ? AND ts_ms >= ? AND ts_ms < ? GROUP BY b ORDER BY b`,
  );
  const tier = resolution === 'raw' ? null : (resolution as Tier);
  const table = tier === null ? null : `rollup_${tier}`;
  const stored =
    table === null
      ? null
      : db.prepare<[number, number, number, number]>(
          `SELECT bucket_ms - (bucket_ms % ?) AS b, sum(power_sum_mw), sum(readings) FROM ${table}
           WHERE channel_id = ? AND bucket_ms >= ? AND bucket_ms < ? AND readings > 0 GROUP BY b ORDER BY b`,
        );
  const last =
    table === null
      ? null
      : db.prepare<[number]>(`SELECT max(bucket_ms) FROM ${table} WHERE channel_id = ?`).pluck();
  // Buckets are multiples of the step: the first is the one holding fromMs.
  const startMs = Math.floor(fromMs / stepMs) * stepMs;
  const began = !db.inTransaction;
  if (began) db.exec('BEGIN');
  try {
    const channels = selectChannels(db, query.channels).map((channel): ChannelSeries => {
      const sums = new Map<number, [number, number]>();
      const add = (rows: [number, number, number][]) => {
        for (const [b, sum, n] of rows) {
          const entry = sums.get(b);
          if (entry === undefined) sums.set(b, [sum, n]);
          else {
            entry[0] += sum;
            entry[1] += n;
          }
        }
      };
      // Raw readings from where the stored (closed) rollup buckets end.
      let rawFrom = fromMs;
      if (stored !== null && last !== null && tier !== null) {
        add(stored.raw().all(stepMs, channel.id, startMs, toMs) as [number, number, number][]);
        const lastStored = last.get(channel.id) as number | null;
        if (lastStored !== null) rawFrom = Math.max(fromMs, lastStored + TIER_MS[tier as 'minute' | 'hour']);
      }
      if (rawFrom < toMs) {
        add(raw.raw().all(stepMs, channel.id, rawFrom, toMs) as [number, number, number][]);
      }
      const i: number[] = [];
      const w: number[] = [];
      for (const [b, [sum, n]] of [...sums].sort((x, y) => x[0] - y[0])) {
        if (n === 0) continue;
        i.push((b - startMs) / stepMs);
        w.push(Math.round(sum / n / 100) / 10);
      }
      return { device_id: channel.deviceId, alias: channel.alias, parent_id: channel.parentId, i, w };
    });
    return { from_ms: fromMs, to_ms: toMs, resolution, step_ms: stepMs, start_ms: startMs, channels };
  } finally {
    if (began) db.exec('COMMIT');
  }
}

/**
 * Energy per local day for the last `days` days (today so far included), from the rollups and the
 * raw tail, exactly as `kasa-monitor energy --period day` counts it.
 */
export function dailyEnergy(path: string, busyTimeoutMs: number, query: DailyEnergyQuery): DailyEnergyResult {
  const reader = openRollupReader(path, {
    timeZone: query.timeZone,
    gapLimitMs: query.gapLimitMs,
    busyTimeoutMs,
  });
  try {
    const calendar = new PeriodCalendar('day', reader.dayZone);
    const toMs = calendar.end(calendar.start(query.nowMs));
    let fromMs = calendar.start(query.nowMs);
    for (let i = 1; i < query.days; i++) fromMs = calendar.start(fromMs - 1);
    // Hour buckets fit local days in whole-hour zones; elsewhere minute buckets do.
    let tier: Tier = 'hour';
    for (let s = fromMs; s < toMs; s = calendar.end(s)) if (s % HOUR_MS !== 0) tier = 'minute';
    let channels = reader.channels();
    if (query.channels !== undefined) {
      const set = new Set(query.channels);
      channels = channels.filter((c) => set.has(c.deviceId));
    }
    return {
      time_zone: reader.dayZone,
      channels: channels.map((channel) => {
        const { buckets, gaps } = reader.series(channel, tier, fromMs, toMs);
        const days = summarisePeriods(buckets, gaps, calendar, fromMs, toMs).map((p) => ({
          day: p.label,
          start_ms: p.startMs,
          energy_kwh: Math.round(p.energyWh) / 1000,
          complete: p.endMs <= query.nowMs,
        }));
        return { device_id: channel.deviceId, alias: channel.alias, days };
      }),
    };
  } finally {
    reader.close();
  }
}
