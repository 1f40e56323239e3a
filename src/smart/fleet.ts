/**
 * The newer plugs found on port 20002: one `SmartPeer` per device (keyed by MAC, else address),
 * its client (`SmartDevice`), and what we know about it — identified, or why not (authentication
 * failed, Third-Party Compatibility needed, a protocol we do not speak, unreachable). Identified
 * devices go to the DeviceRegistry like legacy plugs (same identity rules, same channels); the rest
 * stay listed here so `discover`, /api/devices and /health can say what is wrong and what to do.
 *
 * Each problem is logged once per episode (warn when it starts, info when it ends), never per round
 * or poll; a device whose account fails is retried less and less often.
 */
import type { EnergyStatsSource } from '../discovery/energy-stats.js';
import type { Endpoint, KasaSysinfo, RequestOptions } from '../discovery/kasa.js';
import type { DeviceConnection, DeviceConnector, Observation } from '../discovery/registry.js';
import type { AnswerFailure, EnergyAnswer } from '../discovery/types.js';
import type { Logger } from '../log/logger.js';
import type { Account, CredentialKind } from './credentials.js';
import { SmartDevice, type SmartIdentity } from './device.js';
import type { SmartProbeReply } from './discovery.js';
import { SmartStatsSource } from './energy-stats.js';
import { isSmartError, type SmartError } from './errors.js';
import { chooseTransport, type SmartDiscoveryReply, type TransportChoice } from './tdp.js';

export type SmartProblem =
  | 'authentication failed'
  | 'third-party compatibility'
  | 'unsupported protocol'
  | 'unreachable';

/** What `discover`, /api/devices and /health show of one newer plug. */
export interface SmartPeerSnapshot {
  readonly host: string;
  readonly httpPort: number;
  readonly mac: string | null;
  readonly model: string;
  /** "KLAP", "AES", "TPAP" ... as advertised. */
  readonly encryption: string;
  /** The transport we use: klap (smart or legacy JSON) or aes; null when unsupported. */
  readonly transport: 'klap' | 'klap-iot' | 'aes' | null;
  readonly deviceId: string | null;
  readonly alias: string | null;
  /** null: identified and polled. */
  readonly problem: SmartProblem | null;
  /** What to do about the problem (one actionable sentence). */
  readonly advice: string | null;
  /** Which credential worked (never the credential itself). */
  readonly credential: CredentialKind | null;
  /** null until a handshake was tried. */
  readonly accountWorks: boolean | null;
  readonly identity: SmartIdentity | null;
  readonly sinceMs: number;
}

export interface SmartFleetOptions {
  /** The owner's TP-Link account, or null (only the built-in and blank credentials are tried). */
  readonly account: Account | null;
  /** Per request (handshake included). */
  readonly timeoutMs: number;
  /** First pause before an account that failed is tried again (doubles up to `retryMaxMs`). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
}

interface Peer {
  key: string;
  host: string;
  reply: SmartDiscoveryReply;
  choice: TransportChoice;
  device: SmartDevice | null;
  identity: SmartIdentity | null;
  problem: SmartProblem | null;
  advice: string | null;
  sinceMs: number;
  failures: number;
  retryAtMs: number;
  /** The plug also answered on 9999 before (a firmware update moved it to the newer protocol). */
  wasLegacy: boolean;
}

function adviceFor(problem: SmartProblem, account: Account | null, peer: Peer, error: string): string {
  switch (problem) {
    case 'authentication failed':
      return account === null
        ? 'add your TP-Link account to the config (credentials.username and credentials.password, or KASA_USERNAME / KASA_PASSWORD)'
        : 'check the TP-Link account in the config (credentials.username is case-sensitive); the plug refuses it';
    case 'third-party compatibility':
      return 'enable Third-Party Compatibility in the Kasa/Tapo app (Me → Third-Party Services), then wait for the next discovery round';
    case 'unsupported protocol':
      return `this firmware's protocol is not supported yet (${peer.reply.encryptTypeRaw ?? 'unknown'}${peer.reply.https ? ', HTTPS' : ''})`;
    default:
      return `the plug answers discovery but not on HTTP port ${peer.reply.httpPort}: ${error}`;
  }
}

function transportOf(choice: TransportChoice): SmartPeerSnapshot['transport'] {
  if (choice.kind === 'aes') return 'aes';
  if (choice.kind === 'klap') return choice.payload === 'iot' ? 'klap-iot' : 'klap';
  return null;
}

/** What the registry keeps of an identified newer plug (same shape as a legacy sysinfo). */
export function smartSysinfo(
  device: SmartDevice,
  identity: SmartIdentity,
  peer: { reply: SmartDiscoveryReply },
): KasaSysinfo {
  const iot = device.iotSysinfo;
  if (identity.payload === 'iot' && iot !== null) return iot;
  const outlets = identity.outlets
    .filter((o) => o.energyVersion !== null)
    .map((o) => ({ id: o.id, alias: o.alias }));
  return {
    deviceId: identity.deviceId,
    alias: identity.alias,
    model: identity.model,
    hasEmeter: identity.hasEmeter || outlets.length > 0,
    isPlug: true,
    outlets,
    raw: {
      mac: identity.mac ?? peer.reply.mac,
      hw_ver: identity.hwVer,
      sw_ver: identity.fwVer,
      device_type: peer.reply.deviceType,
      encrypt_type: peer.reply.encryptTypeRaw,
    },
  };
}

export class SmartFleet implements DeviceConnector {
  readonly #peers = new Map<string, Peer>();
  /** deviceId → peer key, for the connections the registry asks for. */
  readonly #byDevice = new Map<string, string>();
  #options: SmartFleetOptions;

  constructor(
    options: SmartFleetOptions,
    private readonly logger: Logger,
    /** Connections for everything that is not a newer plug (the legacy client). */
    private readonly fallback: DeviceConnector,
  ) {
    this.#options = options;
  }

  setOptions(options: SmartFleetOptions): void {
    const accountChanged =
      options.account?.username !== this.#options.account?.username ||
      options.account?.password !== this.#options.account?.password;
    this.#options = options;
    if (accountChanged) {
      // A new account: every client is rebuilt with it and failed plugs are tried at once.
      for (const peer of this.#peers.values()) {
        peer.device?.close();
        peer.device = null;
        peer.retryAtMs = 0;
      }
    }
  }

  /**
   * Handles one discovery round's replies: identifies new plugs (and re-identifies known ones, which
   * also refreshes names and outlets) and returns what the registry should observe. `legacyMacs`:
   * MACs that answered on 9999 this round (such a plug is polled the legacy way; no account needed).
   * `knownLegacyMacs`: MACs of legacy plugs ever seen (to recognise a firmware update).
   */
  async round(
    replies: readonly SmartProbeReply[],
    legacyMacs: ReadonlySet<string>,
    knownLegacyMacs: ReadonlySet<string>,
    nowMs: number = Date.now(),
  ): Promise<Observation[]> {
    const work: Promise<Observation | null>[] = [];
    for (const { host, reply } of replies) {
      if (reply.mac !== null && legacyMacs.has(reply.mac)) continue;
      const peer = this.#peer(host, reply, nowMs);
      if (reply.mac !== null && knownLegacyMacs.has(reply.mac)) peer.wasLegacy = true;
      work.push(this.#visit(peer, nowMs));
    }
    const seen = await Promise.all(work);
    return seen.filter((o): o is Observation => o !== null);
  }

  /**
   * Static hosts that answered neither discovery: a KLAP handshake straight at `port` (80 on real
   * plugs), smart protocol first, then the legacy JSON over KLAP. A host that does not answer
   * is not listed (it may be a legacy plug that is off); a refused login is, like any other.
   */
  async direct(hosts: readonly string[], port: number, nowMs: number = Date.now()): Promise<Observation[]> {
    const work = hosts.map(async (host): Promise<Observation | null> => {
      const key = `direct:${host}:${port}`;
      let peer = this.#peers.get(key);
      if (peer === undefined) {
        const reply: SmartDiscoveryReply = {
          discoveryId: '',
          model: 'unknown',
          modelFull: 'unknown',
          deviceType: 'SMART.UNKNOWN',
          family: 'SMART',
          mac: null,
          ip: host,
          encryption: 'KLAP',
          encryptTypeRaw: 'KLAP',
          httpPort: port,
          loginVersion: null,
          https: false,
          newKlap: false,
          factoryDefault: false,
          owner: null,
          raw: {},
        };
        peer = this.#peer(host, reply, nowMs, key);
      }
      const seen = await this.#visit(peer, nowMs, true);
      if (seen !== null || peer.identity !== null || peer.problem !== null) return seen;
      // Not the smart protocol: the legacy JSON over KLAP (HS300 hw 2.0 and other IOT devices).
      if (
        peer.choice.kind === 'klap' &&
        peer.choice.payload === 'smart' &&
        peer.device?.transport.matched() != null
      ) {
        peer.device.close();
        peer.device = null;
        peer.choice = { kind: 'klap', payload: 'iot' };
        return this.#visit(peer, nowMs, true);
      }
      return null;
    });
    return (await Promise.all(work)).filter((o): o is Observation => o !== null);
  }

  /** Every newer plug seen, identified or not. */
  snapshot(): SmartPeerSnapshot[] {
    return [...this.#peers.values()].map((p) => {
      const match = p.device?.transport.matched() ?? null;
      return {
        host: p.host,
        httpPort: p.reply.httpPort,
        mac: p.reply.mac,
        model: p.identity?.model ?? p.reply.model,
        encryption: p.reply.encryptTypeRaw ?? 'unknown',
        transport: transportOf(p.choice),
        deviceId: p.identity?.deviceId ?? null,
        alias: p.identity?.alias ?? null,
        problem: p.problem,
        advice: p.advice,
        credential: match?.credential ?? null,
        accountWorks: p.problem === 'authentication failed' ? false : match === null ? null : true,
        identity: p.identity,
        sinceMs: p.sinceMs,
      };
    });
  }

  /** The plugs with a problem (for /health). */
  problems(): SmartPeerSnapshot[] {
    return this.snapshot().filter((p) => p.problem !== null);
  }

  connect(sysinfo: KasaSysinfo, endpoint: Endpoint): DeviceConnection {
    if (!this.#byDevice.has(sysinfo.deviceId)) return this.fallback.connect(sysinfo, endpoint);
    return new SmartConnection(this, sysinfo.deviceId, endpoint);
  }

  close(): void {
    for (const peer of this.#peers.values()) peer.device?.close();
  }

  /** The client of the device known as `deviceId` (null when it is not a newer plug we identified). */
  deviceFor(deviceId: string): { device: SmartDevice; peer: Peer } | null {
    const key = this.#byDevice.get(deviceId);
    const peer = key === undefined ? undefined : this.#peers.get(key);
    if (peer === undefined || peer.device === null) return null;
    return { device: peer.device, peer };
  }

  /** A poll through `peer` failed: authentication problems are recorded (once per episode). */
  pollFailed(peer: Peer, error: SmartError, nowMs: number = Date.now()): void {
    if (error.code === 'auth' || error.code === 'third-party-compat') this.#problem(peer, error, nowMs);
  }

  /** A poll answered as `identity` (a new session may show another device at the address). */
  learned(peer: Peer, identity: SmartIdentity): void {
    peer.identity = identity;
    this.#byDevice.set(identity.deviceId, peer.key);
  }

  #peer(host: string, reply: SmartDiscoveryReply, nowMs: number, fixedKey?: string): Peer {
    const key = fixedKey ?? reply.mac ?? host;
    const choice = chooseTransport(reply);
    let peer = this.#peers.get(key);
    if (peer !== undefined) {
      const changed =
        peer.host !== host ||
        peer.reply.httpPort !== reply.httpPort ||
        JSON.stringify(peer.choice) !== JSON.stringify(choice);
      if (changed) {
        peer.device?.close();
        peer.device = null;
        peer.host = host;
        peer.choice = choice;
        peer.retryAtMs = 0;
      }
      peer.reply = reply;
      return peer;
    }
    peer = {
      key,
      host,
      reply,
      choice,
      device: null,
      identity: null,
      problem: null,
      advice: null,
      sinceMs: nowMs,
      failures: 0,
      retryAtMs: 0,
      wasLegacy: false,
    };
    this.#peers.set(key, peer);
    return peer;
  }

  /** `quiet`: a host asked directly that does not answer is not a problem to report. */
  async #visit(peer: Peer, nowMs: number, quiet = false): Promise<Observation | null> {
    const { choice } = peer;
    if (choice.kind === 'unsupported') {
      this.#setProblem(peer, 'unsupported protocol', choice.why, nowMs);
      return null;
    }
    if (peer.problem !== null && nowMs < peer.retryAtMs) return null;
    peer.device ??= new SmartDevice({
      host: peer.host,
      httpPort: peer.reply.httpPort,
      choice,
      account: this.#options.account,
    });
    const device = peer.device;
    try {
      const identity = await device.identify(this.#options.timeoutMs);
      peer.identity = identity;
      this.#byDevice.set(identity.deviceId, peer.key);
      this.#clear(peer, identity);
      return { host: peer.host, port: peer.reply.httpPort, sysinfo: smartSysinfo(device, identity, peer) };
    } catch (err) {
      if (isSmartError(err) && (err.code === 'auth' || err.code === 'third-party-compat')) {
        this.#problem(peer, err, nowMs);
        return null;
      }
      const detail = err instanceof Error ? err.message : String(err);
      if (quiet) return null;
      if (peer.identity === null) this.#setProblem(peer, 'unreachable', detail, nowMs);
      else
        this.logger.debug(
          { host: peer.host, deviceId: peer.identity.deviceId, detail },
          'newer plug did not answer this round',
        );
      return null;
    }
  }

  #problem(peer: Peer, error: SmartError, nowMs: number): void {
    const problem: SmartProblem =
      error.code === 'auth' ? 'authentication failed' : 'third-party compatibility';
    this.#setProblem(peer, problem, error.message, nowMs);
  }

  #setProblem(peer: Peer, problem: SmartProblem, detail: string, nowMs: number): void {
    peer.failures++;
    const base = this.#options.retryBaseMs ?? 60_000;
    const max = this.#options.retryMaxMs ?? 30 * 60_000;
    peer.retryAtMs = nowMs + Math.min(max, base * 2 ** Math.min(20, peer.failures - 1));
    if (peer.problem === problem) return; // same episode: logged once
    peer.problem = problem;
    peer.sinceMs = nowMs;
    let advice = adviceFor(problem, this.#options.account, peer, detail);
    if (peer.wasLegacy && problem !== 'unreachable') {
      advice = `this plug used to answer on port 9999 and now speaks the newer protocol (a firmware update): ${advice}`;
    }
    peer.advice = advice;
    this.logger.warn(
      {
        host: peer.host,
        mac: peer.reply.mac,
        model: peer.reply.model,
        deviceId: peer.identity?.deviceId,
        problem,
      },
      `newer plug ${peer.reply.model} at ${peer.host} (${peer.reply.mac ?? 'no MAC'}): ${problem}: ${advice}`,
    );
  }

  #clear(peer: Peer, identity: SmartIdentity): void {
    peer.failures = 0;
    peer.retryAtMs = 0;
    if (peer.problem === null) return;
    this.logger.info(
      { host: peer.host, mac: peer.reply.mac, deviceId: identity.deviceId, was: peer.problem },
      `newer plug ${identity.model} at ${peer.host} works again`,
    );
    peer.problem = null;
    peer.advice = null;
  }
}

function failureOf(error: unknown): { failure: AnswerFailure; detail: string } {
  if (!isSmartError(error))
    return { failure: 'network', detail: error instanceof Error ? error.message : String(error) };
  switch (error.code) {
    case 'timeout':
    case 'refused':
    case 'network':
      return { failure: error.code, detail: error.message };
    case 'auth':
    case 'third-party-compat':
      // Counted as "not answering" so the poller backs off; the fleet logs the problem (once).
      return { failure: 'refused', detail: `login refused (${error.code}); see the smart_plugs check` };
    default:
      return { failure: 'malformed', detail: error.message };
  }
}

/** The poller's view of one newer plug: energy per channel, with who answered. Never rejects. */
export class SmartConnection implements DeviceConnection {
  #endpoint: Endpoint;

  constructor(
    private readonly fleet: SmartFleet,
    private readonly deviceId: string,
    endpoint: Endpoint,
  ) {
    this.#endpoint = endpoint;
  }

  get endpoint(): Endpoint {
    return this.#endpoint;
  }

  retarget(endpoint: Endpoint): void {
    this.#endpoint = endpoint;
  }

  async getEnergy(childId: string | null, options: RequestOptions): Promise<EnergyAnswer<KasaSysinfo>> {
    const found = this.fleet.deviceFor(this.deviceId);
    if (found === null)
      return { ok: false, failure: 'network', detail: 'newer plug not reachable (not identified)' };
    const { device, peer } = found;
    try {
      const answer = await device.readChannel(childId, options.timeoutMs);
      const identity = device.identity;
      if (identity !== null && identity.deviceId !== this.deviceId) this.fleet.learned(peer, identity);
      if (!answer.ok)
        return { ok: false, failure: 'malformed', detail: `${answer.reason}: ${answer.detail}` };
      const responder = { deviceId: answer.deviceId, childIds: answer.childIds };
      const sysinfo = identity === null ? null : smartSysinfo(device, identity, peer);
      if (answer.kind === 'iot')
        return { ok: true, reply: answer.reply, responder, identity: sysinfo as KasaSysinfo };
      return {
        ok: true,
        reply: answer.energy,
        canonical: answer.energy,
        responder,
        identity: sysinfo as KasaSysinfo,
      };
    } catch (err) {
      if (isSmartError(err)) this.fleet.pollFailed(peer, err);
      return { ok: false, ...failureOf(err) };
    }
  }

  /** The plug's energy statistics (backfill), through the fleet's session with it. */
  statsSource(timeoutMs: number): EnergyStatsSource {
    return new SmartStatsSource(() => this.fleet.deviceFor(this.deviceId)?.device ?? null, timeoutMs);
  }

  close(): void {
    // The fleet owns the device clients (closed with the fleet).
  }
}
