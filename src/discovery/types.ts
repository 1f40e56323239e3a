import type { CanonicalValues } from '../poller/normalise.js';

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
