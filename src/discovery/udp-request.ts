/**
 * Requests to one device over UDP, one at a time, on a socket of its own (kept between requests).
 * Our own instead of the library's device object: a poll is one datagram out and one in, and the
 * library's per-request machinery (promise queues, eagerly formatted debug lines over the whole
 * reply) cost more CPU than everything else a reading needs once each poll also carries the
 * device's sysinfo. A reply is taken from whatever address it comes (some plugs answer from
 * another interface); after a timeout the socket is replaced, so a late answer can never be
 * taken for the next request's (a strip's next outlet). Bytes in, bytes out: the cipher is in kasa.ts.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AnswerFailure } from './types.js';

export type DatagramResult =
  | { readonly ok: true; readonly body: Buffer }
  | { readonly ok: false; readonly failure: AnswerFailure; readonly detail: string };

interface Pending {
  readonly resolve: (result: DatagramResult) => void;
  readonly timer: NodeJS.Timeout;
}

export class UdpRequester {
  #socket: Socket | null = null;
  #pending: Pending | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  /** Sends `packet` and resolves with the first datagram that comes back. Never rejects. */
  request(host: string, port: number, packet: Buffer, timeoutMs: number): Promise<DatagramResult> {
    const run = this.#queue.then(() => this.#request(host, port, packet, timeoutMs));
    this.#queue = run;
    return run;
  }

  /** Closes the socket; a request in flight ends as a network failure. */
  close(): void {
    this.#settle({ ok: false, failure: 'network', detail: 'connection closed' });
    this.#drop();
  }

  #request(host: string, port: number, packet: Buffer, timeoutMs: number): Promise<DatagramResult> {
    return new Promise((resolve) => {
      const socket = this.#open();
      const timer = setTimeout(() => {
        this.#settle({ ok: false, failure: 'timeout', detail: `no answer within ${timeoutMs} ms` });
        this.#drop();
      }, timeoutMs);
      this.#pending = { resolve, timer };
      socket.send(packet, port, host, (err) => {
        if (err) this.#settle({ ok: false, failure: 'network', detail: err.message });
      });
    });
  }

  #open(): Socket {
    if (this.#socket !== null) return this.#socket;
    const socket = createSocket('udp4');
    socket.on('message', (msg: Buffer) => {
      if (this.#socket === socket) this.#settle({ ok: true, body: msg });
    });
    socket.on('error', (err) => {
      if (this.#socket !== socket) return;
      this.#settle({ ok: false, failure: 'network', detail: err.message });
      this.#drop();
    });
    socket.unref();
    this.#socket = socket;
    return socket;
  }

  #settle(result: DatagramResult): void {
    const pending = this.#pending;
    if (pending === null) return;
    this.#pending = null;
    clearTimeout(pending.timer);
    pending.resolve(result);
  }

  #drop(): void {
    const socket = this.#socket;
    this.#socket = null;
    if (socket !== null) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }
}
