/**
 * Minimal HTTP POST for the smart transports, on node:http: one keep-alive agent per device with one
 * socket (one request in flight per device), a hard deadline on the whole exchange, and a bounded
 * response body (devices are untrusted). Cookies are handled by the caller.
 */
import { Agent, request } from 'node:http';
import { SmartError } from './errors.js';

export const MAX_BODY_BYTES = 256 * 1024;

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export interface PostOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** The whole exchange (connect, send, receive) ends by then. */
  readonly deadlineMs: number;
}

/** A device's HTTP endpoint: host, port and its own agent (so a device never has two sockets). */
export class HttpEndpoint {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, keepAliveMsecs: 1000 });

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  post(path: string, body: Buffer, options: PostOptions): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const req = request({
        host: this.host,
        port: this.port,
        path,
        method: 'POST',
        agent: this.#agent,
        headers: { ...options.headers, 'Content-Length': String(body.length) },
      });
      const timer = setTimeout(
        () => {
          settle(() =>
            reject(
              new SmartError(
                'timeout',
                `no answer from ${this.host}:${this.port} within ${options.deadlineMs} ms`,
              ),
            ),
          );
          req.destroy();
        },
        Math.max(1, options.deadlineMs),
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code === 'ECONNREFUSED' ? 'refused' : 'network';
        settle(() =>
          reject(
            new SmartError(code, `${this.host}:${this.port}: ${err.code ?? err.message}`, { cause: err }),
          ),
        );
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            settle(() =>
              reject(
                new SmartError('protocol', `answer from ${this.host} larger than ${MAX_BODY_BYTES} bytes`),
              ),
            );
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          settle(() =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          ),
        );
        res.on('error', (err) =>
          settle(() =>
            reject(new SmartError('network', `${this.host}:${this.port}: ${err.message}`, { cause: err })),
          ),
        );
      });
      req.end(body);
    });
  }

  /** Closes the device's sockets (a later request opens a new one). */
  close(): void {
    this.#agent.destroy();
  }
}

/** The session cookie (`TP_SESSIONID` or `SESSIONID`) and its `TIMEOUT` (seconds) from Set-Cookie. */
export function sessionCookie(headers: HttpResponse['headers']): {
  cookie: string | null;
  timeoutS: number | null;
} {
  const raw = headers['set-cookie'];
  const lines = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  let cookie: string | null = null;
  let timeoutS: number | null = null;
  for (const line of lines) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim();
      const value = part.slice(eq + 1).trim();
      if ((name === 'TP_SESSIONID' || name === 'SESSIONID') && /^[\w.-]{1,256}$/.test(value))
        cookie = `${name}=${value}`;
      if (name === 'TIMEOUT' && /^\d{1,9}$/.test(value)) timeoutS = Number(value);
    }
  }
  return { cookie, timeoutS };
}
