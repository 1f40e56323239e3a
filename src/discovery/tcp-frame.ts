/**
 * One request over TCP in the legacy Kasa framing: a 4-byte big-endian length, then that many bytes.
 * Our own instead of the library's TCP socket, which buffers whatever length a device announces
 * (and reads the length as a signed number): a reply is a few KiB, so a frame announced beyond
 * `maxFrameBytes` is a malformed reply and the connection is closed at once, before its body is read.
 * Bytes in, bytes out: the cipher stays in kasa.ts.
 */
import { connect } from 'node:net';
import type { AnswerFailure } from './types.js';

/** Replies are a few KiB (a strip's sysinfo with six outlets is about 1.5 KiB); 64 KiB is generous. */
export const MAX_FRAME_BYTES = 64 * 1024;

export type FrameResult =
  | { readonly ok: true; readonly body: Buffer }
  | { readonly ok: false; readonly failure: AnswerFailure; readonly detail: string };

export interface FrameOptions {
  readonly timeoutMs: number;
  readonly maxFrameBytes?: number;
}

/** Sends `frame` (header included) and resolves with the reply's body. Never rejects. */
export function requestFrame(
  host: string,
  port: number,
  frame: Buffer,
  options: FrameOptions,
): Promise<FrameResult> {
  const max = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let expected: number | null = null;
    let settled = false;
    const socket = connect({ host, port });
    const finish = (result: FrameResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, failure: 'timeout', detail: `no answer within ${options.timeoutMs} ms` }),
      options.timeoutMs,
    );
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(frame));
    socket.on('data', (data: Buffer) => {
      chunks.push(data);
      received += data.length;
      if (expected === null) {
        if (received < 4) return;
        const head = chunks.length === 1 ? data : Buffer.concat(chunks, received);
        expected = head.readUInt32BE(0);
        if (expected > max) {
          finish({
            ok: false,
            failure: 'malformed',
            detail: `reply frame of ${expected} bytes announced, more than the ${max} allowed: connection closed`,
          });
          return;
        }
      }
      if (received >= 4 + expected) {
        const all = chunks.length === 1 ? data : Buffer.concat(chunks, received);
        finish({ ok: true, body: all.subarray(4, 4 + expected) });
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const detail = err.code === undefined ? err.message : `${err.code}: ${err.message}`;
      finish({ ok: false, failure: err.code === 'ECONNREFUSED' ? 'refused' : 'network', detail });
    });
    socket.on('close', () => {
      finish({
        ok: false,
        failure: 'network',
        detail:
          expected === null
            ? `connection closed after ${received} bytes, before a frame header`
            : `connection closed after ${received - 4} of ${expected} bytes`,
      });
    });
  });
}
