/**
 * The tariff as rules (periods of rates, dynamic prices) and the price schedule they give: the
 * instants at which the price per kWh can change in a range, in a time zone. Pure, no I/O.
 *
 * Rate times are local wall-clock times. The price at an instant depends only on its local date,
 * weekday and time of day (and on a dynamic price row covering it), so it is constant between the
 * instants where the local clock reads a band edge or midnight. Those instants are found per local
 * day with the zone's offsets of that day: a wall time that does not exist (spring forward) starts
 * at the change itself, one that occurs twice (fall back) gives two candidate instants, and the
 * price of each segment is evaluated at its start. So a 23- or 25-hour day is priced hour by hour.
 */
import type { DynamicPrice } from './prices.js';
import { zoneCalendar } from './zone.js';

export const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type DayName = (typeof DAY_NAMES)[number];

/** Minutes after local midnight of 'HH:MM' (00:00 to 24:00), or null. */
export function parseClock(text: string): number | null {
  const match = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!match) return null;
  const h = Number(match[1]);
  const m = Number(match[2]);
  if (m > 59 || h > 24 || (h === 24 && m !== 0)) return null;
  return h * 60 + m;
}

/** What the configuration gives (config.tariff), in the shape the engine reads. */
export interface TariffConfig {
  readonly currency: string | null;
  readonly periods: readonly {
    readonly from: string;
    readonly standing_charge: number | null;
    readonly rates: readonly {
      readonly days: readonly DayName[] | null;
      readonly from: string | null;
      readonly to: string | null;
      readonly price: number;
    }[];
  }[];
}

interface Rate {
  /** Weekdays (0 = Monday) the band starts on; null: every day. */
  readonly days: ReadonlySet<number> | null;
  /** Minutes after midnight; both null: all day. */
  readonly fromMin: number | null;
  readonly toMin: number | null;
  readonly price: number;
}

interface Period {
  /** 'YYYY-MM-DD', compared as text with a local date. */
  readonly from: string;
  readonly standingCharge: number | null;
  readonly rates: readonly Rate[];
}

/** A stretch of time with one price per kWh (null: unpriced). */
export interface PriceSegment {
  readonly startMs: number;
  readonly endMs: number;
  readonly price: number | null;
}

function ymd(y: number, m: number, d: number): string {
  return `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** The rules of one tariff in one zone. */
export class TariffRules {
  readonly currency: string | null;
  readonly zone: string;
  readonly #periods: readonly Period[];
  readonly #prices: readonly DynamicPrice[];
  readonly #edges: readonly number[];
  readonly #calendar;

  constructor(config: TariffConfig, zone: string, prices: readonly DynamicPrice[] = []) {
    this.currency = config.currency;
    this.zone = zone;
    this.#calendar = zoneCalendar(zone);
    this.#prices = prices;
    this.#periods = config.periods.map((p) => ({
      from: p.from,
      standingCharge: p.standing_charge,
      rates: p.rates.map((r) => ({
        days: r.days === null ? null : new Set(r.days.map((d) => DAY_NAMES.indexOf(d))),
        fromMin: r.from === null ? null : parseClock(r.from),
        toMin: r.to === null ? null : parseClock(r.to),
        price: r.price,
      })),
    }));
    const edges = new Set<number>([0]);
    for (const p of this.#periods) {
      for (const r of p.rates) {
        if (r.fromMin !== null) edges.add(r.fromMin % 1440);
        if (r.toMin !== null) edges.add(r.toMin % 1440);
      }
    }
    this.#edges = [...edges].sort((a, b) => a - b);
  }

  /** True when nothing can price anything (no periods and no prices). */
  get empty(): boolean {
    return this.#periods.length === 0 && this.#prices.length === 0;
  }

  #periodOn(date: string): Period | null {
    let found: Period | null = null;
    for (const p of this.#periods) {
      if (p.from <= date) found = p;
      else break;
    }
    return found;
  }

  /** The standing charge of the local day starting at `dayStartMs` (null: none configured that day). */
  standingCharge(dayStartMs: number): number | null {
    return this.#periodOn(this.#calendar.formatDay(dayStartMs))?.standingCharge ?? null;
  }

  /** A tariff period covers the local day starting at `dayStartMs`. */
  hasPeriodOn(dayStartMs: number): boolean {
    return this.#periodOn(this.#calendar.formatDay(dayStartMs)) !== null;
  }

  /** Price per kWh at an instant by the periods' rates (dynamic prices aside). */
  ratePriceAt(ms: number): number | null {
    const p = this.#calendar.parts(ms);
    const period = this.#periodOn(ymd(p.year, p.month, p.day));
    if (period === null) return null;
    const minute = p.hour * 60 + p.minute;
    const weekday = (new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay() + 6) % 7;
    const yesterday = (weekday + 6) % 7;
    for (const rate of period.rates) {
      const on = (day: number) => rate.days === null || rate.days.has(day);
      if (rate.fromMin === null || rate.toMin === null) {
        if (on(weekday)) return rate.price;
        continue;
      }
      const from = rate.fromMin;
      const to = rate.toMin === 1440 ? 1440 : rate.toMin;
      if (from < to) {
        if (minute >= from && minute < to && on(weekday)) return rate.price;
      } else if ((minute >= from && on(weekday)) || (minute < to && on(yesterday))) {
        // A band past midnight belongs to the day it starts on.
        return rate.price;
      }
    }
    return null;
  }

  #dynamicIndex(ms: number): number {
    // First row whose end is after ms.
    let lo = 0;
    let hi = this.#prices.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#prices[mid] as DynamicPrice).endMs <= ms) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Instants in (fromMs, toMs) where the rates' price may change: band edges and midnights, local. */
  #rateChanges(fromMs: number, toMs: number): number[] {
    const out: number[] = [];
    const cal = this.#calendar;
    for (let day = cal.dayStart(fromMs); day < toMs; day = cal.nextDayStart(day)) {
      const next = cal.nextDayStart(day);
      const p = cal.parts(day);
      const naiveMidnight = Date.UTC(p.year, p.month - 1, p.day);
      const offsets = new Set([cal.offsetMs(day), cal.offsetMs(next - 1)]);
      const candidates = new Set<number>([day]);
      if (offsets.size > 1) {
        // The offset changes today: the change itself is an edge (the clock jumps over part of the day).
        let lo = day;
        let hi = next - 1;
        const first = cal.offsetMs(day);
        while (hi - lo > 1000) {
          const mid = Math.floor((lo + hi) / 2);
          if (cal.offsetMs(mid) === first) lo = mid;
          else hi = mid;
        }
        candidates.add(Math.floor(hi / 1000) * 1000);
      }
      for (const minute of this.#edges) {
        const naive = naiveMidnight + minute * 60_000;
        for (const offset of offsets) {
          const t = naive - offset;
          // Keep it only if the local clock really reads that time then (not in a skipped hour).
          if (t >= day && t < next && cal.offsetMs(t) === offset) candidates.add(t);
        }
      }
      for (const t of candidates) if (t > fromMs && t < toMs) out.push(t);
    }
    return out.sort((a, b) => a - b);
  }

  /** Consecutive segments covering [fromMs, toMs), each with one price (dynamic rows override rates). */
  schedule(fromMs: number, toMs: number): PriceSegment[] {
    if (toMs <= fromMs) return [];
    const cuts = new Set<number>(this.#rateChanges(fromMs, toMs));
    for (let i = this.#dynamicIndex(fromMs); i < this.#prices.length; i++) {
      const row = this.#prices[i] as DynamicPrice;
      if (row.startMs >= toMs) break;
      if (row.startMs > fromMs) cuts.add(row.startMs);
      if (row.endMs < toMs) cuts.add(row.endMs);
    }
    const points = [fromMs, ...[...cuts].sort((a, b) => a - b), toMs];
    const out: PriceSegment[] = [];
    let dyn = this.#dynamicIndex(fromMs);
    for (let i = 0; i + 1 < points.length; i++) {
      const start = points[i] as number;
      const end = points[i + 1] as number;
      if (end <= start) continue;
      while (dyn < this.#prices.length && (this.#prices[dyn] as DynamicPrice).endMs <= start) dyn++;
      const row = this.#prices[dyn];
      const price = row !== undefined && row.startMs <= start ? row.price : this.ratePriceAt(start);
      const last = out.at(-1);
      if (last !== undefined && last.price === price) out[out.length - 1] = { ...last, endMs: end };
      else out.push({ startMs: start, endMs: end, price });
    }
    return out;
  }
}
