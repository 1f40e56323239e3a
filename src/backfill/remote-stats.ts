/**
 * Statistics of newer (smart protocol) plugs for a backfill run in the worker thread, asked on the
 * main thread: the worker keeps the SQLite work off the daemon's event loop, while the plugs' sessions
 * (account, handshake, the fleet's one session per plug that the poller uses too) stay where they
 * are. The worker sends one small message per statistics request; the main thread answers it
 * through the plug's `EnergyStatsSource`.
 */
import type { MessagePort } from 'node:worker_threads';
import type { EnergyStatsSource } from '../discovery/energy-stats.js';
import { StatsError } from '../discovery/energy-stats.js';

export type StatsAsk =
  | { readonly kind: 'stats'; readonly id: number; readonly deviceId: string; readonly op: 'clock' }
  | {
      readonly kind: 'stats';
      readonly id: number;
      readonly deviceId: string;
      readonly op: 'day';
      readonly childId: string | null;
      readonly year: number;
      readonly month: number;
    }
  | {
      readonly kind: 'stats';
      readonly id: number;
      readonly deviceId: string;
      readonly op: 'month';
      readonly childId: string | null;
      readonly year: number;
    };

export type StatsReply =
  | {
      readonly kind: 'stats-reply';
      readonly id: number;
      readonly ok: true;
      readonly value: number | Map<number, number>;
    }
  | { readonly kind: 'stats-reply'; readonly id: number; readonly ok: false; readonly error: string };

/** An ask without its envelope (per variant). */
type AskBody = StatsAsk extends infer A ? (A extends StatsAsk ? Omit<A, 'id' | 'kind'> : never) : never;

type Port = Pick<MessagePort, 'postMessage' | 'on'>;

/** The worker's side: one per run, shared by the remote plugs' sources. */
export class RemoteStats {
  #next = 0;
  readonly #waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  constructor(private readonly port: Port) {
    port.on('message', (message: unknown) => {
      const reply = message as StatsReply;
      if (reply?.kind !== 'stats-reply') return;
      const waiter = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.value);
      else waiter?.reject(new StatsError(reply.error));
    });
  }

  #ask<T>(ask: AskBody): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ kind: 'stats', id, ...ask });
    });
  }

  source(deviceId: string): EnergyStatsSource {
    return {
      clockOffsetMs: () => this.#ask({ deviceId, op: 'clock' }),
      dayStats: (childId, year, month) => this.#ask({ deviceId, op: 'day', childId, year, month }),
      monthStats: (childId, year) => this.#ask({ deviceId, op: 'month', childId, year }),
    };
  }
}

/** The main thread's side: answers one ask through the plug's source (never rejects). */
export async function answerStats(
  ask: StatsAsk,
  sources: ReadonlyMap<string, EnergyStatsSource>,
): Promise<StatsReply> {
  const source = sources.get(ask.deviceId);
  try {
    if (source === undefined) throw new StatsError(`no statistics source for ${ask.deviceId}`);
    const value =
      ask.op === 'clock'
        ? await source.clockOffsetMs()
        : ask.op === 'day'
          ? await source.dayStats(ask.childId, ask.year, ask.month)
          : await source.monthStats(ask.childId, ask.year);
    return { kind: 'stats-reply', id: ask.id, ok: true, value };
  } catch (error) {
    return {
      kind: 'stats-reply',
      id: ask.id,
      ok: false,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}
