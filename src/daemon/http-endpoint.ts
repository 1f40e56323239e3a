import type { HttpServer } from '../http/index.js';
import { listenFailure } from '../http/listen-error.js';

/**
 * The HTTP server as a component: a daemon that cannot listen does not start (`status` and
 * Prometheus would otherwise talk to whatever holds the port), so start() rejects with the reason.
 */
export class HttpEndpoint {
  readonly name = 'http';

  constructor(
    readonly server: HttpServer,
    private readonly listen: { readonly host: string; readonly port: number },
  ) {}

  async start(): Promise<void> {
    if ((await this.server.start()) === null) {
      throw listenFailure(this.listen.host, this.listen.port, this.server.error);
    }
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  stats(): ReturnType<HttpServer['stats']> {
    return this.server.stats();
  }
}
