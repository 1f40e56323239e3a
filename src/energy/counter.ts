/**
 * Energy from a plug's cumulative counter. A plug reports `total_wh`, the energy it has metered since
 * it last started; the counter restarts at zero whenever the plug reboots or loses power. The energy
 * of the interval between two consecutive readings of a channel is therefore:
 *
 * - the counter's increase, when it did not go down;
 * - the new value, when it went down (a restart: what was metered since then), never a negative
 *   delta. If the new value is more than the plug could have used in the interval (twice the higher
 *   of the two power readings, plus 2 Wh for the integer counter), the drop is not a restart from
 *   zero but a counter anomaly: the interval counts 0 rather than an invented number;
 * - not spread over time when the readings are further apart than the gap limit: the interval is a
 *   gap, recorded with what the counter says about it, and counts in no time bucket.
 *
 * An increase no plug can meter in the time (more than 15 kW, half again the largest power a reading
 * may report) is a counter anomaly as well: the interval counts 0. Power readings are instants, so
 * only this absolute bound applies to increases: a kettle may run between two polls that both see 0 W.
 */

/** What the accounting needs from a reading. */
export interface CounterReading {
  /** Poll time, UTC ms. */
  readonly tsMs: number;
  /** Cumulative counter since the plug's last start, Wh. */
  readonly totalWh: number;
  /** Power at poll time, mW (bounds what a restarted counter can plausibly show). */
  readonly powerMw: number;
}

export interface CounterInterval {
  readonly fromMs: number;
  readonly toMs: number;
  /** Energy the counter shows for the interval, Wh (>= 0). For a gap with a restart, a lower bound. */
  readonly energyWh: number;
  /** The counter went down: the plug restarted in the interval. */
  readonly reset: boolean;
  /** The counter went down to a value too large for a restart: the interval counts 0. */
  readonly anomaly: boolean;
  /** Longer than the gap limit: recorded as a gap, not spread over time. */
  readonly gap: boolean;
}

/** Slack for a restarted integer counter (it may already show 1 Wh a moment after the restart). */
const RESET_SLACK_WH = 2;

/** The most any plug can meter: half again the normaliser's 10 kW limit on a power reading. */
export const MAX_METERED_WATTS = 15_000;

/** The counter cannot have grown by more than this in `dtMs`. */
function maxEnergyWh(dtMs: number): number {
  return (MAX_METERED_WATTS * dtMs) / 3_600_000 + RESET_SLACK_WH;
}

/** Most energy a channel can plausibly have used in `dtMs` given the power seen at both ends. */
export function plausibleEnergyWh(prev: CounterReading, cur: CounterReading, dtMs: number): number {
  const watts = Math.max(prev.powerMw, cur.powerMw, 0) / 1000;
  return (2 * watts * dtMs) / 3_600_000 + RESET_SLACK_WH;
}

/** The interval from `prev` to `cur` (cur later than prev). */
export function counterInterval(
  prev: CounterReading,
  cur: CounterReading,
  gapLimitMs: number,
): CounterInterval {
  const dtMs = cur.tsMs - prev.tsMs;
  const gap = dtMs > gapLimitMs;
  const delta = cur.totalWh - prev.totalWh;
  if (delta >= 0) {
    const anomaly = delta > maxEnergyWh(dtMs);
    return { fromMs: prev.tsMs, toMs: cur.tsMs, energyWh: anomaly ? 0 : delta, reset: false, anomaly, gap };
  }
  const sinceRestart = Math.max(0, cur.totalWh);
  // In a gap the power in between is unknown: the new value is all we know, as a lower bound.
  if ((gap && sinceRestart <= maxEnergyWh(dtMs)) || sinceRestart <= plausibleEnergyWh(prev, cur, dtMs)) {
    return { fromMs: prev.tsMs, toMs: cur.tsMs, energyWh: sinceRestart, reset: true, anomaly: false, gap };
  }
  return { fromMs: prev.tsMs, toMs: cur.tsMs, energyWh: 0, reset: true, anomaly: true, gap };
}
