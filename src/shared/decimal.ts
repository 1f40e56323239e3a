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

/**
 * A text cell of CSV: prefixed with `'` when it would begin with `=`, `+`, `-`, `@`, tab or CR, so a
 * spreadsheet shows it as text instead of running it as a formula (the OWASP rule for CSV
 * injection; aliases come from devices and are untrusted), then quoted when it holds a comma, quote
 * or line break (RFC 4180). Only for text: numbers are written as they are, a minus sign included.
 */
export function csvField(value: string): string {
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
