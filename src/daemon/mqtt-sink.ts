import type { Reading } from '../domain/reading.js';
import type { Logger } from '../log/logger.js';
import type {
  CostSource,
  DeviceSource,
  MqttOptions,
  MqttPublisher,
  MqttStats,
} from '../storage/mqtt/index.js';

/** The MQTT module: loaded only when MQTT is configured (MQTT.js alone costs about 20 MiB). */
type MqttModule = typeof import('../storage/mqtt/index.js');

function loadMqtt(): Promise<MqttModule> {
  return import('../storage/mqtt/index.js');
}

/**
 * The MQTT sink as a component whose slice may be null: mqtt.url unset means no publisher (and the
 * MQTT module is never loaded); a reload may switch it on, off, or retune the running publisher.
 */
export class MqttSink {
  readonly name = 'mqtt';
  #options: MqttOptions | null;
  #publisher: MqttPublisher | null = null;
  #stopped = false;

  constructor(
    options: MqttOptions | null,
    private readonly devices: DeviceSource,
    private readonly costs: CostSource,
    private readonly logger: Logger,
  ) {
    this.#options = options;
  }

  async start(): Promise<void> {
    if (this.#options !== null) await this.#switchOn(this.#options);
  }

  /** What the writer committed: the latest state per channel goes out. */
  committed(batch: readonly Reading[]): void {
    this.#publisher?.committed(batch);
  }

  /** A device was found, came back, went offline or got new channels: its configs and availability follow. */
  deviceChanged(deviceId: string): void {
    this.#publisher?.deviceChanged(deviceId);
  }

  /** A reload: MQTT switched on or off, or the running publisher's settings applied in place. */
  async reconfigure(options: MqttOptions | null): Promise<void> {
    this.#options = options;
    const running = this.#publisher;
    if (running !== null && options === null) {
      this.#publisher = null;
      // Not awaited: its last messages go out while the reload finishes.
      void running
        .stop()
        .catch((error: unknown) => this.logger.error({ err: error }, 'stopping MQTT failed'));
      this.logger.info('MQTT switched off by a reload');
    } else if (running === null && options !== null) {
      const mqtt = await this.#switchOn(options);
      if (mqtt !== null)
        this.logger.info({ url: mqtt.safeMqttUrl(options.url) }, 'MQTT switched on by a reload');
    } else if (running !== null && options !== null) {
      running.reconfigure(options);
    }
  }

  /** After the writer: the last committed states go out, then `offline` on the status topic. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const running = this.#publisher;
    this.#publisher = null;
    await running?.stop();
  }

  stats(): MqttStats | null {
    return this.#publisher?.stats() ?? null;
  }

  /** Loads the module and starts a publisher (it connects, and reconnects, by itself); null once stopped. */
  async #switchOn(options: MqttOptions): Promise<MqttModule | null> {
    const mqtt = await loadMqtt();
    // The daemon may have begun stopping, or a newer reload switched MQTT off, while it loaded.
    if (this.#stopped || this.#publisher !== null || this.#options !== options) return null;
    this.#publisher = new mqtt.MqttPublisher(options, this.devices, this.logger, this.costs);
    this.#publisher.start();
    return mqtt;
  }
}
