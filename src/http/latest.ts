import type { Reading } from '../domain/reading.js';

/**
 * The most recent reading of every channel, for /metrics and /api/devices. Fed by teeing the
 * poller's sink (the bounded queue): recording is one map write, and the queue still gets every
 * reading.
 */
export class LatestReadings {
  readonly #latest = new Map<string, Reading>();

  record(reading: Reading): void {
    const previous = this.#latest.get(reading.channel);
    if (previous === undefined || reading.tsMs >= previous.tsMs) this.#latest.set(reading.channel, reading);
  }

  get(channel: string): Reading | undefined {
    return this.#latest.get(channel);
  }

  /** A sink that records each reading, then offers it to `sink` and returns what it returned. */
  tee<R>(sink: { offer(reading: Reading): R }): { offer(reading: Reading): R } {
    return {
      offer: (reading: Reading): R => {
        this.record(reading);
        return sink.offer(reading);
      },
    };
  }
}
