import type { Logger } from '../log/logger.js';
import type { PolicySettings, ResiliencePolicy } from '../resilience/index.js';
import type {
  ForwarderOptions,
  ForwarderStats,
  InfluxClientOptions,
  InfluxForwarder,
  OutboxSource,
} from '../storage/influx/index.js';

/** The InfluxDB module: loaded only when InfluxDB is configured (it brings @influxdata/influxdb-client). */
type InfluxModule = typeof import('../storage/influx/index.js');

/** The InfluxDB sink's slice of the configuration. */
export interface InfluxSlice {
  /** Batch size, interval and tags. */
  readonly forwarder: ForwarderOptions;
  /** Where and how to write (a change gives the forwarder a new HTTP writer). */
  readonly client: InfluxClientOptions;
  /** The settings of the `influx.write` policy's preset (a change ends a pause at once). */
  readonly retry: PolicySettings;
}

/** The fields whose change points the forwarder at another destination. */
const DESTINATION = ['url', 'token', 'org', 'bucket'] as const;

/**
 * The InfluxDB forwarder as a component. Null slice: no InfluxDB, nothing loaded. Switching
 * InfluxDB on or off takes a restart (the SQLite outbox depends on it), so a reload only retunes it:
 * new batch settings go to the forwarder; a changed URL, token, org, bucket, gzip or request timeout
 * gives it a new writer with the outbox cursor kept (nothing lost or sent twice), and a new
 * destination starts with a closed breaker (the old one's outage says nothing about it).
 */
export class InfluxSink {
  readonly name = 'influx';
  #slice: InfluxSlice | null;
  #module: InfluxModule | null = null;
  #forwarder: InfluxForwarder | null = null;

  constructor(
    slice: InfluxSlice | null,
    private readonly source: OutboxSource,
    private readonly policy: ResiliencePolicy,
    private readonly logger: Logger,
  ) {
    this.#slice = slice;
  }

  /** Loads the module, then the persisted cursor, and starts forwarding. */
  async start(): Promise<void> {
    const slice = this.#slice;
    if (slice === null || this.#forwarder !== null) return;
    const influx = await import('../storage/influx/index.js');
    this.#module = influx;
    this.#forwarder = new influx.InfluxForwarder(
      this.source,
      new influx.InfluxHttpWriter(slice.client, this.logger),
      this.policy,
      slice.forwarder,
      this.logger,
    );
    await this.#forwarder.start();
  }

  async reconfigure(next: InfluxSlice | null): Promise<void> {
    const before = this.#slice;
    this.#slice = next;
    const forwarder = this.#forwarder;
    const influx = this.#module;
    if (forwarder === null || influx === null || before === null || next === null) return;
    // A forwarder waiting out a failure or an open breaker asks the policy again at once.
    if (JSON.stringify(before.retry) !== JSON.stringify(next.retry)) forwarder.resume();
    if (JSON.stringify(before.forwarder) !== JSON.stringify(next.forwarder))
      forwarder.reconfigure(next.forwarder);
    const after = next.client;
    if (JSON.stringify(before.client) === JSON.stringify(after)) return;
    if (DESTINATION.some((key) => before.client[key] !== after[key])) {
      this.policy.reset('a reload changed the InfluxDB destination');
    }
    forwarder.setLineWriter(new influx.InfluxHttpWriter(after, this.logger));
    this.logger.info(
      {
        url: influx.safeUrl(after.url),
        org: after.org,
        bucket: after.bucket,
        gzip: after.gzip,
        cursor: forwarder.stats().cursor,
      },
      'InfluxDB writer replaced by a reload; forwarding goes on from the same outbox position',
    );
  }

  /**
   * The supervisor's `recreate-influx-client` action: a fresh client (new HTTP connections) for the
   * running configuration, then a trial write at once. The outbox cursor stays where it is.
   */
  recreateClient(): void {
    const forwarder = this.#forwarder;
    const influx = this.#module;
    const slice = this.#slice;
    if (forwarder === null || influx === null || slice === null) return;
    forwarder.setLineWriter(new influx.InfluxHttpWriter(slice.client, this.logger));
    forwarder.resume();
    this.logger.warn(
      { url: influx.safeUrl(slice.client.url) },
      'InfluxDB client recreated by the supervisor',
    );
  }

  /** What InfluxDB has not acknowledged stays in SQLite and is sent after the next start. */
  async stop(): Promise<void> {
    await this.#forwarder?.stop();
  }

  stats(): ForwarderStats | null {
    return this.#forwarder?.stats() ?? null;
  }
}
