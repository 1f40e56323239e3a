/**
 * The one message layer between the main thread and the worker threads that work on the database
 * (the writer, the readers, database checks, backfill runs). A worker serves a map of handlers
 * (op → function of one argument); the main thread calls them by name and gets a promise of the
 * handler's result, typed from the map itself: the map is the protocol, so a request and its answer
 * cannot drift apart. The same works the other way (a backfill run asks the main thread).
 */
import type { SerializedStorageError } from '../errors.js';

/** A request: `op` names the handler, `args` is its one argument (structured-cloned or transferred). */
export interface CallMessage {
  readonly rpc: 'call';
  readonly id: number;
  readonly op: string;
  readonly args: unknown;
}

/** The answer to the call with the same id: the handler's value, or its error flattened for cloning. */
export type ReplyMessage =
  | { readonly rpc: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | {
      readonly rpc: 'reply';
      readonly id: number;
      readonly ok: false;
      readonly error: SerializedStorageError;
    };

/** Buffers moved to the other thread instead of copied (the columnar batches, export chunks). */
export type TransferList = readonly ArrayBuffer[];

/**
 * A handler's answer with its transfer list (the buffers are moved, not copied), and whether the
 * worker closes its port once the answer is sent (its last answer: the worker may end).
 */
export class Reply<T> {
  constructor(
    readonly value: T,
    readonly transfer: TransferList = [],
    readonly closePort = false,
  ) {}
}

/** `value`, with `transfer`'s buffers moved to the caller (zero-copy). */
export function transferring<T>(value: T, transfer: TransferList): Reply<T> {
  return new Reply(value, transfer);
}

/** `value` as the worker's last answer: its port closes after sending it. */
export function lastReply<T>(value: T): Reply<T> {
  return new Reply(value, [], true);
}

/**
 * A handler: takes one argument (or none) and returns its result, a Reply, or a promise of either.
 * A promise lets a long operation run in steps while other calls are served between them.
 */
export type Handler = (args: never) => unknown;

export type HandlerMap = { readonly [op: string]: Handler };

/** What `call` resolves to for a handler: its value, unwrapped from a promise and a Reply. */
export type ResultOf<H> = H extends (...args: never[]) => infer R ? Unreply<Awaited<R>> : never;
type Unreply<R> = R extends Reply<infer T> ? T : R;

/** The arguments of `call` for a handler: none for a handler without one, else it and a transfer list. */
export type CallArgs<H> = H extends () => unknown
  ? []
  : H extends (args: infer A) => unknown
    ? [args: A, transfer?: TransferList]
    : never;

export function isCall(message: unknown): message is CallMessage {
  return (message as { rpc?: unknown } | null)?.rpc === 'call';
}

export function isReply(message: unknown): message is ReplyMessage {
  return (message as { rpc?: unknown } | null)?.rpc === 'reply';
}
