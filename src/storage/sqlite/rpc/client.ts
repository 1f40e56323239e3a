/**
 * The calling side of the message layer (see messages.ts): calls the handlers served at the other
 * end of a port by name. `WorkerClient` is the main thread's client of a worker: it keeps the
 * process alive only while a call is outstanding, and turns the worker's death (an uncaught error,
 * an exit, an answer that cannot be read) into one typed StorageError that rejects every pending
 * call. `PortClient` calls the other way, from a worker to handlers the main thread serves.
 */
import type { Worker } from 'node:worker_threads';
import { KasaStorageCode, StorageError } from '../../errors.js';
import { deserializeStorageError } from '../errors.js';
import {
  type CallArgs,
  type CallMessage,
  type HandlerMap,
  isReply,
  type ReplyMessage,
  type ResultOf,
  type TransferList,
} from './messages.js';

/** What a client calls through: a Worker, or a worker's parentPort. */
export interface ClientPort {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  postMessage(message: unknown, transfer?: TransferList): void;
}

export interface ClientOptions {
  /** Names the other end in errors: `<name> worker exited with code 1`. */
  readonly name: string;
  /**
   * Whether the death error is transient: true where a new worker simply takes the dead one's place
   * (a reader connection), false where someone must reopen (the writer: its recovery decides).
   */
  readonly deathIsTransient: boolean;
  /** Told once, when the other end dies (before the pending calls are rejected). */
  readonly onDeath?: (error: StorageError) => void;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: StorageError) => void;
}

/** Calls over a port; replies are matched to calls by id. */
export class PortClient<H extends HandlerMap> {
  readonly #port: ClientPort;
  readonly #options: ClientOptions;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Why calls fail now: the other end died or was ended; null while it serves. */
  #gone: StorageError | null = null;
  /** Told when the first call is outstanding (true) and when none is left (false). */
  readonly #busy: (busy: boolean) => void;

  constructor(port: ClientPort, options: ClientOptions, busy: (busy: boolean) => void = () => {}) {
    this.#port = port;
    this.#options = options;
    this.#busy = busy;
    port.on('message', (message) => {
      if (isReply(message)) this.#settle(message);
    });
  }

  /** The other end died or was ended: every call fails. */
  get gone(): boolean {
    return this.#gone !== null;
  }

  /** Calls the handler `op`; resolves with its result, rejects with a StorageError. */
  call<K extends keyof H & string>(op: K, ...rest: CallArgs<H[K]>): Promise<ResultOf<H[K]>> {
    if (this.#gone !== null) return Promise.reject(this.deathError(`${this.#options.name} worker is gone`));
    const [args, transfer] = rest as [unknown?, TransferList?];
    const id = this.#nextId++;
    return new Promise<ResultOf<H[K]>>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      if (this.#pending.size === 1) this.#busy(true);
      const message: CallMessage = { rpc: 'call', id, op, args };
      this.#port.postMessage(message, transfer ?? []);
    });
  }

  /** Calls fail from now on with `error` (the pending ones failed by `died`, if it follows). */
  ended(error: StorageError): void {
    this.#gone ??= error;
  }

  /** The other end died: `onDeath` is told (the first time), then every pending call fails. */
  died(message: string, cause?: Error): void {
    const error = this.deathError(message, cause);
    const first = this.#gone === null;
    this.#gone ??= error;
    if (first) this.#options.onDeath?.(error);
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(error);
    }
    this.#busy(false);
  }

  deathError(message: string, cause?: Error): StorageError {
    return new StorageError(message, {
      code: KasaStorageCode.workerExited,
      transient: this.#options.deathIsTransient,
      ...(cause === undefined ? {} : { cause }),
    });
  }

  #settle(reply: ReplyMessage): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#busy(false);
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(deserializeStorageError(reply.error));
  }
}

/** The main thread's client of a worker thread. */
export class WorkerClient<H extends HandlerMap> {
  readonly #worker: Worker;
  readonly #name: string;
  readonly #calls: PortClient<H>;
  /** Resolves when the worker's thread has ended. */
  readonly exited: Promise<void>;

  constructor(worker: Worker, options: ClientOptions) {
    this.#worker = worker;
    this.#name = options.name;
    // Keep the process alive while a call is outstanding, and only then.
    worker.unref();
    this.#calls = new PortClient<H>(worker, options, (busy) => (busy ? worker.ref() : worker.unref()));
    let markExited: () => void = () => {};
    this.exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    worker.on('error', (error) =>
      this.#calls.died(`${options.name} worker crashed: ${error.message}`, error),
    );
    worker.on('messageerror', (error) => {
      // A lost answer would leave its call hanging: the worker is of no further use.
      this.#calls.died(
        `${options.name} worker sent an answer that could not be read: ${error.message}`,
        error,
      );
      void worker.terminate();
    });
    worker.on('exit', (code) => {
      this.#calls.died(`${options.name} worker exited with code ${code}`);
      markExited();
    });
  }

  /** The worker died or was ended: every call fails. */
  get gone(): boolean {
    return this.#calls.gone;
  }

  /** Calls the worker's handler `op`; resolves with its result, rejects with a StorageError. */
  call<K extends keyof H & string>(op: K, ...rest: CallArgs<H[K]>): Promise<ResultOf<H[K]>> {
    return this.#calls.call(op, ...rest);
  }

  /** Ends the worker (pending calls fail, without telling onDeath) and waits for its thread to end. */
  async terminate(): Promise<void> {
    this.#calls.ended(this.#calls.deathError(`${this.#name} worker was ended`));
    await this.#worker.terminate();
    await this.exited;
  }
}
