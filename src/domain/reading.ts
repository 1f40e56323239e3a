/**
 * One poll of one meter channel, in integer canonical units whatever the firmware answered.
 *
 * `channel` is the channel's stable identity: the plug's deviceId, or for a power-strip outlet its
 * full child id (the strip's deviceId followed by the two-digit outlet index, as `children[].id`).
 * Addresses change with DHCP; this id does not, so history follows it.
 */
export interface Reading {
  readonly channel: string;
  /** Poll time, UTC milliseconds since the epoch (taken when the request was sent). */
  readonly tsMs: number;
  readonly powerMw: number;
  /**
   * Null when the plug does not measure it (many newer plugs report power and energy only): never 0,
   * which would read as a brown-out. Legacy plugs always have both.
   */
  readonly voltageMv: number | null;
  readonly currentMa: number | null;
  /**
   * The plug's own energy counter, in Wh: since the last reboot on legacy plugs; a counter that can
   * also restart at other times on newer ones. Energy accounting treats any drop as a restart.
   */
  readonly totalWh: number;
}

/** Thousandths (mV, mA, mW) in the base unit (V, A, W); an unmeasured value stays null, never 0. */
export function milliToUnit(milli: number | null): number | null {
  return milli === null ? null : milli / 1000;
}
