/**
 * The main thread's side of the message layer: calls a worker's handlers by name (see messages.ts),
 * keeps the process alive only while a call is outstanding, and turns the worker's death (an
 * uncaught error, an exit, an answer that cannot be read) into one typed StorageError that rejects
 * every pending call.
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

export interface WorkerClientOptions {
  /** Names the worker in errors: `<name> worker exited with code 1`. */
  readonly name: string;
  /**
   * Whether the death error is transient: true where a new worker simply takes the dead one's place
   * (a reader connection), false where someone must reopen (the writer: its recovery decides).
   */
  readonly deathIsTransient: boolean;
  /** Told once, when the worker dies (before the pending calls are rejected). */
  readonly onDeath?: (error: StorageError) => void;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: StorageError) => void;
}

export class WorkerClient<H extends HandlerMap> {
  readonly #worker: Worker;
  readonly #options: WorkerClientOptions;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Why calls fail now: the worker died or was ended; null while it serves. */
  #gone: StorageError | null = null;
  /** Resolves when the worker's thread has ended. */
  readonly exited: Promise<void>;

  constructor(worker: Worker, options: WorkerClientOptions) {
    this.#worker = worker;
    this.#options = options;
    worker.unref();
    let markExited: () => void = () => {};
    this.exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    worker.on('message', (message: unknown) => {
      if (isReply(message)) this.#settle(message);
    });
    worker.on('error', (error) => this.#died(`${options.name} worker crashed: ${error.message}`, error));
    worker.on('messageerror', (error) => {
      // A lost answer would leave its call hanging: the worker is of no further use.
      this.#died(`${options.name} worker sent an answer that could not be read: ${error.message}`, error);
      void worker.terminate();
    });
    worker.on('exit', (code) => {
      this.#died(`${options.name} worker exited with code ${code}`, undefined);
      markExited();
    });
  }

  /** The worker's thread id (tells connections apart). */
  get threadId(): number {
    return this.#worker.threadId;
  }

  /** The worker died or was ended: every call fails. */
  get gone(): boolean {
    return this.#gone !== null;
  }

  /** Calls the worker's handler `op`; resolves with its result, rejects with a StorageError. */
  call<K extends keyof H & string>(op: K, ...rest: CallArgs<H[K]>): Promise<ResultOf<H[K]>> {
    if (this.#gone !== null) {
      return Promise.reject(this.#deathError(`${this.#options.name} worker is gone`, undefined));
    }
    const [args, transfer] = rest as [unknown?, TransferList?];
    const id = this.#nextId++;
    return new Promise<ResultOf<H[K]>>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      // Keep the process alive while a call is outstanding, and only then.
      if (this.#pending.size === 1) this.#worker.ref();
      const message: CallMessage = { rpc: 'call', id, op, args };
      this.#worker.postMessage(message, transfer ?? []);
    });
  }

  /** Ends the worker (pending calls fail) and waits for its thread to end. */
  async terminate(): Promise<void> {
    this.#gone ??= this.#deathError(`${this.#options.name} worker was ended`, undefined);
    await this.#worker.terminate();
    await this.exited;
  }

  #settle(reply: ReplyMessage): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(deserializeStorageError(reply.error));
  }

  #died(message: string, cause: Error | undefined): void {
    const error = this.#deathError(message, cause);
    const first = this.#gone === null;
    this.#gone ??= error;
    if (first) this.#options.onDeath?.(error);
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(error);
    }
    this.#worker.unref();
  }

  #deathError(message: string, cause: Error | undefined): StorageError {
    return new StorageError(message, {
      code: KasaStorageCode.workerExited,
      transient: this.#options.deathIsTransient,
      ...(cause === undefined ? {} : { cause }),
    });
  }
}
