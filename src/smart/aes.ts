/**
 * AES "securePassthrough" over HTTP (POST /app). Handshake: our fresh RSA public key in, the session
 * key (RSA PKCS#1 v1.5) and a cookie out. Then `login_device` inside the passthrough gives a token
 * for every later call (`/app?token=T`). Only used for devices whose discovery reply said AES: the
 * login sends a password equivalent to whoever answers.
 */

import { AesSession, decryptSessionKey, loginParams, newHandshakeKey } from './aes-crypto.js';
import { type Account, type Candidate, DEFAULT_TAPO } from './credentials.js';
import { SmartError } from './errors.js';
import { type HttpResponse, sessionCookie } from './http.js';
import { HttpSessionTransport, SessionRejected } from './http-session.js';
import { sessionLifetimeMs, type TransportMatch } from './transport.js';

export interface AesOptions {
  readonly host: string;
  readonly port: number;
  readonly account: Account | null;
  /** From the discovery reply's `lv`: 2 → `password2`, else `password`. */
  readonly loginVersion: number;
}

/** Device error codes that mean "not logged in / session gone". */
export const AES_AUTH_ERRORS: ReadonlySet<number> = new Set([-1501, 1111, -1005, 1100, 1003, -40412]);
const SESSION_TIMEOUT = 9999;

interface Live {
  session: AesSession;
  cookie: string;
  token: string;
  expiresAt: number;
}

const HEADERS = { 'Content-Type': 'application/json', requestByApp: 'true', Accept: 'application/json' };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(res: HttpResponse, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new SmartError('protocol', `${what}: answer is not JSON (${res.body.length} bytes)`);
  }
  if (!isRecord(json)) throw new SmartError('protocol', `${what}: answer is not an object`);
  return json;
}

export class AesTransport extends HttpSessionTransport<Live> {
  readonly kind = 'aes' as const;
  readonly #options: AesOptions;
  readonly #candidates: Candidate[];
  #known: Candidate | null = null;

  constructor(options: AesOptions) {
    super(options.host, options.port, 'device rejected a fresh session');
    this.#options = options;
    this.#candidates = [];
    if (options.account !== null) this.#candidates.push({ kind: 'account', account: options.account });
    this.#candidates.push({ kind: 'default-tapo', account: DEFAULT_TAPO });
  }

  matched(): TransportMatch | null {
    const known = this.#known;
    return known === null
      ? null
      : { transport: 'aes', version: this.#options.loginVersion, credential: known.kind };
  }

  protected expired(live: Live): boolean {
    return Date.now() >= live.expiresAt;
  }

  protected openSession(deadline: number): Promise<Live> {
    return this.#login(deadline);
  }

  /** The device says our session or token is gone: SessionRejected. */
  protected exchange(live: Live, request: string, deadline: number): Promise<string> {
    return this.#passthrough(live, request, deadline);
  }

  /** One encrypted call. Resolves with the inner JSON text (whatever its error_code). */
  async #passthrough(live: Live, request: string, deadline: number): Promise<string> {
    const body = Buffer.from(
      JSON.stringify({ method: 'securePassthrough', params: { request: live.session.encrypt(request) } }),
      'utf8',
    );
    this.counts.requests++;
    const res = await this.post(
      live.token === '' ? '/app' : `/app?token=${encodeURIComponent(live.token)}`,
      body,
      { ...HEADERS, Cookie: live.cookie },
      deadline,
      true,
    );
    if (res.status === 403) {
      this.live = null;
      throw new SessionRejected();
    }
    if (res.status !== 200) throw new SmartError('protocol', `securePassthrough answered HTTP ${res.status}`);
    const outer = parseJson(res, 'securePassthrough');
    const code = outer['error_code'];
    if (code !== 0) {
      if (typeof code === 'number' && (AES_AUTH_ERRORS.has(code) || code === SESSION_TIMEOUT)) {
        this.live = null;
        throw new SessionRejected();
      }
      throw new SmartError('device-error', `securePassthrough error_code ${String(code)}`, {
        deviceCode: typeof code === 'number' ? code : -1,
      });
    }
    const result = outer['result'];
    const response = isRecord(result) ? result['response'] : undefined;
    if (typeof response !== 'string')
      throw new SmartError('protocol', 'securePassthrough answer without response');
    let inner: string;
    try {
      inner = live.session.decrypt(response);
    } catch (err) {
      this.live = null;
      throw new SmartError('protocol', 'undecryptable securePassthrough answer', { cause: err });
    }
    // A session the device forgot shows up as an inner auth error on an otherwise good answer.
    const innerCode = /"error_code"\s*:\s*(-?\d+)/.exec(inner.slice(0, 64))?.[1];
    if (innerCode !== undefined && AES_AUTH_ERRORS.has(Number(innerCode)) && live.token !== '') {
      this.live = null;
      throw new SessionRejected();
    }
    return inner;
  }

  async #handshake(deadline: number): Promise<Omit<Live, 'token'>> {
    this.counts.handshakes++;
    const key = await newHandshakeKey();
    const body = Buffer.from(JSON.stringify({ method: 'handshake', params: { key: key.publicPem } }), 'utf8');
    const res = await this.post('/app', body, HEADERS, deadline, false);
    if (res.status === 403) {
      throw new SmartError(
        'third-party-compat',
        'device refused the AES handshake (403): enable Third-Party Compatibility in the Kasa/Tapo app',
      );
    }
    if (res.status !== 200) throw new SmartError('protocol', `AES handshake answered HTTP ${res.status}`);
    const json = parseJson(res, 'AES handshake');
    if (json['error_code'] !== 0) {
      throw new SmartError('device-error', `AES handshake error_code ${String(json['error_code'])}`, {
        deviceCode: typeof json['error_code'] === 'number' ? json['error_code'] : -1,
      });
    }
    const result = json['result'];
    const encrypted = isRecord(result) ? result['key'] : undefined;
    if (typeof encrypted !== 'string' || encrypted.length > 1024) {
      throw new SmartError('protocol', 'AES handshake answer without a key');
    }
    const sessionKey = decryptSessionKey(key.privateKey, encrypted);
    if (sessionKey === null)
      throw new SmartError('protocol', 'AES handshake key does not decrypt to 32 bytes');
    const { cookie, timeoutS } = sessionCookie(res.headers);
    if (cookie === null) throw new SmartError('protocol', 'AES handshake answer without a session cookie');
    return {
      session: new AesSession(sessionKey.key, sessionKey.iv),
      cookie,
      expiresAt: Date.now() + sessionLifetimeMs(timeoutS),
    };
  }

  /** Handshake and login, trying the account first, then the built-in pair; each try is a fresh handshake. */
  async #login(deadline: number): Promise<Live> {
    const known = this.#known;
    const order = known === null ? this.#candidates : [known, ...this.#candidates.filter((c) => c !== known)];
    for (const candidate of order) {
      const base = await this.#handshake(deadline);
      const live: Live = { ...base, token: '' };
      const request = JSON.stringify({
        method: 'login_device',
        params: loginParams(
          this.#options.loginVersion,
          candidate.account.username,
          candidate.account.password,
        ),
        request_time_milis: Date.now(),
      });
      let text: string;
      try {
        text = await this.#passthrough(live, request, deadline);
      } catch (err) {
        if (err instanceof SessionRejected) continue;
        throw err;
      }
      let answer: unknown;
      try {
        answer = JSON.parse(text);
      } catch {
        throw new SmartError('protocol', 'login answer is not JSON');
      }
      const code = isRecord(answer) ? answer['error_code'] : undefined;
      if (typeof code === 'number' && AES_AUTH_ERRORS.has(code)) continue;
      const token = isRecord(answer) && isRecord(answer['result']) ? answer['result']['token'] : undefined;
      if (code !== 0 || typeof token !== 'string' || token.length === 0 || token.length > 256) {
        throw new SmartError('protocol', `login answered error_code ${String(code)} without a token`);
      }
      live.token = token;
      this.#known = candidate;
      this.live = live;
      return live;
    }
    this.live = null;
    throw new SmartError(
      'auth',
      'authentication failed: the device refused every credential (wrong TP-Link account?)',
    );
  }
}
