import { isDeepStrictEqual } from 'node:util';

/**
 * The contract of every long-running part of the daemon (discovery, poller, writer, sinks,
 * lifecycle, readers, supervisor, HTTP, backfill). The composition root holds them in one ordered
 * list (see Components) and only ever talks to them through this shape, the way zigbee2mqtt's
 * controller drives its extensions.
 */
export interface Component<Slice = never, Stats = unknown> {
  /** Short and stable: the key of its figures in the daemon's status, and `part` in log lines. */
  readonly name: string;
  /** Brings the part up; rejects when it cannot run, which fails the daemon's start. */
  start(): unknown;
  /**
   * Takes the part down. `deadlineMs` is what is left of the shutdown budget: parts that drain (the
   * writer) finish within it, the others ignore it.
   */
  stop(deadlineMs: number): unknown;
  /** A point-in-time view for the status, /metrics, STATUS= and the logs. */
  stats(): Stats;
  /**
   * Applies the part's new slice of a reloaded configuration; called only when the slice changed.
   * Absent on parts whose settings all take a restart.
   */
  reconfigure?(slice: Slice): unknown;
}

/** Something a reload may retune: a component, or a shared object such as the queue or the log level. */
export interface Tunable<C> {
  readonly name: string;
  /** Its slice of configuration `config`: plain data, compared by deep equality. */
  readonly slice: (config: C) => unknown;
  readonly reconfigure: (slice: never) => unknown;
}

/** A tunable whose slice and reconfigure agree on the slice's type. */
export function tunable<C, S>(
  name: string,
  slice: (config: C) => S,
  reconfigure: (slice: S) => unknown,
): Tunable<C> {
  return { name, slice, reconfigure };
}

/**
 * Reconfigures, in order, exactly the tunables whose slice differs between `before` and `after`
 * (awaiting each, so one that must load a module is done before the next). Returns their names.
 * The first failure stops the loop and is thrown; so does `abandoned()` turning true (the daemon
 * began stopping while a part was busy), so nothing is retuned after it stopped.
 */
export async function reconfigureChanged<C>(
  tunables: readonly Tunable<C>[],
  before: C,
  after: C,
  abandoned: () => boolean = () => false,
): Promise<string[]> {
  const changed: string[] = [];
  for (const t of tunables) {
    const next = t.slice(after);
    if (isDeepStrictEqual(t.slice(before), next)) continue;
    if (abandoned()) throw new Error('reload abandoned: the daemon is stopping');
    await (t.reconfigure as (slice: unknown) => unknown)(next);
    changed.push(t.name);
  }
  return changed;
}

/** Each component's stats() under its name. */
export type StatsOf<T> = { readonly [K in keyof T]: T[K] extends { stats(): infer S } ? S : never };

/** The slice each component's reconfigure() takes. */
type SliceOf<P> = P extends { reconfigure?(slice: infer S): unknown } ? S : never;

/** For each component that can be reconfigured, its slice of a configuration `C`. */
export type Slices<T, C> = { readonly [K in keyof T]?: (config: C) => SliceOf<T[K]> };

/**
 * The daemon's components in start order (the key order of `parts`, each key the component's
 * name). Start, stop, stats and reload are loops over this list: start in order, stop in reverse,
 * each stop guarded so a failing one never prevents the others.
 */
export class Components<T extends Readonly<Record<string, Component<never>>>> {
  readonly #parts: T;
  readonly #list: readonly Component<never>[];
  /** Those whose start was attempted, in start order: what stop() takes down. */
  readonly #started: Component<never>[] = [];

  constructor(parts: T) {
    for (const [key, part] of Object.entries(parts)) {
      if (part.name !== key) throw new Error(`component '${part.name}' registered as '${key}'`);
    }
    this.#parts = parts;
    this.#list = Object.values(parts);
  }

  get parts(): T {
    return this.#parts;
  }

  /** Starts each component in order, awaiting it; the first failure is thrown (stop() still works). */
  async start(): Promise<void> {
    for (const part of this.#list) {
      if (this.#started.includes(part)) continue;
      this.#started.push(part);
      await part.start();
    }
  }

  /**
   * Stops the started components in reverse order, each within what is left of `deadlineMs`; a
   * failure is handed to `failed` and the next one is stopped all the same.
   */
  async stop(deadlineMs: number, failed: (name: string, error: unknown) => void): Promise<void> {
    const began = Date.now();
    for (const part of this.#started.splice(0).reverse()) {
      try {
        await part.stop(Math.max(0, deadlineMs - (Date.now() - began)));
      } catch (error) {
        failed(part.name, error);
      }
    }
  }

  stats(): StatsOf<T> {
    const out: Record<string, unknown> = {};
    for (const part of this.#list) out[part.name] = part.stats();
    return out as StatsOf<T>;
  }

  /** The components that can be reconfigured, in order, each with its slice of a configuration. */
  tunables<C>(slices: Slices<T, C>): Tunable<C>[] {
    const out: Tunable<C>[] = [];
    for (const part of this.#list) {
      const slice = (slices as Record<string, ((config: C) => unknown) | undefined>)[part.name];
      const reconfigure = part.reconfigure?.bind(part);
      if (slice !== undefined && reconfigure !== undefined) out.push({ name: part.name, slice, reconfigure });
    }
    return out;
  }
}
