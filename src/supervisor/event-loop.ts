import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface LagSample {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  /** Samples in the window (0: the window was too short to say). */
  readonly samples: number;
}

const round2 = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Event-loop delay, in windows: `sample()` returns the percentiles since the previous call and
 * starts a new window. Based on perf_hooks' timer (resolution 10 ms), so it costs one timer.
 */
export class EventLoopLag {
  readonly #histogram: IntervalHistogram;
  readonly #resolutionMs: number;
  #last: LagSample = { p50Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0, samples: 0 };

  constructor(resolutionMs = 10) {
    this.#resolutionMs = resolutionMs;
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#histogram.enable();
  }

  sample(): LagSample {
    const h = this.#histogram;
    // The histogram records the time between two ticks of its timer, i.e. the resolution plus the
    // delay: subtract the resolution so an idle loop reads ~0.
    const delay = (ns: number) => round2(Math.max(0, ns / 1e6 - this.#resolutionMs));
    const count = h.count;
    this.#last =
      count === 0
        ? { p50Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0, samples: 0 }
        : {
            p50Ms: delay(h.percentile(50)),
            p99Ms: delay(h.percentile(99)),
            maxMs: delay(h.max),
            meanMs: delay(h.mean),
            samples: count,
          };
    h.reset();
    return this.#last;
  }

  /** The last window's figures, without starting a new one. */
  get last(): LagSample {
    return this.#last;
  }

  stop(): void {
    this.#histogram.disable();
  }
}
