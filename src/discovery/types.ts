import type { CanonicalValues } from '../poller/normalise.js';

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

/**
 * Who answered a request, as the device itself said in that same answer. Every transport returns it
 * with each energy answer, so a reading is filed under the device that produced it, never under
 * whoever the registry believed to be at the address (DHCP hands addresses to other plugs).
 */
export interface Responder {
  /** The deviceId the answering device reported. */
  readonly deviceId: string;
  /** Full ids of its outlets (a strip); empty for a single plug. */
  readonly childIds: readonly string[];
}

/** Why a request produced no usable answer: no answer at all, or an answer that is not one. */
export type AnswerFailure = 'timeout' | 'refused' | 'network' | 'malformed';

/**
 * One energy request's outcome, whatever the transport: the parsed reply (holding
 * `emeter.get_realtime`, for src/poller/normalise.ts) with who sent it, or why there is none.
 * `identity` is the transport's own description of the responder for the registry to learn it
 * at this address (the legacy transport's sysinfo).
 */
export type EnergyAnswer<Identity = unknown> =
  | {
      readonly ok: true;
      readonly reply: unknown;
      /** Null only when the request did not ask who answers (a transport option, e.g. `identify: false`). */
      readonly responder: Responder | null;
      readonly identity: Identity | null;
      /**
       * Values already in canonical units (the newer plugs' smart protocol): checked by
       * canonicalReading instead of normalising `reply` as a legacy get_realtime answer.
       */
      readonly canonical?: CanonicalValues;
    }
  | { readonly ok: false; readonly failure: AnswerFailure; readonly detail: string };
