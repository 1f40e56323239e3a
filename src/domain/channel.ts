/**
 * What the rest of the daemon knows about a meter channel: the unit that is polled and stored.
 * A single plug has one channel (its deviceId); a strip (HS300) has one per outlet (child id).
 */
export interface ChannelInfo {
  /** deviceId, or the full child id for a strip outlet. */
  readonly id: string;
  readonly alias: string;
  readonly model: string;
  /** The strip's deviceId for an outlet; null for a single plug. */
  readonly parentId: string | null;
  /** The strip's own alias for an outlet (so `--device "Desk strip"` finds its outlets); null for a plug. */
  readonly parentAlias: string | null;
}
