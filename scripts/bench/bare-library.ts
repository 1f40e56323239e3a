/**
 * The bare tplink-smarthome-api library, the baseline the benchmarks measure kasa-monitor against:
 * its `Client`, used the way its README shows. The only importer of tplink-smarthome-api besides
 * the bare-loop child process; the daemon itself never loads the library.
 */
import type { Logger as ApiLogger, Client } from 'tplink-smarthome-api';
import tplink from 'tplink-smarthome-api';
import type { Endpoint, KasaSysinfo, RequestOptions } from '../../src/discovery/kasa.js';
import type { Logger } from '../../src/log/logger.js';

/** The library's debug lines go to our logger, only when debug is on. */
function apiLogger(logger: Logger): ApiLogger {
  const forward = (...msg: unknown[]): void => {
    if (!logger.isLevelEnabled('debug')) return;
    const [first, ...rest] = msg;
    logger.debug({ lib: 'tplink-smarthome-api' }, String(first), ...rest);
  };
  return { debug: forward, info: forward, warn: forward, error: forward };
}

/** The library's own device object for a plug or a strip outlet (see `BareLibrary`). */
export interface BareLibraryPlug {
  getRealtime(options: RequestOptions): Promise<unknown>;
  close(): void;
}

/**
 * The bare library, used the way its README shows (`plug.emeter.getRealtime()`), for benchmarks
 * that compare our poller with it. Not used by the daemon.
 */
export class BareLibrary {
  readonly #client: Client;

  constructor(logger: Logger) {
    this.#client = new tplink.Client({ logger: apiLogger(logger) });
  }

  plug(sysinfo: KasaSysinfo, endpoint: Endpoint, childId: string | null): BareLibraryPlug {
    const plug = this.#client.getPlug({
      host: endpoint.host,
      port: endpoint.port,
      sysInfo: structuredClone(sysinfo.raw) as never,
      ...(childId === null ? {} : { childId }),
    });
    return {
      getRealtime: (options) =>
        plug.emeter.getRealtime({
          transport: options.transport,
          timeout: options.timeoutMs,
          useSharedSocket: true,
          sharedSocketTimeout: 60_000,
        }),
      close: () => plug.closeConnection(),
    };
  }
}
