/**
 * Dynamic prices: a CSV file of `start,end,price` rows (ISO 8601 times with an offset or `Z`, `end`
 * exclusive, price per kWh). Rows must touch: a gap or an overlap is an error, because a time the
 * file does not price would silently fall back to the periods' rates inside the file's span.
 */

/** One row of the prices file, in UTC ms. */
export interface DynamicPrice {
  readonly startMs: number;
  readonly endMs: number;
  readonly price: number;
}

export type PricesParse =
  | { readonly ok: true; readonly rows: readonly DynamicPrice[] }
  | { readonly ok: false; readonly problems: readonly string[] };

/** An ISO 8601 date-time that names its offset: `2026-01-01T00:00:00+01:00` or `...Z`. */
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

function parseInstant(text: string): number | null {
  if (!ISO_WITH_OFFSET.test(text)) return null;
  const ms = Date.parse(text.replace(' ', 'T'));
  return Number.isFinite(ms) ? ms : null;
}

/** Problems reported per file before giving up (a broken file should not flood the terminal). */
const MAX_PROBLEMS = 5;

/** Parses the text of a prices file; problems name the line. */
export function parsePricesCsv(text: string): PricesParse {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const problems: string[] = [];
  const rows: DynamicPrice[] = [];
  const header = (lines[0] ?? '').split(',').map((cell) => cell.trim().toLowerCase());
  if (header.join(',') !== 'start,end,price') {
    return { ok: false, problems: ["line 1: the header must be 'start,end,price'"] };
  }
  for (let i = 1; i < lines.length && problems.length < MAX_PROBLEMS; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    const where = `line ${i + 1}`;
    const cells = line.split(',').map((cell) => cell.trim());
    if (cells.length !== 3) {
      problems.push(`${where}: expected 3 columns (start,end,price), got ${cells.length}`);
      continue;
    }
    const [startText, endText, priceText] = cells as [string, string, string];
    const startMs = parseInstant(startText);
    const endMs = parseInstant(endText);
    const price = /^-?\d+(\.\d+)?$/.test(priceText) ? Number(priceText) : Number.NaN;
    if (startMs === null || endMs === null) {
      problems.push(
        `${where}: start and end must be ISO 8601 times with an offset or Z, such as 2026-01-01T00:00:00+01:00`,
      );
      continue;
    }
    if (!Number.isFinite(price)) {
      problems.push(`${where}: price must be a plain decimal number, got '${priceText}'`);
      continue;
    }
    if (endMs <= startMs) {
      problems.push(`${where}: end must be later than start`);
      continue;
    }
    const previous = rows.at(-1);
    if (previous !== undefined && startMs !== previous.endMs) {
      const kind = startMs > previous.endMs ? 'a gap' : 'an overlap';
      problems.push(
        `${where}: starts at ${new Date(startMs).toISOString()} but the row before ends at ${new Date(previous.endMs).toISOString()} (${kind}; rows must touch)`,
      );
      continue;
    }
    rows.push({ startMs, endMs, price });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, rows };
}
