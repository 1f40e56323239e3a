/**
 * HTTP basic authentication for the dashboard and API when `http.auth` is set. The password is
 * compared in constant time (on SHA-256 digests, so lengths do not leak either).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface HttpAuth {
  readonly username: string;
  readonly password: string;
  /** Paths served without a password (/health and /metrics when `http.public_metrics` is set). */
  readonly publicPaths: readonly string[];
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The WWW-Authenticate challenge of a 401 answer. */
export const AUTH_CHALLENGE = 'Basic realm="kasa-monitor", charset="UTF-8"';

/** Whether the request may see `pathname`. */
export function authorised(auth: HttpAuth | null, req: IncomingMessage, pathname: string): boolean {
  if (auth === null || auth.publicPaths.includes(pathname)) return true;
  const header = req.headers.authorization ?? '';
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match === null) return false;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const userOk = timingSafeEqual(digest(decoded.slice(0, colon)), digest(auth.username));
  const passOk = timingSafeEqual(digest(decoded.slice(colon + 1)), digest(auth.password));
  return userOk && passOk;
}
