/**
 * One MQTT connection through MQTT.js (this folder is its only importer), used without any of the
 * library's own recovery: no automatic reconnect (reconnectPeriod 0: the link decides when to try
 * again, with its own backoff), no offline queue (queueQoSZero false, and nothing is published
 * while disconnected), so memory never grows while the broker is away. One MqttConnection = one
 * attempt; after it closes, a new one is made.
 *
 * The password goes only into the CONNECT packet: it is never part of a message or an error text.
 */
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';

export interface MqttConnectOptions {
  /** mqtt:// or mqtts:// without user-info. */
  readonly url: string;
  readonly username: string | null;
  readonly password: string | null;
  /** PEM CA file for mqtts://; null: the system CAs. */
  readonly caFile: string | null;
  readonly clientId: string;
  /** The last will: published by the broker when the connection is lost without a DISCONNECT. */
  readonly will: { readonly topic: string; readonly payload: string };
  readonly connectTimeoutMs: number;
  readonly keepaliveSeconds: number;
}

export interface ConnectionEvents {
  /** CONNACK accepted. */
  connected(): void;
  /** The attempt or the session ended (after `connected`, or without it). Called once. */
  closed(error: MqttLinkError | null): void;
}

/** Why a connection failed, in words that never contain the password. */
export class MqttLinkError extends Error {
  readonly code: string;
  /** The broker refused the user name or password (CONNACK 4/5, or v5 134/135). */
  readonly auth: boolean;
  constructor(message: string, code: string, auth: boolean) {
    super(message);
    this.name = 'MqttLinkError';
    this.code = code;
    this.auth = auth;
  }
}

/** Above this many bytes waiting in the socket, states are held (the latest per channel) instead of written. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

const AUTH_CODES = new Set([4, 5, 134, 135]);

function describe(error: unknown): MqttLinkError {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number') {
    const auth = AUTH_CODES.has(code);
    const what = auth
      ? code === 4 || code === 134
        ? 'bad user name or password'
        : 'not authorized'
      : `connection refused (CONNACK ${code})`;
    return new MqttLinkError(`the broker refused the connection: ${what}`, `CONNACK_${code}`, auth);
  }
  const text = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
  return new MqttLinkError(
    `cannot reach the broker: ${text}`,
    typeof code === 'string' ? code : 'KASA_NETWORK',
    false,
  );
}

export class MqttConnection {
  readonly #client: MqttClient;
  #closed = false;
  #error: MqttLinkError | null = null;

  constructor(options: MqttConnectOptions, events: ConnectionEvents) {
    const clientOptions: IClientOptions = {
      clientId: options.clientId,
      clean: true,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: options.connectTimeoutMs,
      keepalive: options.keepaliveSeconds,
      queueQoSZero: false,
      resubscribe: false,
      // MQTT.js logs every packet through `debug`; a no-op spares the formatting on the hot path.
      log: () => undefined,
      will: { topic: options.will.topic, payload: Buffer.from(options.will.payload), qos: 1, retain: true },
      ...(options.username === null ? {} : { username: options.username }),
      ...(options.password === null ? {} : { password: options.password }),
      ...(options.caFile === null ? {} : { ca: readFileSync(options.caFile) }),
    };
    this.#client = connect(options.url, clientOptions);
    this.#client.on('connect', () => {
      if (!this.#closed) events.connected();
    });
    this.#client.on('error', (error) => {
      this.#error ??= describe(error);
      // Without reconnects, an error ends the attempt: close it so 'close' reports it.
      this.#client.end(true);
    });
    this.#client.on('close', () => {
      if (this.#closed) return;
      this.#closed = true;
      // A session that ended without an error (the broker went away) is a network failure too.
      events.closed(
        this.#error ?? new MqttLinkError('the connection to the broker was lost', 'KASA_CLOSED', false),
      );
      this.#client.end(true);
    });
  }

  /** Whether the socket has room: false while more than MAX_BUFFERED_BYTES wait to be sent. */
  get writable(): boolean {
    const stream = this.#client.stream as { writableLength?: number } | undefined;
    return this.#client.connected && (stream?.writableLength ?? 0) < MAX_BUFFERED_BYTES;
  }

  /** Fire-and-forget publish (QoS 0 or 1). Never queued by the library while disconnected. */
  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    if (!this.#client.connected) return;
    // No callback: with one, MQTT.js adds a 'drain' listener per message whenever the socket buffer
    // is above its high-water mark (a batch of 1,000 states is), which costs CPU and warns.
    this.#client.publish(topic, payload, { qos, retain });
  }

  /** A clean DISCONNECT (no last will) with what was published flushed; then the socket closes. */
  async end(graceful: boolean): Promise<void> {
    this.#closed = true;
    if (!graceful || !this.#client.connected) {
      this.#client.end(true);
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#client.end(true);
        resolve();
      }, 2000);
      timer.unref();
      this.#client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
