/**
 * A hand-made legacy Kasa plug on loopback for faults the simulator cannot produce: replies from
 * another address than the one asked, oversized TCP frames, hostile JSON. It speaks the protocol
 * itself (the XOR autokey cipher, starting key 171; TCP frames with a 4-byte length), so the code
 * under test sees exactly the bytes a misbehaving device would send.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';

export function encrypt(text: string): Buffer {
  const input = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(input.length);
  let key = 171;
  for (let i = 0; i < input.length; i++) {
    key = (input[i] as number) ^ key;
    out[i] = key;
  }
  return out;
}

export function decrypt(input: Buffer): string {
  const out = Buffer.alloc(input.length);
  let key = 171;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i] as number;
    out[i] = byte ^ key;
    key = byte;
  }
  return out.toString('utf8');
}

/** A sysinfo as an HS110 v2 reports it (enough for the daemon to poll it as a metered plug). */
export function plugSysinfo(deviceId: string, alias: string): Record<string, unknown> {
  return {
    sw_ver: '1.5.2 Build 180130 Rel.085820',
    hw_ver: '2.0',
    type: 'IOT.SMARTPLUGSWITCH',
    model: 'HS110(EU)',
    mac: '50:c7:bf:00:00:01',
    feature: 'TIM:ENE',
    relay_state: 1,
    alias,
    deviceId,
    err_code: 0,
  };
}

export interface FakePlugOptions {
  readonly address: string;
  readonly port: number;
  readonly sysinfo: Record<string, unknown>;
  /** UDP replies are sent from this address (same port) instead of `address`. */
  readonly replyFrom?: string;
  /** Realtime in new-firmware units; default 1 W at 230 V. */
  readonly realtime?: Record<string, unknown>;
  /** Replaces the whole answer to any request but discovery (decoded request in, reply text out). */
  readonly answer?: (request: string) => string;
  /** Takes over a TCP connection once its request has arrived (raw bytes, no framing done for it). */
  readonly tcp?: (socket: TcpSocket) => void;
}

export interface FakePlug {
  /** Requests received (decoded), UDP and TCP. */
  readonly requests: string[];
  stop(): Promise<void>;
}

function bind(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/** Starts the fake plug: UDP and TCP on `address:port`. */
export async function startFakePlug(options: FakePlugOptions): Promise<FakePlug> {
  const requests: string[] = [];
  const realtime = options.realtime ?? {
    power_mw: 1000,
    voltage_mv: 230_000,
    current_ma: 5,
    total_wh: 10,
    err_code: 0,
  };
  const reply = (request: string): string => {
    if (options.answer !== undefined && request.includes('get_realtime')) return options.answer(request);
    const parsed = JSON.parse(request) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    if ('system' in parsed) out['system'] = { get_sysinfo: options.sysinfo };
    if ('emeter' in parsed) out['emeter'] = { get_realtime: realtime };
    return JSON.stringify(out);
  };

  const udp = createSocket('udp4');
  await bind(udp, options.port, options.address);
  let sender = udp;
  if (options.replyFrom !== undefined) {
    sender = createSocket('udp4');
    await bind(sender, options.port, options.replyFrom);
  }
  udp.on('message', (msg, rinfo) => {
    const request = decrypt(msg);
    requests.push(request);
    sender.send(encrypt(reply(request)), rinfo.port, rinfo.address);
  });
  udp.on('error', () => {});
  sender.on('error', () => {});

  const connections = new Set<TcpSocket>();
  const server: Server = createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    const onData = (data: Buffer): void => {
      buffered = Buffer.concat([buffered, data]);
      if (buffered.length < 4) return;
      const length = buffered.readUInt32BE(0);
      if (buffered.length < 4 + length) return;
      socket.off('data', onData);
      const request = decrypt(buffered.subarray(4, 4 + length));
      requests.push(request);
      if (options.tcp !== undefined) {
        options.tcp(socket);
        return;
      }
      const body = encrypt(reply(request));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(body.length);
      socket.end(Buffer.concat([header, body]));
    };
    socket.on('data', onData);
  });
  server.listen(options.port, options.address);
  await once(server, 'listening');

  return {
    requests,
    async stop() {
      udp.close();
      if (sender !== udp) sender.close();
      for (const socket of connections) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
