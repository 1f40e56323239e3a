/**
 * A plug's own energy statistics, for filling gaps (backfill): per local day of a month and per
 * month of a year, and the plug's clock (its days are its own local days). One small interface per
 * transport; this is the legacy one (`emeter.get_daystat` / `get_monthstat`, per outlet with the
 * child context; old firmware answers kWh floats in `energy`, newer Wh in `energy_wh`). Smart
 * (KLAP/AES) plugs have theirs beside their transport: src/smart/energy-stats.ts.
 *
 * Everything a device sends is untrusted: values that are not finite, negative, or more than a plug
 * can meter in the period are dropped, not stored.
 */
import type { KasaConnection, RequestOptions } from './kasa.js';

export interface EnergyStatsSource {
  /** The plug's local clock minus UTC, ms, rounded to 15 minutes. */
  clockOffsetMs(): Promise<number>;
  /** Energy per local day (1-31) of `year`/`month`, Wh; days the plug does not list are absent. */
  dayStats(childId: string | null, year: number, month: number): Promise<Map<number, number>>;
  /** Energy per month (1-12) of `year`, Wh. */
  monthStats(childId: string | null, year: number): Promise<Map<number, number>>;
}

/** A backfill request that got no usable answer. */
export class StatsError extends Error {
  override readonly name = 'StatsError';
}

/** 15 kW for 31 days: no day or month statistic of a plug can be larger. */
const MAX_DAY_WH = 15_000 * 24;
const MAX_MONTH_WH = MAX_DAY_WH * 31;
const QUARTER_HOUR_MS = 15 * 60_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withContext(childId: string | null, body: Record<string, unknown>): string {
  return JSON.stringify(childId === null ? body : { context: { child_ids: [childId] }, ...body });
}

/** The `energy_wh` (Wh) or `energy` (kWh, old firmware) of a stat entry, if plausible. */
function entryWh(entry: Record<string, unknown>, max: number): number | null {
  const wh = entry['energy_wh'];
  const kwh = entry['energy'];
  const value = typeof wh === 'number' ? wh : typeof kwh === 'number' ? kwh * 1000 : Number.NaN;
  return Number.isFinite(value) && value >= 0 && value <= max ? value : null;
}

export class LegacyStatsSource implements EnergyStatsSource {
  readonly #connection: Pick<KasaConnection, 'send'>;
  readonly #options: RequestOptions;

  /** `connection`: a legacy plug's, or anything that sends the legacy JSON (KLAP, for HS300 hw 2.0). */
  constructor(connection: Pick<KasaConnection, 'send'>, options: RequestOptions) {
    this.#connection = connection;
    this.#options = options;
  }

  async #ask(payload: string, module: string, method: string): Promise<Record<string, unknown>> {
    const response = await this.#connection.send(payload, this.#options);
    if (!response.ok) throw new StatsError(`${module}.${method}: ${response.failure} (${response.detail})`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(response.text);
    } catch {
      throw new StatsError(`${module}.${method}: the answer is not JSON`);
    }
    const inner = isRecord(parsed) && isRecord(parsed[module]) ? parsed[module][method] : undefined;
    if (!isRecord(inner)) throw new StatsError(`${module}.${method}: unexpected answer`);
    const code = inner['err_code'];
    if (code !== undefined && code !== 0)
      throw new StatsError(`${module}.${method}: err_code ${String(code)}`);
    return inner;
  }

  async clockOffsetMs(): Promise<number> {
    const asked = Date.now();
    const t = await this.#ask('{"time":{"get_time":{}}}', 'time', 'get_time');
    const fields = ['year', 'month', 'mday', 'hour', 'min', 'sec'].map((k) => t[k]);
    if (!fields.every((v) => typeof v === 'number' && Number.isInteger(v))) {
      throw new StatsError('time.get_time: missing or non-integer fields');
    }
    const [y, mo, d, h, mi, s] = fields as number[];
    const local = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
    if (!Number.isFinite(local)) throw new StatsError('time.get_time: not a date');
    const offset = Math.round((local - asked) / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
    if (Math.abs(offset) > 15 * 3_600_000) throw new StatsError('time.get_time: the plug clock is far off');
    return offset;
  }

  async dayStats(childId: string | null, year: number, month: number): Promise<Map<number, number>> {
    const answer = await this.#ask(
      withContext(childId, { emeter: { get_daystat: { year, month } } }),
      'emeter',
      'get_daystat',
    );
    const out = new Map<number, number>();
    const list = answer['day_list'];
    if (!Array.isArray(list)) throw new StatsError('emeter.get_daystat: no day_list');
    for (const entry of list) {
      if (!isRecord(entry) || entry['year'] !== year || entry['month'] !== month) continue;
      const day = entry['day'];
      const wh = entryWh(entry, MAX_DAY_WH);
      if (typeof day === 'number' && Number.isInteger(day) && day >= 1 && day <= 31 && wh !== null)
        out.set(day, wh);
    }
    return out;
  }

  async monthStats(childId: string | null, year: number): Promise<Map<number, number>> {
    const answer = await this.#ask(
      withContext(childId, { emeter: { get_monthstat: { year } } }),
      'emeter',
      'get_monthstat',
    );
    const out = new Map<number, number>();
    const list = answer['month_list'];
    if (!Array.isArray(list)) throw new StatsError('emeter.get_monthstat: no month_list');
    for (const entry of list) {
      if (!isRecord(entry) || entry['year'] !== year) continue;
      const month = entry['month'];
      const wh = entryWh(entry, MAX_MONTH_WH);
      if (typeof month === 'number' && Number.isInteger(month) && month >= 1 && month <= 12 && wh !== null)
        out.set(month, wh);
    }
    return out;
  }
}
