/**
 * The smart protocol's energy methods and their mapping to our canonical units.
 *
 * Power: `get_emeter_data.power_mw` (mW), else `get_energy_usage.current_power` (mW), else
 * `get_current_power.current_power` (whole W, ×1000). Voltage and current only come from
 * `get_emeter_data` (mV, mA); many plugs do not have it, and then they are null, never 0.
 * Energy: `get_energy_usage.month_energy` (Wh). These plugs have no lifetime counter; the month
 * counter resets at the device-local start of a month, which the counter arithmetic treats like a
 * reboot (a drop counts the new value as energy since the reset).
 */
import { PLAUSIBLE_LIMITS } from '../poller/normalise.js';
import { type CallOutcome, isRecord, type SmartCall, UNSUPPORTED_CODES } from './protocol.js';

export interface SmartEnergy {
  readonly powerMw: number;
  readonly voltageMv: number | null;
  readonly currentMa: number | null;
  /** `month_energy`, Wh. */
  readonly totalWh: number;
  /** `get_emeter_data.energy_wh` when present (meaning unverified on hardware; kept for diagnosis). */
  readonly energyWh: number | null;
  /** The device's local time, "YYYY-MM-DD HH:MM:SS", when sent. */
  readonly localTime: string | null;
}

export type EnergyResult =
  | { readonly ok: true; readonly energy: SmartEnergy }
  | {
      readonly ok: false;
      readonly reason: 'malformed' | 'error-code' | 'implausible';
      readonly detail: string;
    };

/**
 * Which optional methods a channel answers; learnt from its answers and kept per channel, so a
 * method a device does not have is asked once, not on every poll.
 */
export class EnergyMethods {
  /** `energy_monitoring` component version: 1 has get_energy_usage only. */
  constructor(readonly version: number) {}
  emeterData: boolean | null = null;
  currentPower: boolean | null = null;
  #requests: { key: string; calls: SmartCall[] } | null = null;

  /** The calls of the next poll (the same array while nothing new was learnt). */
  requests(): SmartCall[] {
    const key = `${this.emeterData}/${this.currentPower}`;
    if (this.#requests?.key !== key) this.#requests = { key, calls: this.#build() };
    return this.#requests.calls;
  }

  #build(): SmartCall[] {
    const calls: SmartCall[] = [{ method: 'get_energy_usage' }];
    if (this.version < 2) return calls;
    if (this.emeterData !== false) calls.push({ method: 'get_emeter_data' });
    if (this.currentPower !== false) calls.push({ method: 'get_current_power' });
    return calls;
  }

  /** Learns from one poll's outcomes which methods to ask next time. */
  learn(outcomes: ReadonlyMap<string, CallOutcome>): void {
    const emeter = outcomes.get('get_emeter_data');
    if (emeter !== undefined && !emeter.ok && UNSUPPORTED_CODES.has(emeter.code)) this.emeterData = false;
    else if (emeter?.ok) this.emeterData = true;
    const power = outcomes.get('get_current_power');
    if (power !== undefined && !power.ok && UNSUPPORTED_CODES.has(power.code)) this.currentPower = false;
    const usage = outcomes.get('get_energy_usage');
    // get_current_power is only a fallback: not needed when get_energy_usage carries the power.
    if (usage?.ok && typeof usage.result['current_power'] === 'number') this.currentPower = false;
    if (this.emeterData === true) this.currentPower = false;
  }
}

type Quantity = keyof typeof PLAUSIBLE_LIMITS;

function integer(
  source: Readonly<Record<string, unknown>>,
  field: string,
  quantity: Quantity,
  scale = 1,
): { value: number } | { error: EnergyResult } | null {
  const raw = source[field];
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'number' || !Number.isFinite(raw)) {
    return { error: { ok: false, reason: 'malformed', detail: `${field} is not a finite number` } };
  }
  if (raw < 0)
    return { error: { ok: false, reason: 'implausible', detail: `${field} is negative (${raw})` } };
  const value = Math.round(raw * scale);
  if (value > PLAUSIBLE_LIMITS[quantity]) {
    return {
      error: {
        ok: false,
        reason: 'implausible',
        detail: `${field} ${raw} beyond ${PLAUSIBLE_LIMITS[quantity]}`,
      },
    };
  }
  return { value };
}

/** Maps one poll's outcomes to a reading's values. */
export function mapEnergy(outcomes: ReadonlyMap<string, CallOutcome>): EnergyResult {
  const usage = outcomes.get('get_energy_usage');
  if (usage === undefined) return { ok: false, reason: 'malformed', detail: 'no get_energy_usage answer' };
  if (!usage.ok)
    return { ok: false, reason: 'error-code', detail: `get_energy_usage error_code ${usage.code}` };
  const emeter = outcomes.get('get_emeter_data');
  const emeterResult = emeter?.ok ? emeter.result : null;
  const power = outcomes.get('get_current_power');

  const month = integer(usage.result, 'month_energy', 'totalWh');
  if (month === null)
    return { ok: false, reason: 'malformed', detail: 'get_energy_usage has no month_energy' };
  if ('error' in month) return month.error;

  let powerMw: number | null = null;
  let voltageMv: number | null = null;
  let currentMa: number | null = null;
  let energyWh: number | null = null;
  if (emeterResult !== null) {
    for (const [field, quantity] of [
      ['power_mw', 'powerMw'],
      ['voltage_mv', 'voltageMv'],
      ['current_ma', 'currentMa'],
      ['energy_wh', 'totalWh'],
    ] as const) {
      const v = integer(emeterResult, field, quantity);
      if (v !== null && 'error' in v) return v.error;
      if (v === null) continue;
      if (field === 'power_mw') powerMw = v.value;
      else if (field === 'voltage_mv') voltageMv = v.value;
      else if (field === 'current_ma') currentMa = v.value;
      else energyWh = v.value;
    }
  }
  if (powerMw === null) {
    const v = integer(usage.result, 'current_power', 'powerMw');
    if (v !== null && 'error' in v) return v.error;
    if (v !== null) powerMw = v.value;
  }
  if (powerMw === null && power?.ok) {
    const v = integer(power.result, 'current_power', 'powerMw', 1000);
    if (v !== null && 'error' in v) return v.error;
    if (v !== null) powerMw = v.value;
  }
  if (powerMw === null) return { ok: false, reason: 'malformed', detail: 'no power in any energy method' };
  const localTime =
    typeof usage.result['local_time'] === 'string' ? usage.result['local_time'].slice(0, 32) : null;
  return { ok: true, energy: { powerMw, voltageMv, currentMa, totalWh: month.value, energyWh, localTime } };
}

/** The `energy_monitoring` version from a `component_nego` result (null: no energy meter). */
export function energyVersion(componentNego: Readonly<Record<string, unknown>> | null): number | null {
  const list = componentNego?.['component_list'];
  if (!Array.isArray(list)) return null;
  for (const c of list) {
    if (isRecord(c) && c['id'] === 'energy_monitoring') {
      const v = c['ver_code'];
      return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 1;
    }
  }
  return null;
}
