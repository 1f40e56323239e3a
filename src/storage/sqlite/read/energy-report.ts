/**
 * Energy and cost per channel and period, from the rollups: what `kasa-monitor energy` prints and
 * GET /api/energy returns. Synchronous (better-sqlite3): the CLI runs it in its own process, the
 * daemon in a reader worker.
 *
 * Cost is computed from the rollups at report time, not stored with them: reports follow the
 * configured tariff also for past data (a corrected tariff reprices history without rewriting
 * anything). Hour buckets price exactly wherever the price is constant for the whole hour (whole-hour
 * bands in whole-hour-offset zones, hourly dynamic prices): a year is 8,760 rows per channel. Hours
 * with a change inside (a 07:30 edge) are priced from their minute buckets, as long as retention has
 * kept them. Within a bucket the accumulator has already split every reading interval by time, so
 * pricing buckets is pricing the intervals.
 */
import { readFileSync } from 'node:fs';
import {
  type Bucket,
  CostLedger,
  type DynamicPrice,
  type EnergyFlow,
  type GapRecord,
  PeriodCalendar,
  type PeriodCost,
  type PeriodEnergy,
  type PeriodKind,
  type PriceSegment,
  parsePricesCsv,
  standingCharges,
  summarisePeriods,
  type TariffConfig,
  TariffRules,
} from '../../../energy/index.js';
import type { EnergyFill } from '../maintenance/fills.js';
import { openReadingsReader } from './reader.js';
import { openRollupReader, type RollupChannel, type RollupReader } from './rollup-reader.js';

const HOUR_MS = 3_600_000;

/** The tariff as configured (config.tariff). */
export interface TariffSettings extends TariffConfig {
  readonly prices_file: string | null;
}

export interface EnergyReportSettings {
  readonly timeZone: string;
  readonly gapLimitMs: number;
  readonly tariff: TariffSettings;
  readonly busyTimeoutMs?: number;
}

export interface EnergyReportQuery {
  readonly kind: PeriodKind;
  /** Start of the range (the period containing it); default: the first data. */
  readonly fromMs?: number;
  /** End of the range, exclusive (whole periods up to it); default: now. */
  readonly toMs?: number;
  readonly device?: string;
  readonly nowMs: number;
}

export interface EnergyReportRow {
  readonly channel: RollupChannel;
  /** Coverage, readings, counter restarts and gaps of the period. */
  readonly period: PeriodEnergy;
  /** Energy (by source) and cost of the period. */
  readonly cost: PeriodCost;
  /** The period has not ended yet. */
  readonly current: boolean;
}

export interface EnergyReport {
  readonly rows: EnergyReportRow[];
  /** The whole periods covered (UTC ms); equal when there is no data. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly currency: string | null;
  /** Standing charges of the local days of the range up to now; null when unknown (no tariff that day). */
  readonly standingCharge: number | null;
}

/** The prices file's rows (validated when the configuration was loaded; read again here). */
export function readPrices(path: string | null): DynamicPrice[] {
  if (path === null) return [];
  const parsed = parsePricesCsv(readFileSync(path, 'utf8'));
  if (!parsed.ok) throw new Error(`tariff.prices_file ${path}: ${parsed.problems.join('; ')}`);
  return [...parsed.rows];
}

/** The tariff's rules in `zone`, or null when nothing is configured. */
export function tariffRules(tariff: TariffSettings, zone: string): TariffRules | null {
  const rules = new TariffRules(tariff, zone, readPrices(tariff.prices_file));
  return rules.empty ? null : rules;
}

/**
 * Hours (UTC starts) inside which something changes that an hour bucket cannot split: a price
 * change or a period boundary off the whole hour (a 07:30 band edge, a zone such as Asia/Kolkata).
 */
function splitHours(
  schedule: readonly PriceSegment[],
  calendar: PeriodCalendar,
  fromMs: number,
  toMs: number,
): Set<number> {
  const out = new Set<number>();
  const cut = (ms: number) => {
    if (ms % HOUR_MS !== 0) out.add(Math.floor(ms / HOUR_MS) * HOUR_MS);
  };
  for (let s = fromMs; s < toMs; s = calendar.end(s)) cut(s);
  cut(toMs);
  for (const segment of schedule) cut(segment.startMs);
  return out;
}

function bucketFlow(b: Bucket): EnergyFlow {
  return { fromMs: b.startMs, toMs: b.endMs, energyWh: b.energyWh, source: 'measured' };
}

/**
 * The flows of a channel's gaps: each gap's counter energy spread evenly over it (estimated),
 * except inside a period the plug's own statistics filled: there the fill is spread over the gap
 * time of that period instead (device).
 */
function gapFlows(gaps: readonly GapRecord[], fills: readonly EnergyFill[]): EnergyFlow[] {
  const out: EnergyFlow[] = [];
  const windows = [...fills].sort((a, b) => a.startMs - b.startMs);
  for (const g of gaps) {
    // A counter that did not move says nothing was used: no estimated energy, no rows of zeros.
    if (g.energyWh <= 0) continue;
    const duration = g.toMs - g.fromMs;
    let t = g.fromMs;
    // The parts of the gap outside every filled window keep their share of the counter's energy.
    for (const w of windows) {
      if (w.endMs <= t || w.startMs >= g.toMs) continue;
      if (w.startMs > t) out.push(share(g, t, w.startMs, duration));
      t = Math.max(t, Math.min(w.endMs, g.toMs));
    }
    if (t < g.toMs) out.push(share(g, t, g.toMs, duration));
  }
  for (const w of windows) {
    const parts = gaps
      .map((g) => [Math.max(g.fromMs, w.startMs), Math.min(g.toMs, w.endMs)] as const)
      .filter(([a, b]) => b > a);
    const total = parts.reduce((sum, [a, b]) => sum + (b - a), 0);
    if (total === 0) {
      out.push({ fromMs: w.startMs, toMs: w.endMs, energyWh: w.energyWh, source: 'device' });
      continue;
    }
    for (const [a, b] of parts) {
      out.push({ fromMs: a, toMs: b, energyWh: (w.energyWh * (b - a)) / total, source: 'device' });
    }
  }
  return out;
}

function share(g: GapRecord, from: number, to: number, duration: number): EnergyFlow {
  return { fromMs: from, toMs: to, energyWh: (g.energyWh * (to - from)) / duration, source: 'estimated' };
}

/**
 * A channel's buckets for pricing: hour buckets, and in the hours that `split` names their minute
 * buckets instead (where minute rollups still exist; retention may have deleted old ones, and then
 * the hour's energy is split in proportion to time). A year is then about 9,000 hour rows plus 60
 * minute rows per split hour, instead of half a million minute rows.
 */
function bucketsOf(
  reader: RollupReader,
  channel: RollupChannel,
  split: ReadonlySet<number>,
  fromMs: number,
  toMs: number,
): { buckets: Bucket[]; gaps: GapRecord[] } {
  const coarse = reader.series(channel, 'hour', fromMs, toMs);
  if (split.size === 0) return coarse;
  const tail = reader.tail(channel, 'minute', fromMs, toMs);
  const buckets: Bucket[] = [];
  for (const hour of coarse.buckets) {
    if (!split.has(hour.startMs)) {
      buckets.push(hour);
      continue;
    }
    const end = hour.startMs + HOUR_MS;
    const minutes =
      hour.startMs >= tail.floorMs
        ? tail.buckets.filter((b) => b.startMs >= hour.startMs && b.startMs < end)
        : [
            ...reader.storedRows(channel, 'minute', hour.startMs, Math.min(end, tail.floorMs)),
            ...tail.buckets.filter((b) => b.startMs >= hour.startMs && b.startMs < end),
          ].filter((b) => b.startMs >= hour.startMs);
    if (minutes.length === 0) buckets.push(hour);
    else buckets.push(...minutes);
  }
  return { buckets, gaps: coarse.gaps };
}

/** Energy and cost per channel and period of the query. */
export function energyReport(
  path: string,
  query: EnergyReportQuery,
  settings: EnergyReportSettings,
): EnergyReport {
  const zone = settings.timeZone;
  const rules = tariffRules(settings.tariff, zone);
  const currency = settings.tariff.currency;
  const reader = openRollupReader(path, {
    timeZone: zone,
    gapLimitMs: settings.gapLimitMs,
    ...(settings.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: settings.busyTimeoutMs }),
  });
  const rows: EnergyReportRow[] = [];
  const calendar = new PeriodCalendar(query.kind, zone);
  let fromMs = 0;
  let toMs = 0;
  try {
    let channels = reader.channels();
    if (query.device !== undefined) {
      const names = openReadingsReader(path);
      try {
        const wanted = new Set(names.resolveDevice(query.device));
        channels = channels.filter((c) => wanted.has(c.deviceId));
      } finally {
        names.close();
      }
    }
    const range = reader.dataRange();
    if (range !== null && channels.length > 0) {
      fromMs = calendar.start(query.fromMs ?? range.firstMs);
      const lastMs = (query.toMs ?? query.nowMs + 1) - 1;
      toMs = Math.max(fromMs, calendar.end(calendar.start(lastMs)));
      if (toMs > fromMs) {
        const schedule = rules === null ? [] : rules.schedule(fromMs, toMs);
        const split = splitHours(schedule, calendar, fromMs, toMs);
        for (const channel of channels) {
          const { buckets, gaps } = bucketsOf(reader, channel, split, fromMs, toMs);
          const ledger = new CostLedger(rules, calendar, fromMs, toMs, schedule);
          for (const b of buckets) ledger.add(bucketFlow(b));
          // Day fills apply to every report; month fills (a plug in another zone) only to months.
          const fills = reader
            .fills(channel, fromMs, toMs)
            .filter((f) => f.kind === 'day' || query.kind === 'month');
          for (const flow of gapFlows(gaps, fills)) ledger.add(flow);
          const costs = new Map(ledger.periods().map((p) => [p.startMs, p]));
          for (const period of summarisePeriods(buckets, gaps, calendar, fromMs, toMs)) {
            const cost = costs.get(period.startMs);
            if (cost === undefined) continue;
            costs.delete(period.startMs);
            period.energyWh = cost.energyWh;
            rows.push({ channel, period, cost, current: period.endMs > query.nowMs });
          }
          // A period reached only by a gap's spread energy.
          for (const cost of costs.values()) {
            const period: PeriodEnergy = {
              label: cost.label,
              startMs: cost.startMs,
              endMs: cost.endMs,
              energyWh: cost.energyWh,
              coveredMs: 0,
              readings: 0,
              resets: 0,
              gaps: gaps
                .filter((g) => g.fromMs < cost.endMs && g.toMs > cost.startMs)
                .map((g) => ({ ...g, attributed: false })),
            };
            rows.push({ channel, period, cost, current: period.endMs > query.nowMs });
          }
        }
      }
    }
  } finally {
    reader.close();
  }
  rows.sort(
    (a, b) => a.period.startMs - b.period.startMs || (a.channel.deviceId < b.channel.deviceId ? -1 : 1),
  );
  // Days that have begun: today's charge is due, tomorrow's is not yet.
  const chargedTo = Math.min(toMs, query.nowMs + 1);
  return {
    rows,
    fromMs,
    toMs,
    currency,
    standingCharge: toMs > fromMs ? standingCharges(rules, fromMs, chargedTo) : null,
  };
}
