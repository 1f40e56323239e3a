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
  readonly voltageMv: number;
  readonly currentMa: number;
  /** Cumulative energy counter since the plug's last reboot, in Wh. */
  readonly totalWh: number;
}
