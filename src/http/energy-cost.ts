/**
 * What each channel's energy has cost since its data begins, for the `kasa_energy_cost_total`
 * counter and the MQTT states' `cost`. Computed from stored data (through the reader pool, off the
 * event loop), so the counter does not start again at zero when the daemon restarts. Closed months
 * are computed once per tariff and month and kept, as are this month's closed days (once per day);
 * only today is recomputed, at most every `refreshMs`: a refresh prices at most a day of hour
 * buckets per channel, not a month's (which at 1,000 channels would be seconds of CPU every 30 s).
 * Priced energy adds up over periods, so the sum is the same as one report over the whole range.
 * A changed tariff reprices history, so the counter can then go down (Prometheus sees a reset).
 * Only priced energy counts: time without a price adds nothing (and is never counted as free
 * in reports).
 */

import { zoneCalendar } from '../energy/index.js';
import type { EnergyReport, EnergyReportQuery, EnergyReportSettings } from '../storage/sqlite/index.js';

export interface ChannelCost {
  readonly deviceId: string;
  readonly alias: string;
  readonly currency: string;
  readonly cost: number;
}

export interface EnergyCostOptions {
  readonly report: (query: EnergyReportQuery, settings: EnergyReportSettings) => Promise<EnergyReport>;
  readonly settings: () => EnergyReportSettings;
  readonly now?: () => number;
  /** How long a computed current month is reused (scrapes come every 15-60 s). */
  readonly refreshMs?: number;
}

interface Sums {
  readonly byChannel: Map<string, { alias: string; cost: number }>;
}

function sumsOf(report: EnergyReport): Sums {
  const byChannel = new Map<string, { alias: string; cost: number }>();
  for (const row of report.rows) {
    const entry = byChannel.get(row.channel.deviceId) ?? { alias: row.channel.alias, cost: 0 };
    entry.cost += row.cost.pricedCost;
    byChannel.set(row.channel.deviceId, entry);
  }
  return { byChannel };
}

export class EnergyCostTotals {
  readonly #options: EnergyCostOptions;
  #closed: { readonly key: string; readonly sums: Sums } | null = null;
  #closedDays: { readonly key: string; readonly sums: Sums } | null = null;
  #current: { readonly key: string; readonly atMs: number; readonly sums: Sums } | null = null;
  #inFlight: Promise<ChannelCost[]> | null = null;

  constructor(options: EnergyCostOptions) {
    this.#options = options;
  }

  /** Cost per channel so far; empty without a tariff. Concurrent calls share one computation. */
  totals(): Promise<ChannelCost[]> {
    this.#inFlight ??= this.#compute().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #compute(): Promise<ChannelCost[]> {
    const settings = this.#options.settings();
    const currency = settings.tariff.currency;
    if (currency === null) return [];
    const nowMs = (this.#options.now ?? Date.now)();
    const calendar = zoneCalendar(settings.timeZone);
    const monthStart = calendar.monthStart(nowMs);
    const dayStart = calendar.dayStart(nowMs);
    const tariffKey = JSON.stringify([settings.timeZone, settings.gapLimitMs, settings.tariff]);
    const closedKey = `${tariffKey}@${monthStart}`;
    if (this.#closed?.key !== closedKey) {
      const report = await this.#options.report({ kind: 'month', toMs: monthStart, nowMs }, settings);
      this.#closed = { key: closedKey, sums: sumsOf(report) };
    }
    const daysKey = `${tariffKey}@${dayStart}`;
    if (this.#closedDays?.key !== daysKey) {
      const sums =
        dayStart > monthStart
          ? sumsOf(
              await this.#options.report(
                { kind: 'day', fromMs: monthStart, toMs: dayStart, nowMs },
                settings,
              ),
            )
          : { byChannel: new Map() };
      this.#closedDays = { key: daysKey, sums };
    }
    const current = this.#current;
    if (
      current === null ||
      current.key !== daysKey ||
      nowMs - current.atMs >= (this.#options.refreshMs ?? 30_000)
    ) {
      const report = await this.#options.report(
        { kind: 'day', fromMs: dayStart, toMs: calendar.nextDayStart(dayStart), nowMs },
        settings,
      );
      this.#current = { key: daysKey, atMs: nowMs, sums: sumsOf(report) };
    }
    const out = new Map<string, ChannelCost>();
    for (const sums of [this.#closed.sums, this.#closedDays.sums, (this.#current as { sums: Sums }).sums]) {
      for (const [deviceId, { alias, cost }] of sums.byChannel) {
        const before = out.get(deviceId)?.cost ?? 0;
        out.set(deviceId, { deviceId, alias, currency, cost: before + cost });
      }
    }
    return [...out.values()];
  }
}
