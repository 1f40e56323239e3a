/**
 * The smart transports' HTTP client against hand-written peers on loopback (raw TCP servers that
 * answer exactly the bytes a test wants): keep-alive reuse, chunked and read-to-close bodies, a
 * connection closed by the device between requests, and untrusted garbage. 127.35.6.x, port 35600.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { HttpEndpoint, sessionCookie } from '../src/smart/http.js';
import { smartErrorCode } from './helpers/rejections.js';
import { sleep } from './helpers/wait.js';

const PORT = 35600;
const servers: Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/** A TCP peer that answers each request (one per data burst) with `answer(n, socket)`. */
async function peer(
  address: string,
  answer: (n: number, socket: Socket) => void,
): Promise<{ connections: () => number }> {
  let connections = 0;
  let n = 0;
  const server = createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      if (chunk.includes('\r\n\r\n')) answer(n++, socket);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(PORT, address, resolve));
  return { connections: () => connections };
}

const ok = (body: string, extra = ''): string =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('the smart transports’ HTTP client', () => {
  it('reuses one connection for requests in a row and reads Set-Cookie lines', async () => {
    const p = await peer('127.35.6.1', (n, s) =>
      s.write(ok(`answer ${n}`, 'Set-Cookie: TP_SESSIONID=AB12;TIMEOUT=1200\r\n')),
    );
    const http = new HttpEndpoint('127.35.6.1', PORT);
    for (let i = 0; i < 3; i++) {
      const res = await http.post('/app', Buffer.from('x'), { deadlineMs: 2000 });
      assert.equal(res.body.toString(), `answer ${i}`);
      assert.deepEqual(sessionCookie(res.headers), { cookie: 'TP_SESSIONID=AB12', timeoutS: 1200 });
    }
    assert.equal(p.connections(), 1);
    http.close();
  });

  it('reads chunked bodies and bodies delimited by the connection closing', async () => {
    await peer('127.35.6.2', (n, s) => {
      if (n === 0)
        s.write(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
        );
      else s.end('HTTP/1.0 200 OK\r\n\r\nuntil close');
    });
    const http = new HttpEndpoint('127.35.6.2', PORT);
    assert.equal(
      (await http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })).body.toString(),
      'hello world',
    );
    assert.equal(
      (await http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })).body.toString(),
      'until close',
    );
    http.close();
  });

  it('a device that closed the kept-alive connection meanwhile gets the request on a new one', async () => {
    const p = await peer('127.35.6.3', (n, s) => {
      s.write(ok(`answer ${n}`));
      setTimeout(() => s.destroy(), 10); // closes after answering, without saying so
    });
    const http = new HttpEndpoint('127.35.6.3', PORT);
    assert.equal((await http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })).body.toString(), 'answer 0');
    await sleep(50);
    assert.equal((await http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })).body.toString(), 'answer 1');
    assert.equal(p.connections(), 2);
    http.close();
  });

  it('garbage, a cut-short body, an endless head and silence are errors by their kind, never answers', async () => {
    await peer('127.35.6.4', (n, s) => {
      if (n === 0) s.end('SSH-2.0-OpenSSH\r\n\r\n');
      else if (n === 1) s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort');
      else if (n === 2) s.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(40_000)}`);
      // n === 3: no answer at all
    });
    const http = new HttpEndpoint('127.35.6.4', PORT);
    assert.equal(await smartErrorCode(http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })), 'protocol');
    assert.equal(await smartErrorCode(http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })), 'protocol');
    assert.equal(await smartErrorCode(http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })), 'protocol');
    assert.equal(await smartErrorCode(http.post('/', Buffer.alloc(0), { deadlineMs: 200 })), 'timeout');
    http.close();
  });

  it('nobody listening is "refused"', async () => {
    const http = new HttpEndpoint('127.35.6.5', PORT);
    assert.equal(await smartErrorCode(http.post('/', Buffer.alloc(0), { deadlineMs: 2000 })), 'refused');
  });
});
