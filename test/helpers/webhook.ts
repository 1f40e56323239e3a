/** A loopback HTTP server that receives alert webhooks (JSON POSTs) and keeps them for assertions. */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertPayload } from '../../src/supervisor/index.js';

export interface WebhookReceiver {
  readonly url: string;
  readonly received: AlertPayload[];
  /** HTTP status to answer with (default 204). */
  status: number;
  /** Requests seen, including refused ones. */
  readonly requests: number;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: AlertPayload[] = [];
  let requests = 0;
  const receiver = {
    url: '',
    received,
    status: 204,
    get requests() {
      return requests;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      if (
        receiver.status < 300 &&
        req.method === 'POST' &&
        req.headers['content-type'] === 'application/json'
      ) {
        received.push(JSON.parse(Buffer.concat(chunks).toString()) as AlertPayload);
      }
      res.writeHead(receiver.status);
      res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/kasa`;
  return receiver;
}
