/**
 * KLAP over HTTP (POST /app/handshake1, /app/handshake2, /app/request?seq=N). The hash version (v1 or
 * v2) and the credential are not configured: the device's server proof in handshake1 is tested
 * offline against both versions and every candidate, and whichever matches is the device's. The
 * client proof (handshake2) is only sent after the server proved it knows the account, so a host
 * impersonating the plug never gets a proof it could brute-force.
 *
 * Sessions are reused across polls and renewed before the device's TIMEOUT; a 403 on a request means
 * the device dropped the session: one fresh handshake and one retry.
 */

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type Account, type Candidate, candidates } from './credentials.js';
import { SmartError } from './errors.js';
import { HttpEndpoint, type HttpResponse, sessionCookie } from './http.js';
import {
  authHash,
  clientProof,
  KlapSession,
  type KlapVersion,
  proofsEqual,
  serverProof,
} from './klap-crypto.js';
import {
  remaining,
  SerialLine,
  type SmartTransport,
  sessionLifetimeMs,
  type TransportMatch,
  type TransportStats,
} from './transport.js';

export interface KlapOptions {
  readonly host: string;
  readonly port: number;
  readonly account: Account | null;
  /** Which version to test first (both are always tested): 'iot' devices usually speak v1. */
  readonly prefer?: KlapVersion;
}

interface Live {
  session: KlapSession;
  cookie: string;
  expiresAt: number;
}

interface Known {
  candidate: Candidate;
  version: KlapVersion;
  auth: Buffer;
}

/** A 403 on /app/request: the device no longer knows the session. Internal: triggers one re-handshake. */
class SessionRejected extends Error {}

const HEADERS = { 'Content-Type': 'application/octet-stream' };

export class KlapTransport implements SmartTransport {
  readonly kind = 'klap' as const;
  readonly #http: HttpEndpoint;
  readonly #line = new SerialLine();
  readonly #candidates: { candidate: Candidate; version: KlapVersion; auth: Buffer }[];
  #live: Live | null = null;
  #known: Known | null = null;
  #handshakes = 0;
  #renewedAfterRejection = 0;
  #renewedBeforeExpiry = 0;
  #unsigned = 0;
  #requests = 0;

  constructor(options: KlapOptions) {
    this.#http = new HttpEndpoint(options.host, options.port);
    const versions: KlapVersion[] = options.prefer === 1 ? [1, 2] : [2, 1];
    this.#candidates = candidates(options.account).flatMap((candidate) =>
      versions.map((version) => ({
        candidate,
        version,
        auth: authHash(version, candidate.account.username, candidate.account.password),
      })),
    );
  }

  get handshakes(): number {
    return this.#handshakes;
  }

  matched(): TransportMatch | null {
    const known = this.#known;
    return known === null
      ? null
      : { transport: 'klap', version: known.version, credential: known.candidate.kind };
  }

  stats(): TransportStats {
    return {
      handshakes: this.#handshakes,
      renewedAfterRejection: this.#renewedAfterRejection,
      renewedBeforeExpiry: this.#renewedBeforeExpiry,
      unsignedAnswers: this.#unsigned,
      requests: this.#requests,
    };
  }

  send(request: string, timeoutMs: number): Promise<string> {
    return this.#line.run(timeoutMs, (deadline) => this.#send(request, deadline));
  }

  close(): void {
    this.#live = null;
    this.#http.close();
  }

  async #send(request: string, deadline: number): Promise<string> {
    let live = this.#live;
    if (live !== null && (performance.now() >= live.expiresAt || live.session.exhausted)) {
      this.#renewedBeforeExpiry++;
      live = null;
    }
    live ??= await this.#handshake(deadline);
    try {
      return await this.#request(live, request, deadline);
    } catch (err) {
      if (!(err instanceof SessionRejected)) throw err;
      // The device dropped the session (403): one fresh handshake, one retry.
      this.#renewedAfterRejection++;
      const fresh = await this.#handshake(deadline);
      try {
        return await this.#request(fresh, request, deadline);
      } catch (again) {
        if (again instanceof SessionRejected) {
          throw new SmartError('protocol', 'device rejected a fresh session (403 right after the handshake)');
        }
        throw again;
      }
    }
  }

  async #request(live: Live, request: string, deadline: number): Promise<string> {
    const { seq, body } = live.session.encrypt(request);
    this.#requests++;
    let res: HttpResponse;
    try {
      res = await this.#http.post(`/app/request?seq=${seq}`, body, {
        headers: { ...HEADERS, Cookie: live.cookie },
        deadlineMs: remaining(deadline),
      });
    } catch (err) {
      // The socket state is unknown: the next request starts with a new connection and session.
      this.#live = null;
      this.#http.close();
      throw err;
    }
    if (res.status === 403) {
      this.#live = null;
      throw new SessionRejected();
    }
    if (res.status !== 200) {
      throw new SmartError('protocol', `request answered HTTP ${res.status}`);
    }
    let decrypted: { plaintext: Buffer; signed: boolean };
    try {
      decrypted = live.session.decrypt(seq, res.body);
    } catch (err) {
      this.#live = null;
      throw new SmartError('protocol', `undecryptable answer (${res.body.length} bytes)`, { cause: err });
    }
    if (!decrypted.signed) this.#unsigned++;
    return decrypted.plaintext.toString('utf8');
  }

  async #handshake(deadline: number): Promise<Live> {
    this.#handshakes++;
    const localSeed = randomBytes(16);
    let res1: HttpResponse;
    try {
      res1 = await this.#http.post('/app/handshake1', localSeed, {
        headers: HEADERS,
        deadlineMs: remaining(deadline),
      });
    } catch (err) {
      this.#http.close();
      throw err;
    }
    if (res1.status === 403) {
      throw new SmartError(
        'third-party-compat',
        'device refused the KLAP handshake (403): enable Third-Party Compatibility in the Kasa/Tapo app',
      );
    }
    if (res1.status !== 200) throw new SmartError('protocol', `handshake1 answered HTTP ${res1.status}`);
    if (res1.body.length !== 48) {
      throw new SmartError('protocol', `handshake1 answer of ${res1.body.length} bytes (expected 48)`);
    }
    const { cookie, timeoutS } = sessionCookie(res1.headers);
    if (cookie === null) throw new SmartError('protocol', 'handshake1 answer without a session cookie');
    const remoteSeed = Buffer.from(res1.body.subarray(0, 16));
    const proof = res1.body.subarray(16, 48);
    const known = this.#known;
    const order = known === null ? this.#candidates : [known, ...this.#candidates.filter((c) => c !== known)];
    const match = order.find((c) =>
      proofsEqual(serverProof(c.version, localSeed, remoteSeed, c.auth), proof),
    );
    if (match === undefined) {
      throw new SmartError(
        'auth',
        'authentication failed: no credential matches the device (wrong TP-Link account?)',
      );
    }
    const res2 = await this.#http.post(
      '/app/handshake2',
      clientProof(match.version, localSeed, remoteSeed, match.auth),
      {
        headers: { ...HEADERS, Cookie: cookie },
        deadlineMs: remaining(deadline),
      },
    );
    if (res2.status !== 200) {
      throw new SmartError('auth', `authentication failed: handshake2 answered HTTP ${res2.status}`);
    }
    this.#known = match;
    const live: Live = {
      session: new KlapSession(localSeed, remoteSeed, match.auth),
      cookie,
      expiresAt: performance.now() + sessionLifetimeMs(timeoutS),
    };
    this.#live = live;
    return live;
  }
}
