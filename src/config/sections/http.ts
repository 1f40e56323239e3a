/** http: the HTTP endpoint and its basic authentication. */
import * as z from 'zod';
import { type HostPort, parseAddress } from '../address.js';
import {
  type CrossCheck,
  duration,
  key,
  nullWhenUnset,
  optionalPath,
  optionalText,
  RESTART,
  whenParsed,
} from './building-blocks.js';

/** Loopback addresses: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return (
    h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
  );
}

function openListenProblem(
  listen: { readonly host: string },
  username: string | null,
  allowUnauthenticated: boolean,
): string | undefined {
  if (isLoopbackHost(listen.host) || username !== null || allowUnauthenticated) return undefined;
  return `listens on ${listen.host}, which is not loopback: set http.auth (username and password_file) to require a password, or http.allow_unauthenticated: true to serve the dashboard and API to the network without auth`;
}

const listenAddress = z.string().transform((text, ctx): HostPort => {
  const parsed = parseAddress(text, { portRequired: true, minPort: 0 });
  if (!parsed.ok || parsed.port === null) {
    ctx.issues.push({
      code: 'custom',
      input: text,
      message: parsed.ok ? 'the port is missing' : parsed.message,
    });
    return z.NEVER;
  }
  return { host: parsed.host, port: parsed.port };
});

export const httpCrossChecks: readonly CrossCheck[] = [
  {
    path: 'http.listen',
    keys: ['http.listen', 'http.auth.username', 'http.allow_unauthenticated'],
    problem: ([listen, username, allow]) =>
      openListenProblem(listen as { host: string }, username as string | null, allow as boolean),
  },
];

function httpAuthSection() {
  return z
    .strictObject({
      username: key(
        z.string().min(1).nullable().optional().transform(nullWhenUnset),
        'User name of HTTP basic authentication for the dashboard and API. Unset: no authentication.',
        RESTART,
      ),
      password: key(
        optionalText(),
        'The password (secret). Prefer `password_file` or the systemd credential `http-password`.',
        { reload: 'restart', secret: true },
      ),
      password_file: key(
        optionalPath(),
        'A file holding the password, read at start (a trailing line break is not part of it; spaces are).',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'HTTP basic authentication (use it behind TLS, e.g. a reverse proxy).' });
}

export function httpSection() {
  return z
    .strictObject({
      listen: key(
        listenAddress.prefault('127.0.0.1:9469'),
        "Address of the dashboard, /health, /metrics and /api: 'host:port' ('[::1]:9469' for IPv6; port 0 picks a free one). An address other than loopback needs `auth` or `allow_unauthenticated: true`.",
        RESTART,
      ),
      auth: httpAuthSection(),
      allow_unauthenticated: key(
        z.boolean().prefault(false),
        'Serve a non-loopback `listen` address without authentication (anyone on the network sees the dashboard and API).',
        RESTART,
      ),
      public_metrics: key(
        z.boolean().prefault(false),
        'Serve /metrics and /health without authentication even when `auth` is set (for Prometheus).',
        RESTART,
      ),
      write_timeout: key(
        duration('30s'),
        'How long a response waits for a client that takes no more bytes before it is cut (a stalled /api/readings export frees its reader connection).',
        RESTART,
      ),
    })
    .superRefine(
      (section, ctx) => {
        const message = openListenProblem(
          section.listen,
          section.auth.username,
          section.allow_unauthenticated,
        );
        if (message) ctx.addIssue({ code: 'custom', path: ['listen'], message });
      },
      whenParsed('listen', 'auth', 'allow_unauthenticated'),
    )
    .prefault({})
    .meta({ description: 'The HTTP endpoint.' });
}
