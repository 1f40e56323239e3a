/** The worker's side of the message layer: serves a handler map on a port (see messages.ts). */
import { serializeStorageError, toStorageError } from '../errors.js';
import {
  type CallMessage,
  type HandlerMap,
  isCall,
  Reply,
  type ReplyMessage,
  type TransferList,
} from './messages.js';

/** What a worker answers on: its parentPort (or any port with the same two methods). */
export interface ServerPort {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  postMessage(message: unknown, transfer?: TransferList): void;
  close?(): void;
}

/**
 * Answers every call arriving on `port` with `handlers[op](args)`. Calls are handled one at a time
 * in arrival order; a handler returning a promise is answered when it settles, and the calls after
 * it are served meanwhile. A thrown error travels back as a StorageError (context: the op).
 */
export function serve(port: ServerPort, handlers: HandlerMap): void {
  port.on('message', (message) => {
    if (!isCall(message)) return;
    let value: unknown;
    try {
      const handler = Object.hasOwn(handlers, message.op) ? handlers[message.op] : undefined;
      if (handler === undefined) throw new Error(`unknown op ${message.op}`);
      value = (handler as (args: unknown) => unknown)(message.args);
    } catch (error) {
      fail(port, message, error);
      return;
    }
    if (value instanceof Promise) {
      value.then(
        (result: unknown) => answer(port, message, result),
        (error: unknown) => fail(port, message, error),
      );
    } else {
      answer(port, message, value);
    }
  });
}

function answer(port: ServerPort, call: CallMessage, value: unknown): void {
  const reply = value instanceof Reply ? value : null;
  const message: ReplyMessage = { rpc: 'reply', id: call.id, ok: true, value: reply ? reply.value : value };
  try {
    port.postMessage(message, reply?.transfer ?? []);
  } catch (error) {
    // The value could not be cloned: the caller must still get an answer.
    fail(port, call, error);
    return;
  }
  if (reply?.closePort) port.close?.();
}

function fail(port: ServerPort, call: CallMessage, error: unknown): void {
  const message: ReplyMessage = {
    rpc: 'reply',
    id: call.id,
    ok: false,
    error: serializeStorageError(toStorageError(error, call.op)),
  };
  try {
    port.postMessage(message);
  } catch {
    // The port is closed: nobody is left to tell.
  }
}
