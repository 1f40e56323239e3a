import type { CredentialKind } from './credentials.js';
import { SmartError } from './errors.js';

/** What authenticated at the last handshake. */
export interface TransportMatch {
  readonly transport: 'klap' | 'aes';
  /** KLAP hash version, or AES login version. */
  readonly version: number;
  readonly credential: CredentialKind;
}

export interface TransportStats {
  readonly handshakes: number;
  /** Sessions the device dropped (403 or session error) that a fresh handshake replaced. */
  readonly renewedAfterRejection: number;
  /** Sessions renewed before the device's timeout. */
  readonly renewedBeforeExpiry: number;
  /** KLAP answers whose signature did not match (counted, not rejected: unverified on hardware). */
  readonly unsignedAnswers: number;
  readonly requests: number;
}

/**
 * An encrypted channel to one device. `send` takes one JSON request and resolves with the device's
 * decrypted JSON text; it rejects with a SmartError. Calls are serialised: one request in flight per
 * device. Each call ends by its deadline, handshake included.
 */
export interface SmartTransport {
  readonly kind: 'klap' | 'aes';
  send(request: string, timeoutMs: number): Promise<string>;
  /** Handshakes so far (cheap: read on every poll to notice a new session). */
  readonly handshakes: number;
  matched(): TransportMatch | null;
  stats(): TransportStats;
  close(): void;
}

/** Runs tasks one at a time, each with a deadline that includes its wait in line. */
export class SerialLine {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(timeoutMs: number, task: (deadline: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    const result = this.#tail.then(() => {
      if (Date.now() >= deadline)
        throw new SmartError('timeout', `waited ${timeoutMs} ms for the device's previous request`);
      return task(deadline);
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** Milliseconds left until `deadline` (at least 1, so a request still fails by timeout, not by error). */
export function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

/** How long a session is used: the device's TIMEOUT minus a margin (its clock is not reliable). */
export function sessionLifetimeMs(timeoutS: number | null): number {
  const ms = (timeoutS ?? 86_400) * 1000;
  return Math.max(ms / 2, ms - 1_200_000);
}
