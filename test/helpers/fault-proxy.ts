/**
 * A small loopback HTTP fault injector in front of a real write endpoint (VictoriaMetrics): each
 * request is forwarded, or answered with a chosen status (503, 429 with Retry-After, ...), or left
 * hanging, in the order the test queues faults. A request whose body contains the poison marker is
 * answered 400 (as InfluxDB answers a malformed point), whatever else it holds. Every request is
 * recorded, so tests count what reached the server instead of timing anything.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Fault =
  | { readonly kind: 'pass' }
  | {
      readonly kind: 'status';
      readonly status: number;
      /** Retry-After header value (seconds, as HTTP defines it). */
      readonly retryAfter?: string;
      readonly body?: string;
    }
  /** Accept the request and never answer it (the client's timeout must end it). */
  | { readonly kind: 'hang' };

export interface ProxiedRequest {
  readonly atMs: number;
  /** Lines of line protocol in the body. */
  readonly lines: number;
  readonly body: string;
  /** What the proxy did: forwarded (with the upstream status), answered itself, or hung. */
  readonly outcome: 'forwarded' | 'answered' | 'hung';
  readonly status: number | null;
  readonly authorization: string | null;
}

export interface FaultProxy {
  readonly url: string;
  readonly requests: readonly ProxiedRequest[];
  /** Faults for the next requests, one each, in order. */
  enqueue(...faults: Fault[]): void;
  /** What applies once the queue is empty (default: pass). */
  setFallback(fault: Fault): void;
  /** Requests whose body contains `marker` get 400 (null: no poison). */
  setPoison(marker: string | null): void;
  /** Forgets the recorded requests. */
  clearRequests(): void;
  close(): Promise<void>;
}

const PASS: Fault = { kind: 'pass' };

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const queue: Fault[] = [];
  let fallback: Fault = PASS;
  let poison: string | null = null;
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const lines = body.split('\n').filter((line) => line !== '').length;
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : null;
    const record = (outcome: ProxiedRequest['outcome'], status: number | null) =>
      requests.push({ atMs: Date.now(), lines, body, outcome, status, authorization });

    if (poison !== null && body.includes(poison)) {
      record('answered', 400);
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'invalid', message: 'unable to parse points: bad field value' }));
      return;
    }
    const fault = queue.shift() ?? fallback;
    switch (fault.kind) {
      case 'hang':
        record('hung', null);
        return; // never answered; close() destroys the socket
      case 'status': {
        record('answered', fault.status);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
        res.writeHead(fault.status, headers);
        res.end(fault.body ?? JSON.stringify({ code: 'unavailable', message: `injected ${fault.status}` }));
        return;
      }
      case 'pass': {
        const forwarded = await fetch(`${upstream}${req.url ?? '/'}`, {
          method: req.method ?? 'POST',
          headers: {
            'content-type': String(req.headers['content-type'] ?? 'text/plain'),
            ...(authorization === null ? {} : { authorization }),
          },
          body,
        });
        const text = await forwarded.text();
        record('forwarded', forwarded.status);
        res.writeHead(forwarded.status, {
          'content-type': forwarded.headers.get('content-type') ?? 'text/plain',
        });
        res.end(text);
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    enqueue: (...faults) => {
      queue.push(...faults);
    },
    setFallback: (fault) => {
      fallback = fault;
    },
    setPoison: (marker) => {
      poison = marker;
    },
    clearRequests: () => {
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
