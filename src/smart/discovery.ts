/**
 * One round of port-20002 discovery: the keyed probe to every broadcast address and static host,
 * replies collected until the timeout (or, with static hosts only, until each has answered).
 * Replies are classified by content, never by source port, and de-duplicated by address (first
 * reply wins). Everything in a reply is untrusted (see tdp.ts).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { discoveryPublicKey, encodeProbe, parseReply, type SmartDiscoveryReply } from './tdp.js';

export interface SmartProbeOptions {
  readonly broadcast: readonly string[];
  readonly hosts: readonly string[];
  /** Discovery port (20002 on real plugs): where probes go. */
  readonly port: number;
  readonly timeoutMs: number;
  readonly receiveBufferBytes?: number;
  readonly signal?: AbortSignal;
}

export interface SmartProbeReply {
  /** The address the reply came from (where to open HTTP). */
  readonly host: string;
  readonly reply: SmartDiscoveryReply;
  readonly elapsedMs: number;
}

export interface SmartProbeResult {
  readonly replies: readonly SmartProbeReply[];
  readonly garbage: number;
  readonly sendErrors: readonly { readonly target: string; readonly error: string }[];
  readonly durationMs: number;
}

function bind(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function sendTo(socket: Socket, packet: Buffer, host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    try {
      socket.send(packet, port, host, (err) => resolve(err ? err.message : null));
    } catch (err) {
      resolve(err instanceof Error ? err.message : String(err));
    }
  });
}

export async function probeSmart(options: SmartProbeOptions): Promise<SmartProbeResult> {
  // The key first (generated once, off the event loop): its time must not eat the listening window.
  const packet = encodeProbe(await discoveryPublicKey());
  const started = performance.now();
  const socket = createSocket({ type: 'udp4' });
  const replies = new Map<string, SmartProbeReply>();
  const staticOnly = options.broadcast.length === 0;
  let garbage = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const timer = setTimeout(() => finish(), options.timeoutMs);
  const onAbort = (): void => finish();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) finish();

  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const reply = parseReply(msg);
    if (reply === null) {
      // Our own probe looped back by a broadcast, or noise: not a device.
      garbage++;
      return;
    }
    if (!replies.has(rinfo.address)) {
      replies.set(rinfo.address, { host: rinfo.address, reply, elapsedMs: performance.now() - started });
    }
    if (staticOnly && replies.size >= options.hosts.length) finish();
  });
  socket.on('error', () => {});
  try {
    await bind(socket);
    socket.setBroadcast(true);
    try {
      if (options.receiveBufferBytes !== undefined) socket.setRecvBufferSize(options.receiveBufferBytes);
    } catch {
      // the kernel keeps its default
    }
    const targets = [...options.broadcast, ...options.hosts];
    if (targets.length === 0) finish();
    const results = await Promise.all(
      targets.map(async (host) => ({
        target: `${host}:${options.port}`,
        error: await sendTo(socket, packet, host, options.port),
      })),
    );
    const sendErrors = results.filter((r): r is { target: string; error: string } => r.error !== null);
    await done;
    return { replies: [...replies.values()], garbage, sendErrors, durationMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    socket.close();
  }
}
