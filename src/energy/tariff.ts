/**
 * The tariff engine: prices energy by the time it was used. Energy arrives as flows (an amount used
 * evenly over [fromMs, toMs): the interval between two readings, a rollup bucket, a gap, a fill from
 * a plug's own statistics); each flow is split across price changes (band edges, price rows, period
 * dates) and reporting periods (local days or months) in proportion to time. Time without a price
 * is unpriced, never free: a period with any unpriced time has no cost. Pure, no I/O.
 */
import { type CounterReading, counterInterval } from './counter.js';
import type { PeriodCalendar } from './periods.js';
import type { PriceSegment, TariffRules } from './tariff-rules.js';
import { zoneCalendar } from './zone.js';

/** Where a figure comes from: the readings, the plug's own day/month statistics, or a gap's counter. */
export type EnergySource = 'measured' | 'device' | 'estimated';

/** Energy used evenly over [fromMs, toMs). */
export interface EnergyFlow {
  readonly fromMs: number;
  readonly toMs: number;
  readonly energyWh: number;
  readonly source: EnergySource;
}

export interface PeriodCost {
  readonly label: string;
  readonly startMs: number;
  readonly endMs: number;
  energyWh: number;
  readonly bySource: Record<EnergySource, number>;
  /** Some flow of this source reached the period (a device fill of 0 Wh still says "device"). */
  readonly seen: Record<EnergySource, boolean>;
  /** Money for the priced energy, in the tariff's currency. */
  pricedCost: number;
  /** Time of flows that fell on unpriced time, ms (energy there has no price). */
  unpricedMs: number;
  unpricedWh: number;
}

/** The period's cost, or null when part of it is unpriced (or there is no tariff). */
export function periodCost(period: PeriodCost): number | null {
  return period.unpricedMs > 0 ? null : period.pricedCost;
}

/** measured, unless some of it is estimated (a gap's counter) or from the plug's statistics. */
export function periodSource(period: PeriodCost): EnergySource {
  if (period.bySource.estimated > 0) return 'estimated';
  if (period.seen.device) return 'device';
  return 'measured';
}

interface Piece extends PriceSegment {
  readonly period: number;
}

/**
 * Sums flows into periods of [fromMs, toMs) with their cost. Build one per report (channel): the
 * price schedule of the range is computed once and flows are placed by binary search.
 */
export class CostLedger {
  readonly #calendar: PeriodCalendar;
  readonly #fromMs: number;
  readonly #toMs: number;
  readonly #pieces: readonly Piece[];
  readonly #periods: (PeriodCost | null)[];
  readonly #starts: readonly number[];

  /** `schedule`: rules.schedule(fromMs, toMs) when the caller already has it (one per report, not per channel). */
  constructor(
    rules: TariffRules | null,
    calendar: PeriodCalendar,
    fromMs: number,
    toMs: number,
    schedule?: readonly PriceSegment[],
  ) {
    this.#calendar = calendar;
    this.#fromMs = fromMs;
    this.#toMs = toMs;
    this.#starts = calendar.starts(fromMs, toMs);
    this.#periods = this.#starts.map(() => null);
    this.#pieces = piecesOf(
      rules === null
        ? [{ startMs: fromMs, endMs: toMs, price: null }]
        : (schedule ?? rules.schedule(fromMs, toMs)),
      this.#starts,
    );
  }

  /** Adds a flow; the part outside the ledger's range is left out (in proportion to time). */
  add(flow: EnergyFlow): void {
    const duration = flow.toMs - flow.fromMs;
    if (duration <= 0) {
      // An instant (no time to spread over): all of it at that instant.
      if (flow.fromMs < this.#fromMs || flow.fromMs >= this.#toMs) return;
      const piece = this.#pieces[this.#pieceAt(flow.fromMs)];
      if (piece !== undefined) this.#add(piece, flow, 0, 1);
      return;
    }
    const from = Math.max(flow.fromMs, this.#fromMs);
    const to = Math.min(flow.toMs, this.#toMs);
    if (to <= from) return;
    for (let i = this.#pieceAt(from); i < this.#pieces.length; i++) {
      const piece = this.#pieces[i] as Piece;
      if (piece.startMs >= to) break;
      const a = Math.max(from, piece.startMs);
      const b = Math.min(to, piece.endMs);
      if (b > a) this.#add(piece, flow, b - a, (b - a) / duration);
    }
  }

  #add(piece: Piece, flow: EnergyFlow, ms: number, share: number): void {
    const energy = flow.energyWh * share;
    const period = this.#period(piece.period);
    period.energyWh += energy;
    period.bySource[flow.source] += energy;
    period.seen[flow.source] = true;
    if (piece.price === null) {
      period.unpricedMs += Math.max(ms, 1);
      period.unpricedWh += energy;
    } else {
      period.pricedCost += (energy / 1000) * piece.price;
    }
  }

  #period(index: number): PeriodCost {
    let period = this.#periods[index];
    if (period === null || period === undefined) {
      const start = this.#starts[index] as number;
      period = {
        label: this.#calendar.label(start),
        startMs: start,
        endMs: this.#calendar.end(start),
        energyWh: 0,
        bySource: { measured: 0, device: 0, estimated: 0 },
        seen: { measured: false, device: false, estimated: false },
        pricedCost: 0,
        unpricedMs: 0,
        unpricedWh: 0,
      };
      this.#periods[index] = period;
    }
    return period;
  }

  /** Index of the piece containing `ms` (the last one starting at or before it). */
  #pieceAt(ms: number): number {
    let lo = 0;
    let hi = this.#pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#pieces[mid] as Piece).startMs <= ms) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Periods that received any flow, oldest first. */
  periods(): PeriodCost[] {
    return this.#periods.filter((p): p is PeriodCost => p !== null);
  }
}

/** Cuts price segments at period starts and tags each piece with its period's index. */
function piecesOf(segments: readonly PriceSegment[], starts: readonly number[]): Piece[] {
  const out: Piece[] = [];
  let p = 0;
  for (const segment of segments) {
    let t = segment.startMs;
    while (t < segment.endMs) {
      while (p + 1 < starts.length && (starts[p + 1] as number) <= t) p++;
      const next = p + 1 < starts.length ? (starts[p + 1] as number) : Number.POSITIVE_INFINITY;
      const end = Math.min(segment.endMs, next);
      out.push({ startMs: t, endMs: end, price: segment.price, period: p });
      t = end;
    }
  }
  return out;
}

/**
 * The flows one channel's readings give (oldest first, reset-aware as the counter module says):
 * an interval within the gap limit is measured; a gap's counter increase is spread over the gap and
 * marked estimated.
 */
export function flowsFromReadings(readings: readonly CounterReading[], gapLimitMs: number): EnergyFlow[] {
  const out: EnergyFlow[] = [];
  for (let i = 1; i < readings.length; i++) {
    const interval = counterInterval(
      readings[i - 1] as CounterReading,
      readings[i] as CounterReading,
      gapLimitMs,
    );
    out.push({
      fromMs: interval.fromMs,
      toMs: interval.toMs,
      energyWh: interval.energyWh,
      source: interval.gap ? 'estimated' : 'measured',
    });
  }
  return out;
}

/**
 * Standing charges of the local days that start in [fromMs, toMs): their sum, or null when some
 * day has no tariff period (the charge of that day is unknown, not zero).
 */
export function standingCharges(rules: TariffRules | null, fromMs: number, toMs: number): number | null {
  if (rules === null) return null;
  const calendar = zoneCalendar(rules.zone);
  let sum = 0;
  let any = false;
  for (let day = calendar.dayStart(fromMs); day < toMs; day = calendar.nextDayStart(day)) {
    if (day < fromMs) continue;
    const charge = rules.standingCharge(day);
    if (charge === null) {
      if (rules.hasPeriodOn(day)) continue;
      return null;
    }
    sum += charge;
    any = true;
  }
  return any ? sum : 0;
}
