/** Numbers with units, as the dashboard shows them. */

/**
 * Power precise to max(1 W, 1 %): 4.2 W, 81 W, 1.23 kW (for 1,234.6 W), 12.3 kW. Three significant
 * figures from 100 W up keep the rounding error under 1 %; below that it stays under 1 W.
 */
export function formatPower(watts: number): string {
  const a = Math.abs(watts);
  if (a >= 9_995) return `${(watts / 1000).toFixed(1)} kW`;
  if (a >= 999.5) return `${(watts / 1000).toFixed(2)} kW`;
  if (a >= 9.95 || watts === 0) return `${Math.round(watts)} W`;
  return `${watts.toFixed(1)} W`;
}

/** Energy: 530 Wh, 1.23 kWh, 12.3 kWh. */
export function formatEnergy(kwh: number): string {
  if (kwh < 1) return `${Math.round(kwh * 1000)} Wh`;
  if (kwh < 10) return `${kwh.toFixed(2)} kWh`;
  return `${kwh.toFixed(1)} kWh`;
}

/** Money with its currency code: '1.23 EUR' (two decimals, as on a bill). */
export function formatMoney(amount: number, currency: string): string {
  const text = amount.toFixed(2);
  return `${text === '-0.00' ? '0.00' : text} ${currency}`;
}

/** '14:03:05' today, else '2026-11-26 14:03', in the browser's zone. */
export function formatTime(iso: string | number): string {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time.slice(0, 5)}`;
}

/** How long ago, roughly: '5 s ago', '3 min ago', '2 h ago'. */
export function formatAge(iso: string, nowMs = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - new Date(iso).getTime()) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** A bucket width: '5 s', '2 min', '2 h'. */
export function formatStep(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
