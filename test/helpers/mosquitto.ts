/**
 * A real Mosquitto broker for the MQTT tests (Debian package `mosquitto`), started on a loopback
 * address and port with its own config file (no persistence: a restart forgets every retained
 * message, as a broker without persistence would), optionally with a password file made with
 * mosquitto_passwd. Plus a test client (MQTT.js) that subscribes and keeps what it receives.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { sleep } from './wait.js';

export const MOSQUITTO_BINARY = '/usr/sbin/mosquitto';

export interface MosquittoOptions {
  readonly host: string;
  readonly port: number;
  /** Users and passwords; anonymous access is refused when set. */
  readonly users?: Readonly<Record<string, string>>;
  /** TLS (mqtts://) with a certificate for `host` signed by a CA made here (see `caFile`). */
  readonly tls?: boolean;
}

export class Mosquitto {
  readonly #dir = mkdtempSync(join(tmpdir(), 'kasa-mosquitto-'));
  #child: ChildProcess | null = null;
  log = '';

  constructor(readonly options: MosquittoOptions) {
    const lines = [`listener ${options.port} ${options.host}`, 'persistence false', 'log_dest stderr'];
    // As root, mosquitto would switch to the user `mosquitto`, who cannot read this private directory.
    if (process.getuid?.() === 0) lines.push('user root');
    if (options.users !== undefined) {
      const file = join(this.#dir, 'passwords');
      writeFileSync(file, '');
      for (const [user, password] of Object.entries(options.users)) {
        execFileSync('mosquitto_passwd', ['-b', file, user, password]);
      }
      lines.push('allow_anonymous false', `password_file ${file}`);
    } else {
      lines.push('allow_anonymous true');
    }
    if (options.tls === true) {
      makeCertificates(this.#dir, options.host);
      lines.push(
        `cafile ${this.caFile}`,
        `certfile ${join(this.#dir, 'server.crt')}`,
        `keyfile ${join(this.#dir, 'server.key')}`,
      );
    }
    writeFileSync(join(this.#dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
  }

  /** The CA that signed the broker's certificate (TLS only). */
  get caFile(): string {
    return join(this.#dir, 'ca.crt');
  }

  get url(): string {
    return `${this.options.tls === true ? 'mqtts' : 'mqtt'}://${this.options.host}:${this.options.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(MOSQUITTO_BINARY, ['-c', join(this.#dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    this.#child = child;
    const end = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${this.log}`);
      if (await accepts(this.options.host, this.options.port)) return;
      if (Date.now() > end) throw new Error(`mosquitto did not listen: ${this.log}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A throw-away CA and a server certificate for `ip` (subjectAltName IP), with openssl. */
function makeCertificates(dir: string, ip: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=kasa-monitor test CA',
  );
  run(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    `/CN=${ip}`,
  );
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=IP:${ip}\n`);
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly retain: boolean;
  readonly atMs: number;
}

/** A client subscribed to `filter` that keeps every message; reconnects by itself (1 s). */
export class Subscriber {
  readonly messages: Received[] = [];
  readonly #client: MqttClient;

  private constructor(client: MqttClient) {
    this.#client = client;
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString(), retain: packet.retain, atMs: Date.now() });
    });
  }

  static async start(
    url: string,
    filter = '#',
    auth: { username: string; password: string } | null = null,
    ca: string | null = null,
  ): Promise<Subscriber> {
    const client = connect(url, {
      reconnectPeriod: 500,
      resubscribe: true,
      ...(auth === null ? {} : auth),
      ...(ca === null ? {} : { ca: readFileSync(ca) }),
    });
    const subscriber = new Subscriber(client);
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await client.subscribeAsync(filter, { qos: 1 });
    return subscriber;
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  last(topic: string): Received | undefined {
    return this.on(topic).at(-1);
  }

  async stop(): Promise<void> {
    await this.#client.endAsync(true);
  }
}
