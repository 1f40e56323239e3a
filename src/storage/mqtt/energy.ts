import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { Reading } from '../../domain/reading.js';
import { type CounterReading, counterInterval } from '../../energy/counter.js';

/** What survives a restart of the daemon: the counter and the reading it was last advanced by. */
export interface StitchedCounter {
  readonly wh: number;
  readonly last: CounterReading;
}

/**
 * The energy counter published to MQTT: it never goes backwards. It starts at the plug's own counter
 * and then adds what each interval metered, with the same reset and anomaly rules as the rollups
 * (src/energy/counter.ts): when the plug reboots and its counter restarts at zero, the published
 * counter carries on from where it was. Home Assistant's total_increasing sensor needs exactly that
 * (a decrease would read as a new meter cycle and count the plug's whole counter again).
 */
export class EnergyStitcher {
  #last: CounterReading | null;
  #wh: number;

  constructor(
    private readonly gapLimitMs: number,
    saved: StitchedCounter | null = null,
  ) {
    this.#last = saved?.last ?? null;
    this.#wh = saved?.wh ?? 0;
  }

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

  saved(): StitchedCounter | null {
    return this.#last === null ? null : { wh: this.#wh, last: this.#last };
  }
}

function isSaved(value: unknown): value is StitchedCounter {
  const v = value as { wh?: unknown; last?: { tsMs?: unknown; totalWh?: unknown; powerMw?: unknown } } | null;
  const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  return (
    typeof v === 'object' &&
    v !== null &&
    finite(v.wh) &&
    (v.wh as number) >= 0 &&
    typeof v.last === 'object' &&
    v.last !== null &&
    finite(v.last.tsMs) &&
    finite(v.last.totalWh) &&
    finite(v.last.powerMw)
  );
}

/**
 * The stitched counters of every channel in a small JSON file (beside the database), so a restart of
 * the daemon carries on from the published value instead of starting again at the plug's counter.
 * Read once at start; written now and then and at stop (write to a temporary file, then rename).
 * A missing or unreadable file only means the counters start at the plugs' own values again.
 */
export class EnergyLedger {
  #saving: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  load(): Map<string, StitchedCounter> {
    const out = new Map<string, StitchedCounter>();
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch {
      return out;
    }
    if (typeof parsed !== 'object' || parsed === null) return out;
    for (const [channel, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (isSaved(value)) out.set(channel, value);
    }
    return out;
  }

  /** Saves (one write at a time; a failure is reported to `onError` and tried again next time). */
  save(counters: ReadonlyMap<string, StitchedCounter>, onError: (error: unknown) => void): Promise<void> {
    const text = JSON.stringify(Object.fromEntries(counters));
    this.#saving = this.#saving.then(async () => {
      const temporary = `${this.path}.tmp`;
      try {
        await writeFile(temporary, text, { mode: 0o600 });
        await rename(temporary, this.path);
      } catch (error) {
        onError(error);
      }
    });
    return this.#saving;
  }
}
