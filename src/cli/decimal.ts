/**
 * Formats an integer count of thousandths (mW, mV, mA) as a plain decimal in the base unit without
 * going through floating point, so 1234567 mW prints as `1234.567` and 12300 as `12.3`.
 */
export function milliToDecimal(milli: number): string {
  const negative = milli < 0;
  const abs = Math.abs(Math.trunc(milli));
  const whole = Math.trunc(abs / 1000);
  const frac = abs % 1000;
  const text = frac === 0 ? `${whole}` : `${whole}.${String(frac).padStart(3, '0').replace(/0+$/, '')}`;
  return negative ? `-${text}` : text;
}

/** Quotes a CSV field when it holds a comma, quote or line break (RFC 4180). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
