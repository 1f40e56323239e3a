/**
 * Error classification: what a failure means for the policies. Every error thrown under a policy
 * declares what a retry can do (`failureKind`: transient, after-recovery or permanent, with its
 * `code` and the peer's `retryAfterMs`), decided by the sink or caller that made it (SQLite, the
 * InfluxDB client, the alert webhook, file operations); this module reads that declaration and never
 * overrides it, so the policies know no sink and never parse a message. Only the policies' own
 * errors (an open circuit, a timeout) and foreign errors that declare nothing are classified here.
 */
import type { RequestFailure } from '../domain/request-failure.js';
import { cockatiel } from './cockatiel.js';

const { BrokenCircuitError, TaskCancelledError } = cockatiel;

/**
 * - `transient`: the same call may succeed soon; retry with backoff (busy database, I/O hiccup,
 *   HTTP 429/5xx, refused connection, timeout).
 * - `after-recovery`: the same call fails until something outside is repaired (a full disk): no
 *   quick retries, but the breaker opens and a later trial call finds out when it is fixed.
 * - `permanent`: retrying cannot help (corrupt database, HTTP 400/401/404, a bug).
 * - `open-circuit`: a breaker refused the call without trying; never retried by a retry policy.
 */
export type FailureKind = 'transient' | 'after-recovery' | 'permanent' | 'open-circuit';

export interface FailureClass {
  readonly kind: FailureKind;
  /** SQLite's extended code, `HTTP_503`, `ECONNREFUSED`, `KASA_TIMEOUT`, `KASA_OPEN_CIRCUIT`, ... */
  readonly code: string;
  /** A retry policy tries again (after its backoff). */
  readonly retry: boolean;
  /** Counts as a failure towards opening a circuit breaker. */
  readonly breaker: boolean;
  /** The peer's Retry-After, in ms, when it sent one. */
  readonly retryAfterMs: number | null;
}

/**
 * cockatiel 3.2's own isTaskCancelledError / isIsolatedCircuitError test for the bulkhead's marker
 * (a bug): they answer false for a timeout. These check the class, or its marker property.
 */
function hasMarker(error: unknown, marker: string): boolean {
  return typeof error === 'object' && error !== null && (error as Record<string, unknown>)[marker] === true;
}

/** A breaker refused the call (open, or held open): BrokenCircuitError or its subclass IsolatedCircuitError. */
export function isOpenCircuitError(error: unknown): boolean {
  return error instanceof BrokenCircuitError || hasMarker(error, 'isBrokenCircuitError');
}

/** A cockatiel timeout (or cancellation) ended the attempt. */
export function isTimeoutError(error: unknown): boolean {
  return error instanceof TaskCancelledError || hasMarker(error, 'isTaskCancelledError');
}

/** Codes of Node's network errors after which a new connection may work. */
const TRANSIENT_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** HTTP statuses after which the same request may succeed later: 408, 429 and every 5xx. */
export function isTransientHttpStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/** The longest Retry-After honoured; a larger value is treated as this (a misconfigured proxy). */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * `Retry-After` as HTTP defines it: delay-seconds or an HTTP-date. Returns milliseconds (capped at
 * MAX_RETRY_AFTER_MS), or null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(MAX_RETRY_AFTER_MS, Math.round(Number(text) * 1000));
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - nowMs));
}

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function verdict(kind: FailureKind, code: string, retryAfterMs: number | null = null): FailureClass {
  return {
    kind,
    code,
    retry: kind === 'transient',
    breaker: kind === 'transient' || kind === 'after-recovery',
    retryAfterMs,
  };
}

const CARRIED_KINDS: ReadonlySet<unknown> = new Set(['transient', 'after-recovery', 'permanent']);

/** `failureKind` and `code` of an error that says itself what a retry can do, else null. */
function carriedKind(
  error: unknown,
): { kind: Exclude<FailureKind, 'open-circuit'>; code: string; retryAfterMs: number | null } | null {
  if (typeof error !== 'object' || error === null) return null;
  const { failureKind, code, retryAfterMs } = error as Record<string, unknown>;
  if (!CARRIED_KINDS.has(failureKind) || typeof code !== 'string') return null;
  return {
    kind: failureKind as Exclude<FailureKind, 'open-circuit'>,
    code,
    retryAfterMs: typeof retryAfterMs === 'number' ? retryAfterMs : null,
  };
}

/** Classifies anything thrown by a guarded call. Unknown errors are permanent: a bug is not retried. */
export function classifyError(error: unknown): FailureClass {
  if (isOpenCircuitError(error)) return verdict('open-circuit', 'KASA_OPEN_CIRCUIT');
  if (isTimeoutError(error)) return verdict('transient', 'KASA_TIMEOUT');
  // An error that carries its own kind (every sink's StorageError): read, never overridden here.
  const carried = carriedKind(error);
  if (carried !== null) {
    if (carried.kind === 'after-recovery') return verdict('after-recovery', carried.code);
    return verdict(carried.kind, carried.code, carried.retryAfterMs);
  }
  // Foreign errors that declare no kind: a network failure of Node's may pass on a new connection.
  const code = codeOf(error);
  if (code !== undefined && TRANSIENT_NET_CODES.has(code)) return verdict('transient', code);
  // Duck-typed: any error that says itself whether it is transient.
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { transient?: unknown }).transient === 'boolean'
  ) {
    const retryAfter = (error as { retryAfterMs?: unknown }).retryAfterMs;
    return verdict(
      (error as { transient: boolean }).transient ? 'transient' : 'permanent',
      code ?? 'KASA_ERROR',
      typeof retryAfter === 'number' ? retryAfter : null,
    );
  }
  return verdict('permanent', code ?? 'KASA_ERROR');
}

/**
 * A device request: no answer (timeout, refused, network) is transient and counts towards the
 * device's backoff; an answer that could not be used (malformed, error code, implausible values)
 * means the plug is there, so it never backs the plug off.
 */
export function isTransientDeviceFailure(failure: RequestFailure | string): boolean {
  return failure === 'timeout' || failure === 'refused' || failure === 'network';
}
