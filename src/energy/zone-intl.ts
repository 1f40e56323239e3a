/**
 * Offsets from Intl, for a zone Intl knows but this machine has no zoneinfo file for (a container
 * image without the tzdata package). Touching Intl with a time zone maps ICU's zone data into the
 * process (+8 MiB RSS that stays resident), so this is the fallback, never the first choice.
 */
import type { ZoneOffsets } from './zone-offsets.js';

/** True when Intl accepts `zone` as a time zone. */
export function intlKnowsZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export class IntlOffsets implements ZoneOffsets {
  readonly #format: Intl.DateTimeFormat;

  constructor(zone: string) {
    this.#format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  offsetMs(ms: number): number {
    const f = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
    for (const part of this.#format.formatToParts(ms)) {
      if (part.type in f) f[part.type as keyof typeof f] = Number(part.value);
    }
    const local = Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second);
    return local - (ms - (((ms % 1000) + 1000) % 1000));
  }
}
