/** Upper bounds (ms) of the poll-duration buckets, Prometheus style (cumulative, plus +Inf). */
export const DURATION_BUCKETS_MS: readonly number[] = [
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

export interface DurationSummary {
  readonly count: number;
  readonly sumMs: number;
  readonly maxMs: number;
  /** Percentiles of the most recent samples (up to `window`); null before the first sample. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Cumulative counts: `count` samples ≤ `leMs` (the last bucket is +Inf). */
  readonly buckets: readonly { readonly leMs: number; readonly count: number }[];
}

/**
 * A small duration histogram: fixed cumulative buckets (for /metrics) plus a ring of the most recent
 * samples for p50/p99. Recording is O(buckets); percentiles are computed only when asked.
 */
export class DurationHistogram {
  readonly #counts = new Array<number>(DURATION_BUCKETS_MS.length + 1).fill(0);
  readonly #ring: Float64Array;
  #ringNext = 0;
  #ringSize = 0;
  #count = 0;
  #sum = 0;
  #max = 0;

  constructor(window = 1024) {
    this.#ring = new Float64Array(window);
  }

  record(ms: number): void {
    let i = 0;
    while (i < DURATION_BUCKETS_MS.length && ms > (DURATION_BUCKETS_MS[i] ?? Infinity)) i++;
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    this.#count++;
    this.#sum += ms;
    if (ms > this.#max) this.#max = ms;
    this.#ring[this.#ringNext] = ms;
    this.#ringNext = (this.#ringNext + 1) % this.#ring.length;
    if (this.#ringSize < this.#ring.length) this.#ringSize++;
  }

  summary(): DurationSummary {
    const recent = this.#ring.slice(0, this.#ringSize).sort();
    const pick = (q: number): number | null =>
      recent.length === 0
        ? null
        : (recent[Math.min(recent.length - 1, Math.ceil(q * recent.length) - 1)] ?? null);
    let cumulative = 0;
    const buckets = this.#counts.map((n, i) => {
      cumulative += n;
      return { leMs: DURATION_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY, count: cumulative };
    });
    return {
      count: this.#count,
      sumMs: this.#sum,
      maxMs: this.#max,
      p50Ms: pick(0.5),
      p99Ms: pick(0.99),
      buckets,
    };
  }
}
