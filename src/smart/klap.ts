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
import { sessionCookie } from './http.js';
import { HttpSessionTransport, SessionRejected } from './http-session.js';
import {
  authHash,
  clientProof,
  KlapSession,
  type KlapVersion,
  proofsEqual,
  serverProof,
} from './klap-crypto.js';
import { remaining, sessionLifetimeMs, type TransportMatch } from './transport.js';

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

const HEADERS = { 'Content-Type': 'application/octet-stream' };

export class KlapTransport extends HttpSessionTransport<Live> {
  readonly kind = 'klap' as const;
  readonly #candidates: { candidate: Candidate; version: KlapVersion; auth: Buffer }[];
  #known: Known | null = null;

  constructor(options: KlapOptions) {
    super(options.host, options.port, 'device rejected a fresh session (403 right after the handshake)');
    const versions: KlapVersion[] = options.prefer === 1 ? [1, 2] : [2, 1];
    this.#candidates = candidates(options.account).flatMap((candidate) =>
      versions.map((version) => ({
        candidate,
        version,
        auth: authHash(version, candidate.account.username, candidate.account.password),
      })),
    );
  }

  matched(): TransportMatch | null {
    const known = this.#known;
    return known === null
      ? null
      : { transport: 'klap', version: known.version, credential: known.candidate.kind };
  }

  protected expired(live: Live): boolean {
    return performance.now() >= live.expiresAt || live.session.exhausted;
  }

  protected openSession(deadline: number): Promise<Live> {
    return this.#handshake(deadline);
  }

  /** One request on the session; a 403 means the device no longer knows it (SessionRejected). */
  protected async exchange(live: Live, request: string, deadline: number): Promise<string> {
    const { seq, body } = live.session.encrypt(request);
    this.counts.requests++;
    const res = await this.post(
      `/app/request?seq=${seq}`,
      body,
      { ...HEADERS, Cookie: live.cookie },
      deadline,
      true,
    );
    if (res.status === 403) {
      this.live = null;
      throw new SessionRejected();
    }
    if (res.status !== 200) {
      throw new SmartError('protocol', `request answered HTTP ${res.status}`);
    }
    let decrypted: { plaintext: Buffer; signed: boolean };
    try {
      decrypted = live.session.decrypt(seq, res.body);
    } catch (err) {
      this.live = null;
      throw new SmartError('protocol', `undecryptable answer (${res.body.length} bytes)`, { cause: err });
    }
    if (!decrypted.signed) this.counts.unsignedAnswers++;
    return decrypted.plaintext.toString('utf8');
  }

  async #handshake(deadline: number): Promise<Live> {
    this.counts.handshakes++;
    const localSeed = randomBytes(16);
    const res1 = await this.post('/app/handshake1', localSeed, HEADERS, deadline, false);
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
    const res2 = await this.http.post(
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
    this.live = live;
    return live;
  }
}
