/**
 * Statistics of newer (smart protocol) plugs for a backfill run in the worker thread, asked on the
 * main thread: the worker keeps the SQLite work off the daemon's event loop, while the plugs' sessions
 * (account, handshake, the fleet's one session per plug that the poller uses too) stay where they
 * are. The worker makes one small call per statistics request (the SQLite workers' message layer,
 * in the other direction); the main thread answers it through the plug's `EnergyStatsSource`.
 */
import type { EnergyStatsSource } from '../discovery/energy-stats.js';
import { StatsError } from '../discovery/energy-stats.js';

export type StatsAsk =
  | { readonly deviceId: string; readonly op: 'clock' }
  | {
      readonly deviceId: string;
      readonly op: 'day';
      readonly childId: string | null;
      readonly year: number;
      readonly month: number;
    }
  | {
      readonly deviceId: string;
      readonly op: 'month';
      readonly childId: string | null;
      readonly year: number;
    };

/** A plug's answer, or why there is none: data, so the plug's own words reach the run's report. */
export type StatsAnswer =
  | { readonly ok: true; readonly value: number | Map<number, number> }
  | { readonly ok: false; readonly error: string };

/** The main thread's side: the handlers it serves to the backfill worker. */
export function statsHandlers(sources: ReadonlyMap<string, EnergyStatsSource>) {
  return {
    /** Answers one ask through the plug's source (never rejects). */
    stats: async (ask: StatsAsk): Promise<StatsAnswer> => {
      const source = sources.get(ask.deviceId);
      try {
        if (source === undefined) throw new StatsError(`no statistics source for ${ask.deviceId}`);
        const value =
          ask.op === 'clock'
            ? await source.clockOffsetMs()
            : ask.op === 'day'
              ? await source.dayStats(ask.childId, ask.year, ask.month)
              : await source.monthStats(ask.childId, ask.year);
        return { ok: true, value };
      } catch (error) {
        return { ok: false, error: error instanceof Error ? error.message : String(error) };
      }
    },
  };
}

export type StatsHandlers = ReturnType<typeof statsHandlers>;

/** How the worker asks (a PortClient<StatsHandlers> on its parentPort). */
export interface StatsCaller {
  call(op: 'stats', ask: StatsAsk): Promise<StatsAnswer>;
}

/** The worker's side: one per run, shared by the remote plugs' sources. */
export class RemoteStats {
  constructor(private readonly caller: StatsCaller) {}

  async #ask<T>(ask: StatsAsk): Promise<T> {
    const answer = await this.caller.call('stats', ask);
    if (!answer.ok) throw new StatsError(answer.error);
    return answer.value as T;
  }

  source(deviceId: string): EnergyStatsSource {
    return {
      clockOffsetMs: () => this.#ask({ deviceId, op: 'clock' }),
      dayStats: (childId, year, month) => this.#ask({ deviceId, op: 'day', childId, year, month }),
      monthStats: (childId, year) => this.#ask({ deviceId, op: 'month', childId, year }),
    };
  }
}
