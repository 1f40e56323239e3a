/**
 * The backfill's statistics source for newer (smart protocol) plugs, over the session the poller
 * already uses (`SmartDevice`), strip outlets through `control_child`.
 *
 * What the plugs keep (notes/smart-protocol.md §7.2), and what each can fill:
 * - `get_energy_data` (newer firmware; **unverified** on hardware, no fixture): daily Wh for a range
 *   that must start on the first day of a quarter (interval 1440) and monthly Wh from 1 January
 *   (interval 43200). With it, gaps fill like a legacy plug's: ended days at day level, ended months
 *   at month level when the plug's zone differs, as far back as the plug keeps history.
 * - `get_energy_usage` only (`today_energy`, `month_energy`, Wh): today and the current month,
 *   which are never complete, so the backfill (ended days and months only) can fill nothing from
 *   them; they are returned for completeness.
 *
 * Timestamps of `get_energy_data` are sent as the device-local midnight written as if it were UTC
 * (the plug's buckets are its local days); the answer's buckets are read by position from the start
 * we asked for, so the convention only decides which range is asked. The clock comes from
 * `get_device_time` (`time_diff`, minutes).
 *
 * Legacy JSON over KLAP (HS300 hw 2.0, "new_klap"): the legacy statistics (`get_daystat`, …) sent
 * through the same session.
 *
 * Everything a device sends is untrusted: values that are not finite, negative or beyond what a
 * plug can meter in the period are dropped.
 */
import { type EnergyStatsSource, LegacyStatsSource, StatsError } from '../discovery/energy-stats.js';
import type { RawResponse } from '../discovery/kasa.js';
import type { SmartDevice } from './device.js';
import { isSmartError } from './errors.js';
import { type SmartCall, UNSUPPORTED_CODES } from './protocol.js';

const MAX_DAY_WH = 15_000 * 24;
const MAX_MONTH_WH = MAX_DAY_WH * 31;
const QUARTER_HOUR_MS = 15 * 60_000;
const DAY_S = 86_400;

function plausible(value: unknown, max: number): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= max ? value : null;
}

export class SmartStatsSource implements EnergyStatsSource {
  /** False once the plug answered get_energy_data "unsupported": not asked again. */
  #hasEnergyData = true;
  #offsetMs: number | null = null;

  constructor(
    /** The plug's client now (the fleet may have rebuilt it); null when it is not reachable. */
    private readonly device: () => SmartDevice | null,
    private readonly timeoutMs: number,
  ) {}

  /** The legacy source over `device`'s session when it speaks the legacy JSON, else null. */
  #iot(): LegacyStatsSource | null {
    const device = this.device();
    if (device?.payload !== 'iot') return null;
    const send = async (payload: string): Promise<RawResponse> => {
      try {
        return { ok: true, text: await device.transport.send(payload, this.timeoutMs) };
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        const timeout = isSmartError(error) && error.code === 'timeout';
        return { ok: false, failure: timeout ? 'timeout' : 'network', detail };
      }
    };
    return new LegacyStatsSource({ send }, { transport: 'udp', timeoutMs: this.timeoutMs });
  }

  async #call(call: SmartCall, childId: string | null): Promise<Readonly<Record<string, unknown>> | null> {
    const device = this.device();
    if (device === null) throw new StatsError('the newer plug is not reachable (not identified)');
    if (device.identity === null) await device.identify(this.timeoutMs);
    const outcome = (await device.protocol.many([call], this.timeoutMs, childId)).get(call.method);
    if (outcome === undefined) throw new StatsError(`${call.method}: no answer`);
    if (!outcome.ok) {
      if (UNSUPPORTED_CODES.has(outcome.code)) return null;
      throw new StatsError(`${call.method}: error_code ${outcome.code}`);
    }
    return outcome.result;
  }

  async clockOffsetMs(): Promise<number> {
    const iot = this.#iot();
    if (iot !== null) return iot.clockOffsetMs();
    const t = await this.#call({ method: 'get_device_time' }, null);
    if (t === null) throw new StatsError('get_device_time: not supported');
    const diff = t['time_diff'];
    if (typeof diff !== 'number' || !Number.isFinite(diff))
      throw new StatsError('get_device_time: no time_diff');
    const offset = Math.round((diff * 60_000) / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
    if (Math.abs(offset) > 15 * 3_600_000) throw new StatsError('get_device_time: time_diff out of range');
    this.#offsetMs = offset;
    return offset;
  }

  /** The plug's local date now (its clock offset applied), as UTC fields. */
  async #localNow(): Promise<Date> {
    const offset = this.#offsetMs ?? (await this.clockOffsetMs());
    return new Date(Date.now() + offset);
  }

  /** get_energy_data's buckets from `startS` (local midnight as UTC seconds); null: not supported. */
  async #energyData(
    childId: string | null,
    startS: number,
    endS: number,
    interval: number,
  ): Promise<unknown[] | null> {
    if (!this.#hasEnergyData) return null;
    const result = await this.#call(
      { method: 'get_energy_data', params: { start_timestamp: startS, end_timestamp: endS, interval } },
      childId,
    );
    if (result === null) {
      this.#hasEnergyData = false;
      return null;
    }
    if (result['interval'] !== undefined && result['interval'] !== interval)
      throw new StatsError(
        `get_energy_data: answered interval ${String(result['interval'])}, asked ${interval}`,
      );
    if (result['start_timestamp'] !== undefined && result['start_timestamp'] !== startS)
      throw new StatsError('get_energy_data: answered another start than asked');
    const data = result['data'];
    if (!Array.isArray(data)) throw new StatsError('get_energy_data: no data list');
    return data;
  }

  async dayStats(childId: string | null, year: number, month: number): Promise<Map<number, number>> {
    const iot = this.#iot();
    if (iot !== null) return iot.dayStats(childId, year, month);
    const out = new Map<number, number>();
    const quarterStart = Date.UTC(year, month - 1 - ((month - 1) % 3), 1) / 1000;
    const monthStart = Date.UTC(year, month - 1, 1) / 1000;
    const monthEnd = Date.UTC(year, month, 1) / 1000;
    if (!Number.isFinite(monthStart)) throw new StatsError(`no such month ${year}-${month}`);
    const data = await this.#energyData(childId, quarterStart, monthEnd - DAY_S, 1440);
    if (data !== null) {
      const skip = (monthStart - quarterStart) / DAY_S;
      for (let day = 1; skip + day - 1 < data.length && day <= (monthEnd - monthStart) / DAY_S; day++) {
        const wh = plausible(data[skip + day - 1], MAX_DAY_WH);
        if (wh !== null) out.set(day, wh);
      }
      return out;
    }
    // Only today's figure: it answers for today (never an ended day, so nothing to fill from it).
    const now = await this.#localNow();
    if (now.getUTCFullYear() !== year || now.getUTCMonth() + 1 !== month) return out;
    const usage = await this.#call({ method: 'get_energy_usage' }, childId);
    const today = plausible(usage?.['today_energy'], MAX_DAY_WH);
    if (today !== null) out.set(now.getUTCDate(), today);
    return out;
  }

  async monthStats(childId: string | null, year: number): Promise<Map<number, number>> {
    const iot = this.#iot();
    if (iot !== null) return iot.monthStats(childId, year);
    const out = new Map<number, number>();
    const start = Date.UTC(year, 0, 1) / 1000;
    if (!Number.isFinite(start)) throw new StatsError(`no such year ${year}`);
    const data = await this.#energyData(childId, start, Date.UTC(year, 11, 1) / 1000, 43200);
    if (data !== null) {
      for (let m = 1; m <= 12 && m <= data.length; m++) {
        const wh = plausible(data[m - 1], MAX_MONTH_WH);
        if (wh !== null) out.set(m, wh);
      }
      return out;
    }
    const now = await this.#localNow();
    if (now.getUTCFullYear() !== year) return out;
    const usage = await this.#call({ method: 'get_energy_usage' }, childId);
    const month = plausible(usage?.['month_energy'], MAX_MONTH_WH);
    if (month !== null) out.set(now.getUTCMonth() + 1, month);
    return out;
  }
}
