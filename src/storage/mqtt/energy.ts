import { type CounterReading, counterInterval } from '../../energy/counter.js';
import type { Reading } from '../../poller/reading.js';

/**
 * The energy counter published to MQTT: it never goes backwards. It starts at the plug's own counter
 * and then adds what each interval metered, with the same reset and anomaly rules as the rollups
 * (src/energy/counter.ts): when the plug reboots and its counter restarts at zero, the published
 * counter carries on from where it was. Home Assistant's total_increasing sensor needs exactly that.
 */
export class EnergyStitcher {
  #last: CounterReading | null = null;
  #wh = 0;

  constructor(private readonly gapLimitMs: number) {}

  /** Adds a reading; returns the counter in Wh, or null for a reading not newer than the last one. */
  add(reading: Reading): number | null {
    const last = this.#last;
    if (last === null) {
      this.#wh = Math.max(0, reading.totalWh);
    } else {
      if (reading.tsMs <= last.tsMs) return null;
      this.#wh += counterInterval(last, reading, this.gapLimitMs).energyWh;
    }
    this.#last = { tsMs: reading.tsMs, totalWh: reading.totalWh, powerMw: reading.powerMw };
    return this.#wh;
  }
}
