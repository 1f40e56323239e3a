/**
 * The InfluxDB v2 write API through @influxdata/influxdb-client (this folder is its only importer),
 * used as a plain request: no retry buffer (maxRetries 0), no background flushing (flushInterval 0,
 * and a batch size above anything we send, so the client never sends a batch on its own). One call
 * = one request, which resolves once InfluxDB answered 204 and rejects with a StorageError saying
 * whether a retry can help. Retries, backoff and the breaker belong to the network policy.
 *
 * The token travels only in the Authorization header; it is never part of a message or a log line.
 */
import { HttpError, InfluxDB, setLogger } from '@influxdata/influxdb-client';
import type { Logger } from '../../log/logger.js';
import { isTransientHttpStatus, parseRetryAfter } from '../../resilience/index.js';
import { StorageError } from '../errors.js';

export interface InfluxClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8086. */
  readonly url: string;
  readonly token: string | null;
  readonly org: string;
  readonly bucket: string;
  /** The transport's own request timeout (the policy's timeout should fire first). */
  readonly timeoutMs: number;
  readonly gzip: boolean;
}

/** Where the forwarder sends line protocol. */
export interface LineWriter {
  write(lines: readonly string[], signal?: AbortSignal): Promise<void>;
}

let clientLogRoutedTo: Logger | null = null;

/** The client logs through a global logger (console by default): route it to ours, at debug. */
function routeClientLog(logger: Logger): void {
  if (clientLogRoutedTo !== null) return;
  clientLogRoutedTo = logger;
  setLogger({
    error: (message: string) => clientLogRoutedTo?.debug({ library: 'influxdb-client' }, message),
    warn: (message: string) => clientLogRoutedTo?.debug({ library: 'influxdb-client' }, message),
  });
}

/** The URL without user-info, for messages. */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(invalid url)';
  }
}

function headerValue(headers: unknown, name: string): string | null {
  if (typeof headers !== 'object' || headers === null) return null;
  const value = (headers as Record<string, unknown>)[name];
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return null;
}

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Statuses by which InfluxDB refuses the points themselves: malformed (400), too large a body (413),
 * unprocessable (422). The forwarder splits such a batch to isolate the bad point.
 */
const CONTENT_REJECTED: ReadonlySet<number> = new Set([400, 413, 422]);

export class InfluxHttpWriter implements LineWriter {
  readonly #influx: InfluxDB;
  readonly #secrets: string[];
  readonly #where: string;

  constructor(
    private readonly options: InfluxClientOptions,
    logger: Logger,
  ) {
    routeClientLog(logger);
    this.#influx = new InfluxDB({
      url: options.url,
      ...(options.token === null ? {} : { token: options.token }),
      timeout: options.timeoutMs,
    });
    this.#secrets = options.token !== null && options.token.length >= 4 ? [options.token] : [];
    this.#where = `${safeUrl(options.url)} (org ${options.org}, bucket ${options.bucket})`;
  }

  async write(lines: readonly string[], signal?: AbortSignal): Promise<void> {
    if (lines.length === 0) return;
    if (signal?.aborted === true) {
      throw new StorageError('InfluxDB write cancelled', {
        code: 'KASA_ABORTED',
        transient: false,
        failureKind: 'permanent',
      });
    }
    const api = this.#influx.getWriteApi(this.options.org, this.options.bucket, 'ms', {
      // The whole body goes in as one record (lines joined by newlines, which is what the client
      // would send anyway), so its per-line bookkeeping is skipped. A batch size of 2 keeps the
      // client from sending that record on its own before flush() (it also allocates an array of
      // batchSize slots per WriteApi, so no huge constant here).
      batchSize: 2,
      maxBatchBytes: Number.MAX_SAFE_INTEGER,
      flushInterval: 0,
      maxRetries: 0,
      maxBufferLines: 0,
      gzipThreshold: this.options.gzip ? 1000 : Number.MAX_SAFE_INTEGER,
    });
    try {
      api.writeRecord(lines.join('\n'));
      await api.flush();
    } catch (error) {
      throw this.#toStorageError(error);
    } finally {
      // Nothing can be buffered (flush took it all), but close the API's timers either way.
      api.dispose();
    }
  }

  #scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join('[redacted]');
    return out;
  }

  #toStorageError(error: unknown): StorageError {
    if (error instanceof HttpError) {
      const status = error.statusCode;
      const body = this.#scrub(String(error.body ?? error.message ?? '')).slice(0, 300);
      const transient = isTransientHttpStatus(status);
      return new StorageError(`InfluxDB at ${this.#where} answered ${status}: ${body}`, {
        code: `HTTP_${status}`,
        transient,
        // 408, 429 and 5xx: the same request may go through later; any other answer is final.
        failureKind: transient ? 'transient' : 'permanent',
        rejectsContent: CONTENT_REJECTED.has(status),
        retryAfterMs: parseRetryAfter(headerValue(error.headers, 'retry-after')),
      });
    }
    const name = error instanceof Error ? error.name : '';
    const code = codeOf(error) ?? (name === 'RequestTimedOutError' ? 'KASA_TIMEOUT' : 'KASA_NETWORK');
    const message = this.#scrub(error instanceof Error ? error.message : String(error));
    // A request that never got an answer may succeed on the next try: transient.
    return new StorageError(`InfluxDB at ${this.#where} unreachable: ${message} (${code})`, {
      code,
      transient: true,
      failureKind: 'transient',
    });
  }
}
