/**
 * Energy reports as JSON and plain decimals: `kasa-monitor energy --format json|csv` and
 * GET /api/energy share these, so both say the same thing in the same words.
 */
import { periodCost, periodSource } from '../energy/index.js';
import type { EnergyReport, EnergyReportRow } from '../storage/sqlite/index.js';

const HOUR_MS = 3_600_000;

/** kWh with three decimals, from Wh (rounded to whole Wh first, as the counters count). */
export function kwh(wh: number): string {
  return (Math.round(wh) / 1000).toFixed(3);
}

/**
 * Money as a plain decimal: at least two decimals, up to four when they carry something (a kWh of a
 * few minutes costs fractions of a cent). No symbol: the currency is its own column.
 */
export function money(amount: number): string {
  const text = amount.toFixed(4).replace(/(\.\d\d\d*?)0+$/, '$1');
  return text === '-0.00' ? '0.00' : text;
}

export interface EnergyTotals {
  readonly energyWh: number;
  /** Energy cost of all rows; null when any is unpriced. */
  readonly cost: number | null;
  readonly standingCharge: number | null;
  /** cost + standing charge; null when either is unknown. */
  readonly total: number | null;
}

export function energyTotals(report: EnergyReport): EnergyTotals {
  let energyWh = 0;
  let cost: number | null = 0;
  for (const row of report.rows) {
    energyWh += row.cost.energyWh;
    const c = periodCost(row.cost);
    cost = cost === null || c === null ? null : cost + c;
  }
  if (report.currency === null) cost = null;
  const standingCharge = report.standingCharge;
  const total = cost === null || standingCharge === null ? null : cost + standingCharge;
  return { energyWh, cost, standingCharge, total };
}

/** One period of one channel as JSON (also the rows of GET /api/energy). */
export function energyJsonRow(row: EnergyReportRow, currency: string | null): Record<string, unknown> {
  const { channel, period, current, cost } = row;
  const priced = periodCost(cost);
  return {
    period: period.label,
    device_id: channel.deviceId,
    alias: channel.alias,
    energy_kwh: Number(kwh(cost.energyWh)),
    cost: priced === null || currency === null ? null : Number(money(priced)),
    currency,
    source: periodSource(cost),
    measured_kwh: Number(kwh(cost.bySource.measured)),
    estimated_kwh: Number(kwh(cost.bySource.estimated)),
    device_kwh: Number(kwh(cost.bySource.device)),
    unpriced_kwh: Number(kwh(cost.unpricedWh)),
    covered_hours: Number((period.coveredMs / HOUR_MS).toFixed(3)),
    period_hours: (period.endMs - period.startMs) / HOUR_MS,
    readings: period.readings,
    counter_restarts: period.resets,
    complete: !current,
    gaps: period.gaps.map((g) => ({
      from: new Date(g.fromMs).toISOString(),
      to: new Date(g.toMs).toISOString(),
      counter_kwh: Number(kwh(g.energyWh)),
      counter_restarted: g.reset,
      // Spread evenly over the gap: the part inside this period counts here, as estimated.
      counted: true,
    })),
  };
}

/** Totals of a report as JSON: energy, cost, and the standing charge separately. */
export function energyJsonTotals(report: EnergyReport): Record<string, unknown> {
  const totals = energyTotals(report);
  const round = (n: number | null) => (n === null ? null : Number(money(n)));
  return {
    energy_kwh: Number(kwh(totals.energyWh)),
    cost: round(totals.cost),
    standing_charge: round(totals.standingCharge),
    total: round(totals.total),
    currency: report.currency,
  };
}
