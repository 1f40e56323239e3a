import type { Reading } from '../domain/reading.js';

/**
 * Why a response did not become a reading:
 * - `malformed`: not JSON, not the expected shape, a field missing, not a number or not finite;
 * - `error-code`: the device answered with `err_code` ≠ 0 (e.g. -1 "module not support" on an HS100);
 * - `implausible`: a well-formed number no working plug can measure (negative, or beyond the bounds).
 */
export type RejectReason = 'malformed' | 'error-code' | 'implausible';

export type NormaliseResult =
  | { readonly ok: true; readonly reading: Reading }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string };

/**
 * Bounds of a plausible reading, in canonical units. Kasa plugs are rated 15 A (US) / 16 A (EU) at
 * 120/230 V (about 3.7 kW); the bounds leave a wide margin so that only garbage is rejected:
 * 10 kW, 300 V, 50 A, and 1 GWh for the energy counter (a kW load for 100 years stays below it).
 */
export const PLAUSIBLE_LIMITS = {
  powerMw: 10_000_000,
  voltageMv: 300_000,
  currentMa: 50_000,
  totalWh: 1_000_000_000,
} as const;

type Quantity = keyof typeof PLAUSIBLE_LIMITS;

/** New firmware field (already canonical) and old firmware field (canonical / 1000) per quantity. */
const FIELDS: readonly { readonly quantity: Quantity; readonly modern: string; readonly legacy: string }[] = [
  { quantity: 'powerMw', modern: 'power_mw', legacy: 'power' },
  { quantity: 'voltageMv', modern: 'voltage_mv', legacy: 'voltage' },
  { quantity: 'currentMa', modern: 'current_ma', legacy: 'current' },
  { quantity: 'totalWh', modern: 'total_wh', legacy: 'total' },
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `value × 1000` rounded to the nearest integer (half up). The shift is done on the decimal text
 * (`"0.0535e3"` → 53.5), so a firmware value such as 1.0005 kWh becomes 1001 Wh, where the binary
 * product 1.0005 * 1000 = 1000.4999999999999 would round down.
 */
export function thousandths(value: number): number {
  const text = String(value);
  const shifted = text.includes('e') ? value * 1000 : Number(`${text}e3`);
  return Math.round(shifted);
}

function reject(reason: RejectReason, detail: string): NormaliseResult {
  return { ok: false, reason, detail };
}

/**
 * Turns the decoded answer to `{"emeter":{"get_realtime":{}}}` (text or parsed JSON) into a reading in
 * integer canonical units (mW, mV, mA, Wh), whichever unit style the firmware used: old firmware
 * (HS110 v1) answers W/V/A/kWh floats (`power`, `voltage`, `current`, `total`), newer firmware
 * (HS110 v2+, HS300, KP115) mW/mV/mA/Wh (`power_mw`, ...). Per quantity the newer field wins when
 * both are present. Values are rounded, not truncated.
 */
export function normaliseRealtime(raw: unknown, channel: string, tsMs: number): NormaliseResult {
  let response: unknown = raw;
  if (typeof raw === 'string') {
    try {
      response = JSON.parse(raw);
    } catch {
      return reject('malformed', `not JSON (${raw.length} chars)`);
    }
  }
  if (!isRecord(response)) return reject('malformed', 'response is not an object');
  const emeter = response['emeter'];
  if (!isRecord(emeter)) return reject('malformed', 'no emeter object');
  const moduleErr = emeter['err_code'];
  if (moduleErr !== undefined && moduleErr !== 0) {
    return reject('error-code', `emeter err_code ${String(moduleErr)}: ${String(emeter['err_msg'] ?? '')}`);
  }
  const realtime = emeter['get_realtime'];
  if (!isRecord(realtime)) return reject('malformed', 'no emeter.get_realtime object');
  const errCode = realtime['err_code'];
  if (errCode === undefined) return reject('malformed', 'get_realtime has no err_code');
  if (errCode !== 0) {
    return reject(
      'error-code',
      `get_realtime err_code ${String(errCode)}: ${String(realtime['err_msg'] ?? '')}`,
    );
  }

  const values: Record<Quantity, number> = { powerMw: 0, voltageMv: 0, currentMa: 0, totalWh: 0 };
  for (const { quantity, modern, legacy } of FIELDS) {
    const useModern = modern in realtime;
    const field = useModern ? modern : legacy;
    const value = realtime[field];
    if (value === undefined) return reject('malformed', `missing ${modern} / ${legacy}`);
    if (typeof value !== 'number') return reject('malformed', `${field} is not a number`);
    if (!Number.isFinite(value)) return reject('malformed', `${field} is not finite`);
    if (value < 0) return reject('implausible', `${field} is negative (${value})`);
    const canonical = useModern ? Math.round(value) : thousandths(value);
    if (canonical > PLAUSIBLE_LIMITS[quantity]) {
      return reject('implausible', `${field} ${value} beyond ${PLAUSIBLE_LIMITS[quantity]} (${quantity})`);
    }
    values[quantity] = canonical;
  }
  return {
    ok: true,
    reading: {
      channel,
      tsMs,
      powerMw: values.powerMw,
      voltageMv: values.voltageMv,
      currentMa: values.currentMa,
      totalWh: values.totalWh,
    },
  };
}

/** A reading's values already in canonical units; null where the plug does not measure the quantity. */
export interface CanonicalValues {
  readonly powerMw: unknown;
  readonly voltageMv: unknown;
  readonly currentMa: unknown;
  readonly totalWh: unknown;
}

/**
 * A reading from values a device sent in canonical units (the smart protocol's mW, mV, mA, Wh),
 * checked as the legacy answer is: numbers, finite, not negative, within PLAUSIBLE_LIMITS, rounded.
 * Power and energy are required; voltage and current may be null or absent (many newer plugs do not
 * measure them) and then stay null: never 0, which would read as a brown-out.
 */
export function canonicalReading(values: CanonicalValues, channel: string, tsMs: number): NormaliseResult {
  const checked: Record<Quantity, number | null> = {
    powerMw: null,
    voltageMv: null,
    currentMa: null,
    totalWh: null,
  };
  for (const quantity of Object.keys(checked) as Quantity[]) {
    const value = values[quantity];
    const optional = quantity === 'voltageMv' || quantity === 'currentMa';
    if (value === undefined || value === null) {
      if (optional) continue;
      return reject('malformed', `missing ${quantity}`);
    }
    if (typeof value !== 'number') return reject('malformed', `${quantity} is not a number`);
    if (!Number.isFinite(value)) return reject('malformed', `${quantity} is not finite`);
    if (value < 0) return reject('implausible', `${quantity} is negative (${value})`);
    const canonical = Math.round(value);
    if (canonical > PLAUSIBLE_LIMITS[quantity]) {
      return reject('implausible', `${quantity} ${value} beyond ${PLAUSIBLE_LIMITS[quantity]}`);
    }
    checked[quantity] = canonical;
  }
  return {
    ok: true,
    reading: {
      channel,
      tsMs,
      powerMw: checked.powerMw as number,
      voltageMv: checked.voltageMv,
      currentMa: checked.currentMa,
      totalWh: checked.totalWh as number,
    },
  };
}
