/**
 * The only importer of tplink-smarthome-crypto. Everything outside this module speaks the project's
 * own types: `KasaSysinfo`, `ProbeReply`, `KasaConnection`, `RawResponse`.
 *
 * Discovery uses a UDP socket of our own rather than the library's `startDiscovery()`: the library's
 * socket keeps the kernel's default receive buffer (about 208 KiB), and with a few hundred plugs
 * answering one broadcast at once the replies overflow it and are silently lost (measured: 500
 * simulated plugs took 3.5-19 s to be found instead of 81 ms with a 4 MiB buffer).
 * Energy requests go out on our own sockets too (udp-request.ts, tcp-frame.ts: bounded replies, no
 * per-request overhead), each with `system.get_sysinfo` so that every answer says which device sent
 * it. tplink-smarthome-api itself is only the benchmarks' bare-library baseline
 * (scripts/bench/bare-library.ts): the daemon does not load it.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type * as TplinkCrypto from 'tplink-smarthome-crypto';
import { requireCommonJs } from '../shared/commonjs.js';
import { requestFrame } from './tcp-frame.js';
import type { AnswerFailure, EnergyAnswer, Responder } from './types.js';
import { type DatagramResult, UdpRequester } from './udp-request.js';

/** Loaded with require, not import: see shared/commonjs.ts. */
const { decrypt, encrypt, encryptWithHeader } = requireCommonJs(
  'tplink-smarthome-crypto',
) as typeof TplinkCrypto;

/** Where a device answers: an IPv4 address (or host name) and a UDP/TCP port (9999 on real plugs). */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** One outlet of a power strip. `id` is the full child id: the strip's deviceId + 2-digit index. */
export interface OutletInfo {
  readonly id: string;
  readonly alias: string;
}

/** What we keep of a `system.get_sysinfo` answer. */
export interface KasaSysinfo {
  readonly deviceId: string;
  readonly alias: string;
  readonly model: string;
  /** `feature` contains `ENE` (HS110, HS300, KP115 ...); HS100/HS200 have no energy meter. */
  readonly hasEmeter: boolean;
  /** The library can address it as a plug (sysinfo type `IOT.SMARTPLUGSWITCH` and the fields it needs). */
  readonly isPlug: boolean;
  /** Strip outlets with their full child ids; empty for a single plug. */
  readonly outlets: readonly OutletInfo[];
  /** The sysinfo object as the device sent it (handed to the library to build its device object). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Normalises a child id as strips report it over UDP ("00".."05") to the full id (deviceId + 2 digits). */
export function fullChildId(deviceId: string, childId: string): string {
  if (/^\d{1,2}$/.test(childId)) return deviceId + childId.padStart(2, '0');
  return childId;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deepest nesting of objects and arrays accepted in a device reply. A sysinfo nests 5 deep (a strip
 * outlet's `next_action`); anything much deeper is a malformed reply, refused before it is parsed, so
 * that it cannot exhaust the stack later (structuredClone, JSON.stringify in a log line).
 */
export const MAX_REPLY_NESTING = 16;

/** Whether `text` nests objects/arrays deeper than `max` (brackets inside strings do not count). */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** Parses a decoded device reply into an object, or says why it is not one (a malformed reply). */
export function parseReply(
  text: string,
):
  | { readonly ok: true; readonly value: Record<string, unknown> }
  | { readonly ok: false; readonly detail: string } {
  if (nestsDeeperThan(text, MAX_REPLY_NESTING)) {
    return { ok: false, detail: `reply nests deeper than ${MAX_REPLY_NESTING} levels` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, detail: `not JSON (${text.length} chars)` };
  }
  if (!isRecord(parsed)) return { ok: false, detail: 'reply is not an object' };
  return { ok: true, value: parsed };
}

/**
 * Parses a decoded discovery reply (`{"system":{"get_sysinfo":{...}}}`). Returns null for anything
 * that is not a usable sysinfo (garbage, an error code, a missing deviceId ...).
 */
export function parseSysinfoResponse(text: string): KasaSysinfo | null {
  const reply = parseReply(text);
  if (!reply.ok) return null;
  const parsed = reply.value;
  const system = parsed['system'];
  if (!isRecord(system)) return null;
  const sysinfo = system['get_sysinfo'];
  if (!isRecord(sysinfo)) return null;
  return parseSysinfo(sysinfo);
}

/** Validates one sysinfo object (the content of `system.get_sysinfo`). */
export function parseSysinfo(sysinfo: Record<string, unknown>): KasaSysinfo | null {
  const errCode = sysinfo['err_code'];
  if (errCode !== undefined && errCode !== 0) return null;
  const deviceId = sysinfo['deviceId'];
  const alias = sysinfo['alias'];
  const model = sysinfo['model'];
  if (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > 128) return null;
  if (typeof alias !== 'string' || typeof model !== 'string') return null;
  const feature = typeof sysinfo['feature'] === 'string' ? sysinfo['feature'] : '';
  const hasEmeter = feature.split(':').includes('ENE');
  const type =
    typeof sysinfo['type'] === 'string'
      ? sysinfo['type']
      : typeof sysinfo['mic_type'] === 'string'
        ? sysinfo['mic_type']
        : '';
  const children = sysinfo['children'];
  const outlets: OutletInfo[] = [];
  if (Array.isArray(children)) {
    for (const child of children) {
      if (!isRecord(child) || typeof child['id'] !== 'string') return null;
      const childAlias = typeof child['alias'] === 'string' ? child['alias'] : '';
      outlets.push({ id: fullChildId(deviceId, child['id']), alias: childAlias });
    }
  }
  // Mirrors the library's isPlugSysinfo(): the fields of a plug we know how to poll (and the bench's
  // bare-library baseline can build a device object from).
  const isPlug =
    /plug/i.test(type) &&
    ('mac' in sysinfo || 'ethernet_mac' in sysinfo) &&
    'sw_ver' in sysinfo &&
    'hw_ver' in sysinfo &&
    typeof sysinfo['feature'] === 'string' &&
    ('relay_state' in sysinfo || 'children' in sysinfo);
  return { deviceId, alias, model, hasEmeter, isPlug, outlets, raw: sysinfo };
}

export interface ProbeOptions {
  /** Broadcast addresses the discovery packet goes to (e.g. 255.255.255.255, or 127.255.255.255). */
  readonly broadcast: readonly string[];
  /** Static hosts, each asked directly (unicast). */
  readonly hosts: readonly Endpoint[];
  /** Port for the broadcast addresses. */
  readonly port: number;
  /** How long replies are collected. */
  readonly timeoutMs: number;
  /** SO_RCVBUF asked for (the kernel caps it at net.core.rmem_max). */
  readonly receiveBufferBytes: number;
  /** Ends the round early (replies so far are returned). */
  readonly signal?: AbortSignal;
}

export interface ProbeReply extends Endpoint {
  readonly sysinfo: KasaSysinfo;
  /** Milliseconds from the first packet sent to this reply. */
  readonly elapsedMs: number;
  /**
   * A static host answered from another address than the one asked: `host:port` is the address
   * asked (where requests reach it), this is where the reply came from.
   */
  readonly replyFrom?: Endpoint;
}

export interface ProbeResult {
  /**
   * One reply per deviceId and reply address (the first one received): two addresses answering as
   * one deviceId are both reported, for the registry to see the conflict.
   */
  readonly replies: readonly ProbeReply[];
  /** Replies that did not decode to a usable sysinfo. */
  readonly garbage: number;
  /** Further replies from a deviceId and address already seen this round. */
  readonly duplicates: number;
  /** Destinations the packet could not be sent to. */
  readonly sendErrors: readonly { readonly target: string; readonly error: string }[];
  /** The receive buffer the kernel actually granted (Linux reports twice the value asked for). */
  readonly receiveBufferBytes: number;
  readonly durationMs: number;
}

const SYSINFO_REQUEST = '{"system":{"get_sysinfo":{}}}';

function bindSocket(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    socket.bind(0, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

function sendTo(socket: Socket, packet: Buffer, target: Endpoint): Promise<string | null> {
  return new Promise((resolve) => {
    try {
      socket.send(packet, target.port, target.host, (err) => resolve(err ? err.message : null));
    } catch (err) {
      resolve(err instanceof Error ? err.message : String(err));
    }
  });
}

/**
 * One discovery round: sends the encrypted sysinfo request to every broadcast address and every
 * static host, then collects and decodes replies until `timeoutMs` (or earlier when only static hosts
 * were asked and each has answered). Throws only when no packet could be sent at all.
 *
 * Each static host is asked from a socket of its own, so a reply is attributed to the host asked
 * whatever address it comes from: a round ends early when every host has answered (counted by host,
 * not by reply address), and a plug that answers from another address is polled where it is asked.
 */
export async function probe(options: ProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const broadcastSocket = createSocket({ type: 'udp4' });
  const hostSockets = options.hosts.map(() => createSocket({ type: 'udp4' }));
  const replies = new Map<string, ProbeReply>();
  const answeredHosts = new Set<number>();
  const staticOnly = options.broadcast.length === 0;
  let garbage = 0;
  let duplicates = 0;

  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const timer = setTimeout(() => finish(), options.timeoutMs);
  const onAbort = (): void => finish();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) finish();

  /** `hostIndex`: the static host whose socket received it; null for the broadcast socket. */
  const onMessage = (msg: Buffer, rinfo: RemoteInfo, hostIndex: number | null): void => {
    let sysinfo: KasaSysinfo | null = null;
    try {
      sysinfo = parseSysinfoResponse(decrypt(msg).toString('utf8'));
    } catch {
      sysinfo = null;
    }
    if (sysinfo === null) {
      garbage++;
      return;
    }
    const key = `${sysinfo.deviceId}|${rinfo.address}:${rinfo.port}`;
    const asked = hostIndex === null ? undefined : options.hosts[hostIndex];
    const previous = replies.get(key);
    if (previous !== undefined) duplicates++;
    if (previous === undefined || (asked !== undefined && previous.replyFrom === undefined)) {
      const from = { host: rinfo.address, port: rinfo.port };
      const differs = asked !== undefined && (asked.host !== from.host || asked.port !== from.port);
      replies.set(key, {
        host: asked?.host ?? from.host,
        port: asked?.port ?? from.port,
        sysinfo,
        elapsedMs: previous?.elapsedMs ?? performance.now() - started,
        ...(differs ? { replyFrom: from } : {}),
      });
    }
    if (hostIndex !== null) answeredHosts.add(hostIndex);
    if (staticOnly && answeredHosts.size >= options.hosts.length) finish();
  };
  broadcastSocket.on('message', (msg: Buffer, rinfo: RemoteInfo) => onMessage(msg, rinfo, null));
  hostSockets.forEach((socket, i) => {
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => onMessage(msg, rinfo, i));
  });
  // Errors on an unconnected UDP socket (e.g. ICMP noise) must neither end nor crash the round.
  for (const socket of [broadcastSocket, ...hostSockets]) socket.on('error', () => {});

  try {
    await Promise.all([broadcastSocket, ...hostSockets].map((socket) => bindSocket(socket)));
    broadcastSocket.setBroadcast(true);
    try {
      broadcastSocket.setRecvBufferSize(options.receiveBufferBytes);
    } catch {
      // A kernel refusing the size keeps its default; replies may then be lost with many plugs.
    }
    const granted = broadcastSocket.getRecvBufferSize();

    const packet = encrypt(SYSINFO_REQUEST);
    const targets: { socket: Socket; target: Endpoint }[] = [
      ...options.broadcast.map((host) => ({ socket: broadcastSocket, target: { host, port: options.port } })),
      ...options.hosts.map((target, i) => ({ socket: hostSockets[i] ?? broadcastSocket, target })),
    ];
    if (targets.length === 0) finish();
    const sendResults = await Promise.all(
      targets.map(async ({ socket, target }) => ({ target, error: await sendTo(socket, packet, target) })),
    );
    const sendErrors = sendResults
      .filter((r): r is { target: Endpoint; error: string } => r.error !== null)
      .map((r) => ({ target: `${r.target.host}:${r.target.port}`, error: r.error }));
    if (targets.length > 0 && sendErrors.length === targets.length) {
      throw new Error(
        `discovery packet could not be sent to any destination: ${sendErrors.map((e) => `${e.target} (${e.error})`).join(', ')}`,
      );
    }
    await done;
    return {
      replies: [...replies.values()],
      garbage,
      duplicates,
      sendErrors,
      receiveBufferBytes: granted,
      durationMs: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    for (const socket of [broadcastSocket, ...hostSockets]) socket.close();
  }
}

export type { RequestFailure } from '../domain/request-failure.js';

export type RawResponse =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly failure: AnswerFailure; readonly detail: string };

export type Transport = 'udp' | 'tcp';

export interface RequestOptions {
  readonly transport: Transport;
  readonly timeoutMs: number;
}

export interface EnergyRequestOptions extends RequestOptions {
  /**
   * Ask who answers in the same request (default true). The poller asks on the first request of
   * each device's job; a strip's further outlets, polled right after on the same connection, skip
   * it: the strip's sysinfo is 1.5 KiB, six times per strip would be most of the CPU per reading.
   */
  readonly identify?: boolean;
}

/** A library logger that forwards to ours at debug: the library logs every timeout as an error. */

const REALTIME_REQUEST = '{"emeter":{"get_realtime":{}}}';

/** The `get_realtime` payload for a plug, or for one outlet of a strip. */
export function realtimePayload(childId: string | null): string {
  return childId === null
    ? REALTIME_REQUEST
    : `{"context":{"child_ids":[${JSON.stringify(childId)}]},"emeter":{"get_realtime":{}}}`;
}

const ENERGY_REQUEST = '{"system":{"get_sysinfo":{}},"emeter":{"get_realtime":{}}}';

/**
 * The energy query with the device's identity in the same request: the legacy protocol answers
 * several modules at once, so every poll says who answered (deviceId, and a strip's child ids).
 */
export function energyPayload(childId: string | null): string {
  return childId === null
    ? ENERGY_REQUEST
    : `{"context":{"child_ids":[${JSON.stringify(childId)}]},"system":{"get_sysinfo":{}},"emeter":{"get_realtime":{}}}`;
}

/** The legacy transport's energy answer: the responder's sysinfo is what the registry learns. */
export type KasaEnergyAnswer = EnergyAnswer<KasaSysinfo>;

/** Reads the responder out of a reply to `energyPayload()`; null when it carries no usable sysinfo. */
export function responderOf(
  reply: Record<string, unknown>,
): { responder: Responder; sysinfo: KasaSysinfo } | null {
  const system = reply['system'];
  if (!isRecord(system)) return null;
  const raw = system['get_sysinfo'];
  if (!isRecord(raw)) return null;
  const sysinfo = parseSysinfo(raw);
  if (sysinfo === null) return null;
  return { responder: { deviceId: sysinfo.deviceId, childIds: sysinfo.outlets.map((o) => o.id) }, sysinfo };
}

/**
 * The connection to one device: UDP on a socket of its own (src/discovery/udp-request.ts) or one
 * TCP connection per request (src/discovery/tcp-frame.ts). Re-targeted (socket closed) when the
 * device is found at another address.
 */
export class KasaConnection {
  #endpoint: Endpoint;
  readonly #udp = new UdpRequester();
  /** Encrypted requests, made once per payload: UDP as is, TCP with its length header. */
  readonly #packets = new Map<string, { udp?: Buffer; tcp?: Buffer }>();
  readonly #payloads = new Map<string | null, string>();
  readonly #realtimePayloads = new Map<string | null, string>();

  constructor(
    /** The sysinfo the device answered discovery with. */
    readonly sysinfo: KasaSysinfo,
    endpoint: Endpoint,
  ) {
    this.#endpoint = endpoint;
  }

  get endpoint(): Endpoint {
    return this.#endpoint;
  }

  /** Points the connection at a new address; open sockets to the old one are closed. */
  retarget(endpoint: Endpoint): void {
    if (endpoint.host === this.#endpoint.host && endpoint.port === this.#endpoint.port) return;
    this.close();
    this.#endpoint = endpoint;
  }

  /**
   * Sends `emeter.get_realtime` (for `childId`'s outlet when given) together with
   * `system.get_sysinfo`, and resolves with the parsed reply and who sent it, or with the reason
   * there is none. Never rejects.
   */
  async getEnergy(childId: string | null, options: EnergyRequestOptions): Promise<KasaEnergyAnswer> {
    const identify = options.identify ?? true;
    const payloads = identify ? this.#payloads : this.#realtimePayloads;
    let payload = payloads.get(childId);
    if (payload === undefined) {
      payload = identify ? energyPayload(childId) : realtimePayload(childId);
      payloads.set(childId, payload);
    }
    const response = await this.send(payload, options);
    if (!response.ok) return response;
    const parsed = parseReply(response.text);
    if (!parsed.ok) return { ok: false, failure: 'malformed', detail: parsed.detail };
    if (!identify) return { ok: true, reply: parsed.value, responder: null, identity: null };
    const who = responderOf(parsed.value);
    if (who === null) {
      return {
        ok: false,
        failure: 'malformed',
        detail: 'the answer does not say which device sent it (no sysinfo)',
      };
    }
    return { ok: true, reply: parsed.value, responder: who.responder, identity: who.sysinfo };
  }

  /** Sends any payload; resolves with the decoded text or a failure. Never rejects. */
  async send(payload: string, options: RequestOptions): Promise<RawResponse> {
    const { host, port } = this.#endpoint;
    let packets = this.#packets.get(payload);
    if (packets === undefined) {
      packets = {};
      // Only the poller's few fixed payloads repeat; anything else is not worth keeping.
      if (this.#packets.size < 32) this.#packets.set(payload, packets);
    }
    let result: DatagramResult;
    if (options.transport === 'tcp') {
      packets.tcp ??= encryptWithHeader(payload);
      result = await requestFrame(host, port, packets.tcp, { timeoutMs: options.timeoutMs });
    } else {
      packets.udp ??= encrypt(payload);
      result = await this.#udp.request(host, port, packets.udp, options.timeoutMs);
    }
    if (!result.ok) return result;
    return { ok: true, text: decrypt(result.body).toString('utf8') };
  }

  /** Closes the device's sockets (a later request opens new ones). */
  close(): void {
    this.#udp.close();
  }
}

/** Factory of device connections. */
export class KasaClient {
  connect(sysinfo: KasaSysinfo, endpoint: Endpoint): KasaConnection {
    return new KasaConnection(sysinfo, endpoint);
  }
}
