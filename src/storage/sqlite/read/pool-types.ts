/**
 * The reader pool's options, its errors, its states and the stats it reports (/health, /metrics and
 * STATUS read them).
 */
import { KasaStorageCode, StorageError } from '../../errors.js';

/** No connection became free within the pool timeout. Transient: a later request may get one. */
export const POOL_TIMEOUT_CODE = 'KASA_POOL_TIMEOUT';

export class PoolTimeoutError extends StorageError {
  constructor(message: string) {
    super(message, { code: POOL_TIMEOUT_CODE, transient: true });
  }
}

/** As many exports as may run at once are running already. Transient: a later request may run. */
export const POOL_EXPORTS_BUSY_CODE = 'KASA_POOL_EXPORTS_BUSY';

export interface ReaderPoolOptions {
  readonly path: string;
  /** Connections kept open while idle. */
  readonly size: number;
  /** Extra connections allowed under load, closed again once idle. */
  readonly maxOverflow: number;
  /** How long `acquire` waits for a free connection. */
  readonly timeoutMs: number;
  /** Connections older than this are reopened at checkout. */
  readonly recycleMs: number;
  /** How long a reader waits for a lock (in its worker; only DELETE-journal databases lock readers). */
  readonly busyTimeoutMs?: number;
  /** Rows per export chunk (default 4096). */
  readonly chunkRows?: number;
  /** Clock for recycling (tests). */
  readonly now?: () => number;
  /** The worker script (tests point it at one that cannot start). */
  readonly workerUrl?: URL;
  /** Idle worker connections are closed after this long (default READER_IDLE_TIMEOUT_MS; 0: kept). */
  readonly idleTimeoutMs?: number;
}

/**
 * Shorter than the health checks' default interval (30 s): between two checks an idle daemon keeps
 * no reader worker. Long enough that a burst of API requests reuses its connections.
 */
export const READER_IDLE_TIMEOUT_MS = 10_000;

/**
 * `pool`: worker connections. `single`: the fallback, one connection on the main thread.
 * `unavailable`: not even that could be opened (see fallbackReason).
 */
export type PoolMode = PoolState['kind'];

/**
 * Where the pool stands, each state with what belongs to it (cockatiel's breaker state is the
 * model): a reason exists exactly when the pool runs on fewer connections than configured.
 */
export type PoolState =
  | { readonly kind: 'new' }
  | { readonly kind: 'pool' }
  | { readonly kind: 'single'; readonly reason: string }
  | { readonly kind: 'unavailable'; readonly reason: string }
  /** `reason`: the fallback's, when the pool was stopped in one (its stats keep saying why). */
  | { readonly kind: 'stopped'; readonly reason: string | null };

export interface PoolStats {
  readonly mode: PoolMode;
  /** Why the pool runs on one connection (or none); null in pool mode. */
  readonly fallbackReason: string | null;
  readonly size: number;
  readonly maxOverflow: number;
  readonly timeoutMs: number;
  readonly recycleMs: number;
  /** Connections lent out now. */
  readonly inUse: number;
  /** Connections open and free. */
  readonly idle: number;
  /** Requests waiting for a connection. */
  readonly waiting: number;
  /** Connections open or opening (in use + idle + opening). */
  readonly open: number;
  /** Most connections ever in use at once. */
  readonly peakInUse: number;
  readonly acquisitions: number;
  /** Connections ever opened / closed. */
  readonly opened: number;
  readonly closed: number;
  /** Connections closed at checkout for being older than recycleMs. */
  readonly recycled: number;
  /** Connections closed after idleTimeoutMs without a borrower. */
  readonly idleClosed: number;
  /** Requests that gave up waiting (PoolTimeoutError). */
  readonly timeouts: number;
  /** Connections that could not be opened. */
  readonly failedOpens: number;
  /** Longest wait for a connection, ms. */
  readonly maxWaitMs: number;
}

export function validatePoolOptions(options: ReaderPoolOptions): void {
  const problems: string[] = [];
  if (!Number.isInteger(options.size) || options.size < 1) problems.push(`size ${options.size}`);
  if (!Number.isInteger(options.maxOverflow) || options.maxOverflow < 0)
    problems.push(`maxOverflow ${options.maxOverflow}`);
  if (!(options.timeoutMs >= 0)) problems.push(`timeoutMs ${options.timeoutMs}`);
  if (!(options.recycleMs > 0)) problems.push(`recycleMs ${options.recycleMs}`);
  if (problems.length > 0) {
    throw new StorageError(`invalid reader pool options: ${problems.join(', ')}`, {
      code: KasaStorageCode.badOptions,
      transient: false,
    });
  }
}
