/**
 * A zone's offset from UTC at any instant, from a parsed TZif file (its transitions, then its POSIX
 * footer rule), or fixed for UTC.
 */
import { type PosixZone, parsePosixTz, posixOffsetAt } from './posix-tz.js';
import type { TzifZone } from './tzif.js';

export interface ZoneOffsets {
  /** Local time minus UTC at UTC instant `ms`, in ms (whole seconds). */
  offsetMs(ms: number): number;
}

export const UTC_OFFSETS: ZoneOffsets = { offsetMs: () => 0 };

export class TzifOffsets implements ZoneOffsets {
  readonly #transitions: Float64Array;
  /** Offset in seconds from each transition on. */
  readonly #offsets: Int32Array;
  /** Before the first transition: local time type 0 (RFC 8536 section 3.2). */
  readonly #initial: number;
  readonly #footer: PosixZone | null;

  constructor(zone: TzifZone) {
    this.#transitions = Float64Array.from(zone.transitions);
    this.#offsets = Int32Array.from(zone.typeIndex, (i) => zone.types[i]?.utoff ?? 0);
    this.#initial = zone.types[0]?.utoff ?? 0;
    this.#footer = zone.footer === '' ? null : parsePosixTz(zone.footer);
  }

  offsetMs(ms: number): number {
    const t = Math.floor(ms / 1000);
    const transitions = this.#transitions;
    const n = transitions.length;
    if (n === 0 || t >= (transitions[n - 1] ?? 0)) {
      if (this.#footer !== null) return posixOffsetAt(this.#footer, t) * 1000;
      return (n === 0 ? this.#initial : (this.#offsets[n - 1] ?? 0)) * 1000;
    }
    // The last transition at or before t.
    let lo = -1;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((transitions[mid] ?? 0) <= t) lo = mid;
      else hi = mid;
    }
    return (lo < 0 ? this.#initial : (this.#offsets[lo] ?? 0)) * 1000;
  }
}
