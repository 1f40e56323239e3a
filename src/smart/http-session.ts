/**
 * What the two HTTP transports (KLAP, AES) share: one request at a time per device, a session reused
 * across polls and renewed before it expires, one fresh session and one retry when the device says
 * it dropped the session, and the statistics of all that. Each protocol supplies its handshake (or
 * login), its encrypted exchange and its notion of an expired session.
 */
import { SmartError } from './errors.js';
import { HttpEndpoint, type HttpResponse } from './http.js';
import {
  remaining,
  SerialLine,
  type SmartTransport,
  type TransportMatch,
  type TransportStats,
} from './transport.js';

/** Thrown by an exchange when the device no longer knows the session: triggers one fresh session. */
export class SessionRejected extends Error {}

type Counts = { -readonly [K in keyof TransportStats]: TransportStats[K] };

export abstract class HttpSessionTransport<Live> implements SmartTransport {
  abstract readonly kind: 'klap' | 'aes';
  protected readonly http: HttpEndpoint;
  /** The session in use; null until the first handshake and after the device or the network lost it. */
  protected live: Live | null = null;
  protected readonly counts: Counts = {
    handshakes: 0,
    renewedAfterRejection: 0,
    renewedBeforeExpiry: 0,
    unsignedAnswers: 0,
    requests: 0,
  };
  readonly #line = new SerialLine();
  /** The error when even a fresh session is rejected. */
  readonly #rejectedAgain: string;

  constructor(host: string, port: number, rejectedAgain: string) {
    this.http = new HttpEndpoint(host, port);
    this.#rejectedAgain = rejectedAgain;
  }

  get handshakes(): number {
    return this.counts.handshakes;
  }

  abstract matched(): TransportMatch | null;

  stats(): TransportStats {
    return { ...this.counts };
  }

  send(request: string, timeoutMs: number): Promise<string> {
    return this.#line.run(timeoutMs, (deadline) => this.#send(request, deadline));
  }

  close(): void {
    this.live = null;
    this.http.close();
  }

  /** True when `live` must be renewed before it is used again. */
  protected abstract expired(live: Live): boolean;

  /** A new session (handshake, login); sets `live` once it succeeds. */
  protected abstract openSession(deadline: number): Promise<Live>;

  /** One encrypted request and its decrypted answer; SessionRejected when the device dropped the session. */
  protected abstract exchange(live: Live, request: string, deadline: number): Promise<string>;

  /**
   * POST to the device by `deadline`. On a network failure the connection's state is unknown: it is
   * closed, and with `dropSession` the next request starts a new session too.
   */
  protected async post(
    path: string,
    body: Buffer,
    headers: Record<string, string>,
    deadline: number,
    dropSession: boolean,
  ): Promise<HttpResponse> {
    try {
      return await this.http.post(path, body, { headers, deadlineMs: remaining(deadline) });
    } catch (err) {
      if (dropSession) this.live = null;
      this.http.close();
      throw err;
    }
  }

  async #send(request: string, deadline: number): Promise<string> {
    let live = this.live;
    if (live !== null && this.expired(live)) {
      this.counts.renewedBeforeExpiry++;
      live = null;
    }
    live ??= await this.openSession(deadline);
    try {
      return await this.exchange(live, request, deadline);
    } catch (err) {
      if (!(err instanceof SessionRejected)) throw err;
      this.counts.renewedAfterRejection++;
      const fresh = await this.openSession(deadline);
      try {
        return await this.exchange(fresh, request, deadline);
      } catch (again) {
        if (again instanceof SessionRejected) throw new SmartError('protocol', this.#rejectedAgain);
        throw again;
      }
    }
  }
}
