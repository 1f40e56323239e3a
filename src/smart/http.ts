/**
 * Minimal HTTP/1.1 POST for the smart transports, on node:net: one kept-alive connection per device
 * (so one request in flight per device), a hard deadline on the whole exchange, and bounded heads and
 * bodies (devices are untrusted). node:http's client costs about as much CPU per request as the
 * whole rest of a KLAP poll; the plugs' replies need only status, a few headers and a body with
 * Content-Length (chunked and read-to-close bodies are understood too). Cookies are the caller's.
 */
import { connect, type Socket } from 'node:net';
import { SmartError } from './errors.js';

export const MAX_BODY_BYTES = 256 * 1024;
const MAX_HEAD_BYTES = 16 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');

export interface HttpResponse {
  readonly status: number;
  /** Header names in lower case; `set-cookie` is always a list. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export interface PostOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** The whole exchange (connect, send, receive) ends by then. */
  readonly deadlineMs: number;
}

interface Head {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly bodyStart: number;
  readonly keepAlive: boolean;
  readonly length: number | null;
  readonly chunked: boolean;
}

function parseHead(buffer: Buffer, end: number): Head | null {
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const match = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? '');
  if (match === null) return null;
  const headers: Record<string, string | string[]> = {};
  const cookies: string[] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'set-cookie') cookies.push(value);
    else headers[name] = value;
  }
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  const connection = String(headers['connection'] ?? '').toLowerCase();
  const keepAlive = match[1] === '1' ? connection !== 'close' : connection === 'keep-alive';
  const lengthText = headers['content-length'];
  const length = typeof lengthText === 'string' && /^\d{1,9}$/.test(lengthText) ? Number(lengthText) : null;
  const chunked = String(headers['transfer-encoding'] ?? '')
    .toLowerCase()
    .includes('chunked');
  return { status: Number(match[2]), headers, bodyStart: end + 4, keepAlive, length, chunked };
}

/** Decodes a complete chunked body; null while incomplete; throws on a malformed one. */
function dechunk(data: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1').split(';')[0] ?? '', 16);
    if (!Number.isInteger(size) || size < 0) throw new Error('bad chunk size');
    if (size === 0) return data.length >= eol + 4 ? Buffer.concat(parts) : null;
    if (data.length < eol + 2 + size + 2) return null;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** A device's HTTP endpoint: host, port and its one connection. Calls must not overlap. */
export class HttpEndpoint {
  #socket: Socket | null = null;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  async post(path: string, body: Buffer, options: PostOptions): Promise<HttpResponse> {
    const deadline = Date.now() + options.deadlineMs;
    const reused = this.#socket !== null;
    try {
      return await this.#exchange(path, body, options, deadline);
    } catch (err) {
      // A kept-alive connection the device closed meanwhile fails before any byte of an answer:
      // once, on a fresh connection.
      if (reused && err instanceof StaleConnection && Date.now() < deadline) {
        return this.#exchange(path, body, options, deadline);
      }
      if (err instanceof StaleConnection)
        throw new SmartError('network', `${this.host}:${this.port}: connection closed`);
      throw err;
    }
  }

  /** Closes the connection (the next request opens a new one). */
  close(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  #exchange(path: string, body: Buffer, options: PostOptions, deadline: number): Promise<HttpResponse> {
    const where = `${this.host}:${this.port}`;
    let head = `POST ${path} HTTP/1.1\r\nHost: ${where}\r\nContent-Length: ${body.length}\r\n`;
    for (const [name, value] of Object.entries(options.headers ?? {})) head += `${name}: ${value}\r\n`;
    const request = Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]);

    let socket = this.#socket;
    const fresh = socket === null || socket.destroyed;
    if (fresh) {
      socket = connect({ host: this.host, port: this.port, noDelay: true });
      this.#socket = socket;
    }
    const sock = socket as Socket;
    return new Promise<HttpResponse>((resolve, reject) => {
      let received: Buffer = Buffer.alloc(0);
      let parsed: Head | null = null;
      let settled = false;
      const finish = (outcome: () => void, keep: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.off('data', onData);
        sock.off('error', onError);
        sock.off('close', onClose);
        sock.off('connect', onConnect);
        if (!keep) {
          sock.destroy();
          if (this.#socket === sock) this.#socket = null;
        }
        outcome();
      };
      const fail = (err: Error): void => finish(() => reject(err), false);
      const timer = setTimeout(
        () => fail(new SmartError('timeout', `no answer from ${where} within ${options.deadlineMs} ms`)),
        Math.max(1, deadline - Date.now()),
      );
      const tryComplete = (closed: boolean): void => {
        if (parsed === null) {
          const end = received.indexOf(CRLFCRLF);
          if (end < 0) {
            if (received.length > MAX_HEAD_BYTES)
              fail(new SmartError('protocol', `${where}: answer head too large`));
            else if (closed)
              fail(
                received.length === 0
                  ? new StaleConnection()
                  : new SmartError('protocol', `${where}: answer cut short`),
              );
            return;
          }
          parsed = parseHead(received, end);
          if (parsed === null) {
            fail(new SmartError('protocol', `${where}: not an HTTP answer`));
            return;
          }
        }
        const data = received.subarray(parsed.bodyStart);
        if (data.length > MAX_BODY_BYTES + 64 * 1024) {
          fail(new SmartError('protocol', `answer from ${where} larger than ${MAX_BODY_BYTES} bytes`));
          return;
        }
        let bodyOut: Buffer | null = null;
        let extra = false;
        if (parsed.chunked) {
          try {
            bodyOut = dechunk(data);
          } catch {
            fail(new SmartError('protocol', `${where}: malformed chunked answer`));
            return;
          }
        } else if (parsed.length !== null) {
          if (data.length >= parsed.length) {
            bodyOut = data.subarray(0, parsed.length);
            extra = data.length > parsed.length;
          }
        } else if (closed) {
          bodyOut = data;
        }
        if (bodyOut === null) {
          if (closed) fail(new SmartError('protocol', `${where}: answer cut short`));
          return;
        }
        if (bodyOut.length > MAX_BODY_BYTES) {
          fail(new SmartError('protocol', `answer from ${where} larger than ${MAX_BODY_BYTES} bytes`));
          return;
        }
        const response: HttpResponse = {
          status: parsed.status,
          headers: parsed.headers,
          body: Buffer.from(bodyOut),
        };
        const keep = parsed.keepAlive && !extra && !closed && (parsed.length !== null || parsed.chunked);
        finish(() => resolve(response), keep);
      };
      const onData = (chunk: Buffer): void => {
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        tryComplete(false);
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        if (received.length === 0 && !fresh && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          fail(new StaleConnection());
          return;
        }
        const code = err.code === 'ECONNREFUSED' ? 'refused' : 'network';
        fail(new SmartError(code, `${where}: ${err.code ?? err.message}`, { cause: err }));
      };
      const onClose = (): void => tryComplete(true);
      const onConnect = (): void => {
        sock.write(request);
      };
      sock.on('data', onData);
      sock.once('error', onError);
      sock.once('close', onClose);
      if (fresh && sock.connecting) sock.once('connect', onConnect);
      else sock.write(request);
    });
  }
}

/** Internal: a reused connection closed before answering. */
class StaleConnection extends Error {}

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
