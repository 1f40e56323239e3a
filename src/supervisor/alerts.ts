/**
 * Issue detection and alerting. A check that is bad (degraded or failed) `alertAfter` runs in a row
 * becomes an alert: logged once at error level and, when a webhook is configured, POSTed as JSON.
 * When the check is ok again a "resolved" notice follows (logged at info, POSTed too). One-off
 * incidents (a corrupt database moved aside) alert at once. Webhook deliveries go one after another
 * through the network retry policy, so an alert and its resolution arrive in order.
 */
import { hostname } from 'node:os';
import type { Logger } from '../log/logger.js';
import {
  type ExecutionPolicy,
  isTransientHttpStatus,
  parseRetryAfter,
  unguarded,
} from '../resilience/index.js';
import type { CheckResult, CheckStatus } from './types.js';

export type AlertEvent = 'alert' | 'resolved';

/** The JSON body POSTed to the webhook. */
export interface AlertPayload {
  readonly event: AlertEvent;
  /** The check (sqlite, influx, plugs, ...) or incident (database) it is about. */
  readonly check: string;
  /** The status that raised it; 'ok' for a resolution. */
  readonly status: CheckStatus;
  readonly reason: string;
  /** When the problem began (ISO 8601). */
  readonly since: string;
  /** When this notice was made (ISO 8601). */
  readonly at: string;
  readonly host: string;
  readonly source: 'kasa-monitor';
  readonly details: Readonly<Record<string, unknown>>;
}

export interface AlertsOptions {
  /** Consecutive bad checks before an alert. */
  readonly alertAfter: number;
  /** Where alerts are POSTed; null: log only. */
  readonly webhookUrl: string | null;
}

export interface AlertStats {
  /** Checks with an open alert. */
  readonly active: readonly string[];
  readonly raised: number;
  readonly resolved: number;
  readonly webhook: {
    readonly url: string | null;
    readonly sent: number;
    readonly failed: number;
    readonly pending: number;
    readonly lastError: string | null;
  };
  /** The latest notices, newest last (at most RECENT_LIMIT). */
  readonly recent: readonly AlertPayload[];
}

interface Track {
  bad: number;
  /** When the current run of bad checks began. */
  badSince: number;
  /** When the check entered its current status. */
  statusSince: number;
  alerting: boolean;
  status: CheckStatus;
}

const RECENT_LIMIT = 20;

/**
 * A webhook that answered with an HTTP error. It declares what a retry can do, as every error under
 * a policy does: 408, 429 and 5xx are transient (the policy retries, after the webhook's Retry-After
 * when it sent one), any other status is permanent.
 */
export class WebhookError extends Error {
  override readonly name = 'WebhookError';
  readonly code: string;
  readonly transient: boolean;
  readonly failureKind: 'transient' | 'permanent';
  readonly retryAfterMs: number | null;
  constructor(status: number, retryAfter: string | null = null) {
    super(`alert webhook answered HTTP ${status}`);
    this.code = `HTTP_${status}`;
    this.transient = isTransientHttpStatus(status);
    this.failureKind = this.transient ? 'transient' : 'permanent';
    this.retryAfterMs = parseRetryAfter(retryAfter);
  }
}

/** The URL without credentials or query, for logs and /health. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

export class Alerts {
  #options: AlertsOptions;
  readonly #tracks = new Map<string, Track>();
  readonly #recent: AlertPayload[] = [];
  #raised = 0;
  #resolvedCount = 0;
  #sent = 0;
  #failedSends = 0;
  #pending = 0;
  #lastError: string | null = null;
  #queue: Promise<void> = Promise.resolve();
  readonly #host = hostname();

  constructor(
    options: AlertsOptions,
    private readonly logger: Logger,
    /** The network policy for webhook deliveries. */
    private readonly policy: ExecutionPolicy = unguarded,
  ) {
    this.#options = options;
  }

  setOptions(options: AlertsOptions): void {
    this.#options = options;
  }

  /**
   * Feeds one run of one check. Returns the consecutive bad count and whether an alert is open
   * after it.
   */
  observe(
    check: string,
    result: CheckResult,
    nowMs: number,
  ): { bad: number; alerting: boolean; since: number } {
    let track = this.#tracks.get(check);
    if (track === undefined) {
      track = { bad: 0, badSince: nowMs, statusSince: nowMs, alerting: false, status: 'ok' };
      this.#tracks.set(check, track);
    }
    if (result.status !== track.status) track.statusSince = nowMs;
    track.status = result.status;
    if (result.status === 'ok') {
      track.bad = 0;
      if (track.alerting) {
        track.alerting = false;
        this.#resolvedCount++;
        this.logger.info({ check, reason: result.reason }, `resolved: ${check} is ok again`);
        this.#notify('resolved', check, result, nowMs, track.badSince);
      }
      return { bad: 0, alerting: false, since: track.statusSince };
    }
    if (track.bad === 0) track.badSince = nowMs;
    track.bad++;
    if (!track.alerting && track.bad >= this.#options.alertAfter) {
      track.alerting = true;
      this.#raised++;
      this.logger.error(
        {
          check,
          status: result.status,
          reason: result.reason,
          consecutive: track.bad,
          details: result.details,
        },
        `alert: ${check} ${result.status}: ${result.reason}`,
      );
      this.#notify('alert', check, result, nowMs, track.badSince);
    }
    return { bad: track.bad, alerting: track.alerting, since: track.statusSince };
  }

  /**
   * An incident that is an alert at once. Its alert stays open (listed as active) until the check of
   * the same name is next seen ok, which resolves it; the `database` check stays bad until the
   * incident is acknowledged.
   */
  incident(check: string, status: CheckStatus, reason: string, details: Record<string, unknown> = {}): void {
    const nowMs = Date.now();
    const track = this.#tracks.get(check);
    if (track === undefined) {
      this.#tracks.set(check, { bad: 1, badSince: nowMs, statusSince: nowMs, alerting: true, status });
    } else {
      if (!track.alerting) track.badSince = nowMs;
      track.alerting = true;
      track.bad = Math.max(1, track.bad);
    }
    this.#raised++;
    this.logger.error({ check, status, reason, details }, `alert: ${check}: ${reason}`);
    this.#notify('alert', check, { status, reason, details }, nowMs, nowMs);
  }

  /** Resolves once every webhook delivery queued so far has finished (delivered or given up). */
  flush(): Promise<void> {
    return this.#queue;
  }

  stats(): AlertStats {
    return {
      active: [...this.#tracks].filter(([, t]) => t.alerting).map(([name]) => name),
      raised: this.#raised,
      resolved: this.#resolvedCount,
      webhook: {
        url: this.#options.webhookUrl === null ? null : displayUrl(this.#options.webhookUrl),
        sent: this.#sent,
        failed: this.#failedSends,
        pending: this.#pending,
        lastError: this.#lastError,
      },
      recent: [...this.#recent],
    };
  }

  #notify(event: AlertEvent, check: string, result: CheckResult, nowMs: number, sinceMs: number): void {
    const payload: AlertPayload = {
      event,
      check,
      status: result.status,
      reason: result.reason,
      since: new Date(sinceMs).toISOString(),
      at: new Date(nowMs).toISOString(),
      host: this.#host,
      source: 'kasa-monitor',
      details: result.details ?? {},
    };
    this.#recent.push(payload);
    if (this.#recent.length > RECENT_LIMIT) this.#recent.shift();
    const url = this.#options.webhookUrl;
    if (url === null) return;
    this.#pending++;
    this.#queue = this.#queue.then(() => this.#send(url, payload));
  }

  async #send(url: string, payload: AlertPayload): Promise<void> {
    try {
      await this.policy.execute(async (signal) => {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'kasa-monitor' },
          body: JSON.stringify(payload),
          signal,
        });
        // Read the body so the connection can be reused.
        await response.arrayBuffer().catch(() => undefined);
        if (!response.ok) throw new WebhookError(response.status, response.headers.get('retry-after'));
      });
      this.#sent++;
    } catch (error) {
      this.#failedSends++;
      this.#lastError = error instanceof Error ? error.message : String(error);
      this.logger.warn(
        { err: error, webhook: displayUrl(url), check: payload.check, event: payload.event },
        'alert webhook delivery failed',
      );
    } finally {
      this.#pending--;
    }
  }
}
