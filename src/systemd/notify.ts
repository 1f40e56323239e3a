import { execFile } from 'node:child_process';
import type systemdNotifyFunction from 'systemd-notify';
import type { Logger } from '../log/logger.js';
import { requireCommonJs } from '../shared/commonjs.js';

/** Loaded with require, not import: see shared/commonjs.ts. */
const systemdNotify = requireCommonJs('systemd-notify') as typeof systemdNotifyFunction;

/**
 * sd_notify(3) for a Node daemon. Node has no AF_UNIX datagram sockets, so every message is sent by
 * running the `systemd-notify` binary (which, since systemd 246, also waits for PID 1 to have
 * processed the message before it exits). READY=1 and STATUS= go through the `systemd-notify` npm
 * package; it has no way to pass anything else, so WATCHDOG=1, RELOADING=1, MONOTONIC_USEC= and
 * STOPPING=1 are passed to the same binary as VAR=VALUE arguments through execFile.
 *
 * The messages come from a child process, so the unit needs NotifyAccess=all.
 *
 * Guarantees: a no-op without NOTIFY_SOCKET; never throws; never blocks the event loop (each send is
 * a child process, awaited asynchronously); messages reach systemd in the order they were made (one
 * child at a time, so RELOADING=1 can never overtake the READY=1 that ends it).
 */

/** One notification. Exactly what systemd-notify sends, joined by newlines. */
export interface NotifyMessage {
  /** READY=1 */
  readonly ready?: boolean;
  /** STATUS=…, one line. */
  readonly status?: string;
  /** Further VAR=VALUE assignments: WATCHDOG=1, RELOADING=1, MONOTONIC_USEC=…, STOPPING=1. */
  readonly assignments?: readonly string[];
}

/** Hands one message to systemd; rejects when that failed. */
export type NotifyTransport = (message: NotifyMessage) => Promise<void>;

export const NOTIFY_BINARY = 'systemd-notify';

/** systemd-notify waits at most 5 s for PID 1 (its barrier); past this a send counts as failed. */
export const SEND_TIMEOUT_MS = 10_000;

/** Longest STATUS= text sent; `systemctl status` shows it on one line. */
export const MAX_STATUS_LENGTH = 300;

/** Messages waiting while one is being sent, at most; the oldest STATUS/WATCHDOG-only ones go first. */
const MAX_PENDING = 32;

/**
 * Makes `text` safe as a STATUS= value: one line (a newline would start a new assignment, so
 * "x\nREADY=1" could forge a notification), no control characters, at most MAX_STATUS_LENGTH.
 */
export function oneLine(text: string, max: number = MAX_STATUS_LENGTH): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const flat = text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** The systemd-notify arguments for a message. */
export function notifyArguments(message: NotifyMessage): string[] {
  const args: string[] = [];
  if (message.ready === true) args.push('--ready');
  if (message.status !== undefined) args.push(`--status=${oneLine(message.status)}`);
  for (const assignment of message.assignments ?? []) args.push(oneLine(assignment));
  return args;
}

function asError(reason: unknown): Error {
  if (reason instanceof Error) return reason;
  const text = typeof reason === 'string' ? reason.trim() : String(reason);
  return new Error(text === '' ? `${NOTIFY_BINARY} failed` : text);
}

/** The real transport: the npm package where it suffices, execFile of the same binary otherwise. */
export const binaryTransport: NotifyTransport = (message) => {
  const assignments = message.assignments ?? [];
  if (assignments.length === 0) {
    const options = {
      ...(message.ready === true ? { ready: true } : {}),
      ...(message.status === undefined ? {} : { status: oneLine(message.status) }),
    };
    try {
      return systemdNotify(options).then(
        () => undefined,
        (reason: unknown) => Promise.reject(asError(reason)),
      );
    } catch (error) {
      return Promise.reject(asError(error));
    }
  }
  return new Promise<void>((resolve, reject) => {
    try {
      execFile(
        NOTIFY_BINARY,
        notifyArguments(message),
        { timeout: SEND_TIMEOUT_MS, killSignal: 'SIGKILL', windowsHide: true },
        (error, _stdout, stderr) => {
          if (error === null) resolve();
          else
            reject(
              new Error(`${NOTIFY_BINARY}: ${String(stderr).trim() || error.message}`, { cause: error }),
            );
        },
      );
    } catch (error) {
      reject(asError(error));
    }
  });
};

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime is CLOCK_MONOTONIC on Linux), for MONOTONIC_USEC=. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** True when systemd asked for notifications (Type=notify sets NOTIFY_SOCKET). */
export function notifySocketSet(env: NodeJS.ProcessEnv): boolean {
  const socket = env['NOTIFY_SOCKET'];
  return typeof socket === 'string' && socket !== '';
}

export interface NotifierOptions {
  readonly logger: Logger;
  /** The environment holding NOTIFY_SOCKET; process.env by default. */
  readonly env?: NodeJS.ProcessEnv;
  readonly transport?: NotifyTransport;
  readonly monotonicUsec?: () => bigint;
  readonly sendTimeoutMs?: number;
}

type Kind = 'lifecycle' | 'status' | 'watchdog';

interface Pending {
  readonly kind: Kind;
  message: NotifyMessage;
}

function describe(message: NotifyMessage): string {
  const parts: string[] = [];
  if (message.ready === true) parts.push('READY=1');
  parts.push(...(message.assignments ?? []));
  if (message.status !== undefined) parts.push('STATUS');
  return parts.join(' ');
}

/** Sends sd_notify messages in order, one child process at a time. See the module comment. */
export class SystemdNotifier {
  readonly enabled: boolean;
  readonly #logger: Logger;
  readonly #transport: NotifyTransport;
  readonly #clock: () => bigint;
  readonly #timeoutMs: number;
  readonly #pending: Pending[] = [];
  #sending = false;
  #idle: (() => void)[] = [];
  /** The last STATUS= text queued, to skip sending the same one again. */
  #lastStatus: string | null = null;
  #failing = false;
  #sent = 0;
  #failed = 0;
  #dropped = 0;

  constructor(options: NotifierOptions) {
    this.enabled = notifySocketSet(options.env ?? process.env);
    this.#logger = options.logger;
    this.#transport = options.transport ?? binaryTransport;
    this.#clock = options.monotonicUsec ?? monotonicUsec;
    this.#timeoutMs = options.sendTimeoutMs ?? SEND_TIMEOUT_MS;
  }

  /** READY=1: start-up finished, or a reload ended (applied or rejected). */
  ready(status?: string): void {
    this.#enqueue('lifecycle', { ready: true, ...this.#statusPart(status, true) });
  }

  /** RELOADING=1 with MONOTONIC_USEC=: a reload begins; READY=1 must follow. */
  reloading(status?: string): void {
    this.#enqueue('lifecycle', {
      assignments: ['RELOADING=1', `MONOTONIC_USEC=${this.#clock()}`],
      ...this.#statusPart(status, true),
    });
  }

  /** STOPPING=1: shutdown begins. */
  stopping(status?: string): void {
    this.#enqueue('lifecycle', { assignments: ['STOPPING=1'], ...this.#statusPart(status, true) });
  }

  /** STATUS=: sent only when it differs from the last one. */
  status(text: string): void {
    const part = this.#statusPart(text, false);
    if (part.status === undefined) return;
    const last = this.#pending.at(-1);
    if (last?.kind === 'status') last.message = part;
    else this.#enqueue('status', part);
  }

  /** WATCHDOG=1, with STATUS= when it changed. A ping already waiting absorbs this one. */
  watchdog(status?: string): void {
    const part = this.#statusPart(status, false);
    const waiting = this.#pending.find((p) => p.kind === 'watchdog');
    if (waiting !== undefined) {
      if (part.status !== undefined) waiting.message = { ...waiting.message, ...part };
      return;
    }
    this.#enqueue('watchdog', { assignments: ['WATCHDOG=1'], ...part });
  }

  /** Counters, for tests and diagnostics. */
  stats(): {
    readonly sent: number;
    readonly failed: number;
    readonly dropped: number;
    readonly pending: number;
  } {
    return {
      sent: this.#sent,
      failed: this.#failed,
      dropped: this.#dropped,
      pending: this.#pending.length + (this.#sending ? 1 : 0),
    };
  }

  /** Resolves once everything queued so far has been sent (or failed), or after `timeoutMs`. Never rejects. */
  flush(timeoutMs: number = this.#timeoutMs): Promise<void> {
    if (!this.#sending && this.#pending.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idle.push(done);
    });
  }

  #statusPart(status: string | undefined, always: boolean): { status?: string } {
    if (status === undefined) return {};
    const text = oneLine(status);
    if (!always && text === this.#lastStatus) return {};
    this.#lastStatus = text;
    return { status: text };
  }

  #enqueue(kind: Kind, message: NotifyMessage): void {
    if (!this.enabled) return;
    this.#pending.push({ kind, message });
    while (this.#pending.length > MAX_PENDING) {
      const index = this.#pending.findIndex((p) => p.kind !== 'lifecycle');
      if (index < 0) break;
      this.#pending.splice(index, 1);
      this.#dropped++;
    }
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      for (let next = this.#pending.shift(); next !== undefined; next = this.#pending.shift()) {
        await this.#send(next.message);
      }
    } finally {
      this.#sending = false;
      for (const done of this.#idle.splice(0)) done();
    }
  }

  async #send(message: NotifyMessage): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#transport(message),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${NOTIFY_BINARY} did not finish within ${this.#timeoutMs} ms`)),
            this.#timeoutMs,
          );
          timer.unref();
        }),
      ]);
      this.#sent++;
      if (this.#failing) {
        this.#failing = false;
        this.#logger.info('notifications to systemd work again');
      }
    } catch (error) {
      this.#failed++;
      if (!this.#failing) {
        this.#failing = true;
        const failure = error as { code?: unknown; cause?: { code?: unknown } };
        const missing = failure.code === 'ENOENT' || failure.cause?.code === 'ENOENT';
        this.#logger.error(
          { err: error, message: describe(message) },
          missing
            ? `could not notify systemd: the ${NOTIFY_BINARY} binary is not on PATH (install systemd)`
            : 'could not notify systemd; will keep trying',
        );
      } else {
        this.#logger.debug({ err: error, message: describe(message) }, 'systemd notification failed again');
      }
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
