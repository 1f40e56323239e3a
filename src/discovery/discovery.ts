import { createSilentLogger, type Logger } from '../log/logger.js';
import type { Account } from '../smart/credentials.js';
import { probeSmart, type SmartProbeResult } from '../smart/discovery.js';
import { SmartFleet, type SmartPeerSnapshot, type SmartProblem } from '../smart/fleet.js';
import { noPlugsHints } from './hints.js';
import {
  type Endpoint,
  KasaClient,
  type KasaSysinfo,
  type ProbeReply,
  type ProbeResult,
  probe,
} from './kasa.js';
import { DeviceRegistry, type DeviceSnapshot, type IdentityConflict } from './registry.js';

export interface DiscoveryOptions {
  /** Broadcast addresses (e.g. 255.255.255.255 on a LAN, 127.255.255.255 for simulated plugs). */
  readonly broadcast: readonly string[];
  /** Port the discovery packet is sent to (9999 on real plugs); default port of static hosts. */
  readonly port: number;
  /** Time from the start of one round to the start of the next. */
  readonly intervalMs: number;
  /** How long a round collects replies. */
  readonly timeoutMs: number;
  /** Static hosts, asked directly each round: 'host' or 'host:port'. */
  readonly hosts: readonly string[];
  /** Consecutive missed rounds (or failed polls) before a device is offline. */
  readonly offlineTolerance: number;
  /** SO_RCVBUF of the discovery socket: 500 plugs answering at once need about 1-2 MiB. */
  readonly receiveBufferBytes: number;
  /**
   * UDP port of the newer plugs' discovery (20002 on real plugs), asked at the same broadcast
   * addresses and static hosts every round; absent: legacy discovery only.
   */
  readonly smartPort?: number | undefined;
  /** The TP-Link account for the newer plugs' handshakes (null: built-in and blank credentials only). */
  readonly account?: Account | null | undefined;
  /** Per-request timeout of the newer plugs' handshakes and identification (default: timeoutMs). */
  readonly smartRequestTimeoutMs?: number | undefined;
  /** Where a static host that answers neither discovery is asked for KLAP directly (80 on real plugs). */
  readonly directKlapPort?: number | undefined;
}

/** 4 MiB: enough for thousands of sysinfo replies arriving at once. */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export interface DiscoveryStats {
  readonly rounds: number;
  readonly failedRounds: number;
  readonly lastRoundAtMs: number | null;
  readonly lastRoundDurationMs: number | null;
  /** Devices that answered the last round. */
  readonly lastRoundFound: number;
  /** Undecodable replies, ever. */
  readonly garbageReplies: number;
  /** Receive buffer the kernel granted in the last round. */
  readonly receiveBufferBytes: number | null;
  readonly running: boolean;
  /** Identities claimed twice right now (a spoofed deviceId, a strip child id equal to a plug's). */
  readonly identityConflicts: readonly IdentityConflict[];
  /** Newer plugs (port 20002) seen, with their problem when they are not polled. */
  readonly smartPlugs: readonly SmartPeerSnapshot[];
}

/** A legacy sysinfo's MAC in the form port-20002 replies use ("AA-BB-..."), or null. */
export function legacyMac(sysinfo: KasaSysinfo): string | null {
  const raw = sysinfo.raw['mac'] ?? sysinfo.raw['ethernet_mac'] ?? sysinfo.raw['mic_mac'];
  if (typeof raw !== 'string' || raw.length > 32) return null;
  const hex = raw.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  return hex.length === 12 ? (hex.match(/../g)?.join('-') ?? null) : null;
}

function smartFleetOptions(options: DiscoveryOptions) {
  return { account: options.account ?? null, timeoutMs: options.smartRequestTimeoutMs ?? options.timeoutMs };
}

/** Parses 'host' or 'host:port' (IPv4 or name). Throws RangeError on a bad port. */
export function parseHostPort(spec: string, defaultPort: number): Endpoint {
  const trimmed = spec.trim();
  const match = /^(.+):(\d+)$/.exec(trimmed);
  if (match === null) return { host: trimmed, port: defaultPort };
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`bad port in host "${spec}"`);
  }
  return { host: match[1] ?? trimmed, port };
}

/**
 * Periodic discovery feeding a DeviceRegistry: one round at start, then one every `intervalMs`
 * (measured start to start; never two at once). A failed round is logged and counted, never thrown,
 * and does not count as a miss for the devices (we could not look, they did not go away).
 */
export class Discovery {
  readonly name = 'discovery';
  readonly registry: DeviceRegistry;
  #options: DiscoveryOptions;
  #hosts: Endpoint[];
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #round: Promise<ProbeResult | null> | null = null;
  #abort: AbortController | null = null;
  #lastRoundStart = 0;
  #rounds = 0;
  #hintedNoPlugs = false;
  #failedRounds = 0;
  #lastRoundAtMs: number | null = null;
  #lastRoundDurationMs: number | null = null;
  #lastRoundFound = 0;
  #garbage = 0;
  #receiveBuffer: number | null = null;
  /** The newer plugs (null when smart discovery is off). */
  readonly smart: SmartFleet | null;
  /** MACs of legacy plugs ever seen (to recognise one that a firmware update moved to port 20002). */
  readonly #legacyMacs = new Set<string>();

  constructor(
    options: DiscoveryOptions,
    private readonly logger: Logger,
    registry?: DeviceRegistry,
  ) {
    this.#options = options;
    this.#hosts = options.hosts.map((h) => parseHostPort(h, options.port));
    this.smart =
      options.smartPort === undefined
        ? null
        : new SmartFleet(smartFleetOptions(options), logger.child({ part: 'smart' }), new KasaClient());
    this.registry =
      registry ??
      new DeviceRegistry({ offlineTolerance: options.offlineTolerance }, logger, this.smart ?? undefined);
  }

  get options(): DiscoveryOptions {
    return this.#options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop();
  }

  /** Stops the rounds (a round in progress ends now) and closes every device socket. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#abort?.abort();
    await this.#round;
    this.registry.close();
    this.smart?.close();
  }

  /** Applies reloaded options: the next round uses them; a changed interval reschedules. */
  reconfigure(options: DiscoveryOptions): void {
    const hosts = options.hosts.map((h) => parseHostPort(h, options.port));
    const intervalChanged = options.intervalMs !== this.#options.intervalMs;
    this.#options = options;
    this.#hosts = hosts;
    this.registry.setOfflineTolerance(options.offlineTolerance);
    this.smart?.setOptions(smartFleetOptions(options));
    if (this.#running && intervalChanged && this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
      this.#scheduleNext();
    }
  }

  /**
   * Runs one round now (or joins the one in progress) and feeds the registry.
   * Resolves with the probe result, or null when the round failed.
   */
  runRound(): Promise<ProbeResult | null> {
    if (this.#round !== null) return this.#round;
    const round = this.#doRound().finally(() => {
      this.#round = null;
    });
    this.#round = round;
    return round;
  }

  stats(): DiscoveryStats {
    return {
      rounds: this.#rounds,
      failedRounds: this.#failedRounds,
      lastRoundAtMs: this.#lastRoundAtMs,
      lastRoundDurationMs: this.#lastRoundDurationMs,
      lastRoundFound: this.#lastRoundFound,
      garbageReplies: this.#garbage,
      receiveBufferBytes: this.#receiveBuffer,
      running: this.#running,
      identityConflicts: this.registry.conflicts(),
      smartPlugs: this.smart?.snapshot() ?? [],
    };
  }

  /** The port-20002 probe of one round; a failure costs the smart part of the round only. */
  async #smartProbe(
    options: DiscoveryOptions,
    port: number,
    signal: AbortSignal,
  ): Promise<SmartProbeResult | null> {
    try {
      const result = await probeSmart({
        broadcast: options.broadcast,
        hosts: this.#hosts.map((h) => h.host),
        port,
        timeoutMs: options.timeoutMs,
        receiveBufferBytes: options.receiveBufferBytes,
        signal,
      });
      for (const e of result.sendErrors) {
        this.logger.debug({ target: e.target, error: e.error }, 'port-20002 discovery packet not sent');
      }
      return result;
    } catch (err) {
      this.logger.warn({ err }, 'port-20002 discovery failed this round');
      return null;
    }
  }

  #loop(): void {
    if (!this.#running) return;
    // Monotonic: a wall clock stepped back must not pause discovery for as long as the step.
    this.#lastRoundStart = performance.now();
    void this.runRound().then(() => this.#scheduleNext());
  }

  #scheduleNext(): void {
    if (!this.#running || this.#round !== null) return;
    const delay = Math.max(0, this.#lastRoundStart + this.#options.intervalMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#loop();
    }, delay);
  }

  async #doRound(): Promise<ProbeResult | null> {
    const options = this.#options;
    const abort = new AbortController();
    this.#abort = abort;
    const startedAt = Date.now();
    try {
      const smartPort = this.smart === null ? undefined : options.smartPort;
      const [result, smartResult] = await Promise.all([
        probe({
          broadcast: options.broadcast,
          hosts: this.#hosts,
          port: options.port,
          timeoutMs: options.timeoutMs,
          receiveBufferBytes: options.receiveBufferBytes,
          signal: abort.signal,
        }),
        smartPort === undefined ? null : this.#smartProbe(options, smartPort, abort.signal),
      ]);
      this.#rounds++;
      this.#garbage += result.garbage;
      if (this.#receiveBuffer === null && result.receiveBufferBytes < options.receiveBufferBytes) {
        // Once per start: the kernel caps SO_RCVBUF at net.core.rmem_max, and with hundreds of plugs
        // answering at once the excess replies are lost until the limit is raised.
        this.logger.warn(
          { asked: options.receiveBufferBytes, granted: result.receiveBufferBytes },
          'discovery receive buffer smaller than configured; with many plugs raise net.core.rmem_max',
        );
      }
      this.#receiveBuffer = result.receiveBufferBytes;
      this.#lastRoundAtMs = startedAt;
      this.#lastRoundDurationMs = result.durationMs;
      this.#lastRoundFound = new Set(result.replies.map((r) => r.sysinfo.deviceId)).size;
      if (abort.signal.aborted) return result; // stopped mid-round: do not count misses
      const now = Date.now();
      const seen = new Set<string>();
      for (const reply of result.replies) {
        seen.add(reply.sysinfo.deviceId);
        this.registry.observe(reply, now);
      }
      if (this.smart !== null && smartResult !== null) {
        const legacyNow = new Set<string>();
        for (const reply of result.replies) {
          const mac = legacyMac(reply.sysinfo);
          if (mac === null) continue;
          legacyNow.add(mac);
          this.#legacyMacs.add(mac);
        }
        // A plug heard on both ports is polled the legacy way (no account needed).
        const observations = await this.smart.round(smartResult.replies, legacyNow, this.#legacyMacs, now);
        // Static hosts silent on both ports: a KLAP handshake straight at the device.
        const answered = new Set([
          ...result.replies.map((r) => r.host),
          ...smartResult.replies.map((r) => r.host),
        ]);
        const silent = [...new Set(this.#hosts.map((h) => h.host))].filter((h) => !answered.has(h));
        if (silent.length > 0) {
          observations.push(...(await this.smart.direct(silent, options.directKlapPort ?? 80, now)));
        }
        if (abort.signal.aborted) return result;
        const identifiedAt = Date.now();
        for (const observation of observations) {
          seen.add(observation.sysinfo.deviceId);
          this.registry.observe(observation, identifiedAt);
        }
        this.#lastRoundFound += observations.length;
      }
      this.registry.endRound(seen, now);
      if (!this.#hintedNoPlugs && this.registry.counts().devices === 0) {
        // Once per start, not every round: what was tried and what to try instead.
        this.#hintedNoPlugs = true;
        const [what, ...tries] = noPlugsHints({
          broadcast: options.broadcast,
          port: options.port,
          hosts: options.hosts,
        });
        this.logger.warn({ broadcast: options.broadcast }, `${what}; try: ${tries.join('; ')}`);
      }
      for (const e of result.sendErrors) {
        this.logger.warn({ target: e.target, error: e.error }, 'discovery packet not sent');
      }
      this.logger.debug(
        {
          found: this.#lastRoundFound,
          garbage: result.garbage,
          durationMs: Math.round(result.durationMs),
          receiveBufferBytes: result.receiveBufferBytes,
        },
        'discovery round done',
      );
      return result;
    } catch (err) {
      this.#rounds++;
      this.#failedRounds++;
      this.#lastRoundAtMs = startedAt;
      this.logger.warn({ err }, 'discovery round failed');
      return null;
    } finally {
      if (this.#abort === abort) this.#abort = null;
    }
  }
}

/** One plug as the `discover` command lists it (each device once, outlets inside its entry). */
export interface DiscoveredDevice {
  /** deviceId; null for a newer plug that could not be identified (see `state`). */
  readonly id: string | null;
  readonly alias: string;
  readonly model: string;
  readonly host: string;
  /** The legacy port (9999), or the HTTP port a newer plug advertised. */
  readonly port: number;
  readonly mac: string | null;
  /** null when unknown (a newer plug we could not log in to). */
  readonly hasEmeter: boolean | null;
  readonly outlets: DeviceSnapshot['outlets'];
  /** legacy (XOR on 9999), klap (smart protocol), klap-iot (legacy JSON over KLAP), aes; null: unsupported. */
  readonly transport: 'legacy' | 'klap' | 'klap-iot' | 'aes' | null;
  /** Whether the TP-Link account (or a built-in credential) works; null when none is needed or it was not tried. */
  readonly accountWorks: boolean | null;
  /** Which credential matched: account, default-kasa, default-tapo, blank; null for legacy plugs. */
  readonly credential: string | null;
  /** ok, or what keeps a newer plug from being polled. */
  readonly state: 'ok' | SmartProblem;
  /** What to do about `state`. */
  readonly advice: string | null;
}

export interface DiscoverOnceOptions {
  readonly broadcast: readonly string[];
  readonly port: number;
  readonly timeoutMs: number;
  readonly hosts: readonly string[];
  readonly receiveBufferBytes?: number;
  /** Also ask the newer plugs (port 20002 on real plugs) and log in to them; absent: legacy only. */
  readonly smartPort?: number | undefined;
  readonly account?: Account | null | undefined;
  readonly logger?: Logger | undefined;
}

/**
 * One-shot discovery for the `discover` command: one round, sorted by alias then id.
 * Throws when no discovery packet could be sent at all (e.g. a bad broadcast address).
 */
export async function discoverOnce(options: DiscoverOnceOptions): Promise<DiscoveredDevice[]> {
  const hosts = options.hosts.map((h) => parseHostPort(h, options.port));
  const [result, smartResult] = await Promise.all([
    probe({
      broadcast: options.broadcast,
      hosts,
      port: options.port,
      timeoutMs: options.timeoutMs,
      receiveBufferBytes: options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES,
    }),
    options.smartPort === undefined
      ? null
      : probeSmart({
          broadcast: options.broadcast,
          hosts: hosts.map((h) => h.host),
          port: options.smartPort,
          timeoutMs: options.timeoutMs,
        }).catch(() => null),
  ]);
  const firstPerDevice = new Map<string, ProbeReply>();
  for (const reply of result.replies) {
    if (!firstPerDevice.has(reply.sysinfo.deviceId)) firstPerDevice.set(reply.sysinfo.deviceId, reply);
  }
  const devices: DiscoveredDevice[] = [...firstPerDevice.values()].map((r) => ({
    id: r.sysinfo.deviceId,
    alias: r.sysinfo.alias,
    model: r.sysinfo.model,
    host: r.host,
    port: r.port,
    mac: legacyMac(r.sysinfo),
    hasEmeter: r.sysinfo.hasEmeter,
    outlets: r.sysinfo.outlets,
    transport: 'legacy',
    accountWorks: null,
    credential: null,
    state: 'ok',
    advice: null,
  }));
  if (smartResult !== null) {
    const legacyMacs = new Set(devices.flatMap((d) => (d.mac === null ? [] : [d.mac])));
    const logger = options.logger ?? createSilentLogger();
    const fleet = new SmartFleet(
      { account: options.account ?? null, timeoutMs: Math.max(1_000, options.timeoutMs) },
      logger,
      new KasaClient(),
    );
    try {
      const observations = await fleet.round(smartResult.replies, legacyMacs, new Set());
      const seen = new Set(devices.map((d) => d.id));
      for (const peer of fleet.snapshot()) {
        const observed = observations.find((o) => o.host === peer.host);
        const sysinfo = observed?.sysinfo;
        if (sysinfo !== undefined && seen.has(sysinfo.deviceId)) continue;
        if (sysinfo !== undefined) seen.add(sysinfo.deviceId);
        devices.push({
          id: sysinfo?.deviceId ?? null,
          alias: sysinfo?.alias ?? peer.alias ?? '',
          model: peer.model,
          host: peer.host,
          port: peer.httpPort,
          mac: peer.mac,
          hasEmeter: sysinfo?.hasEmeter ?? null,
          outlets: sysinfo?.outlets ?? [],
          transport: peer.transport,
          accountWorks: peer.accountWorks,
          credential: peer.credential,
          state: peer.problem ?? 'ok',
          advice: peer.advice,
        });
      }
    } finally {
      fleet.close();
    }
  }
  return devices.sort(
    (a, b) =>
      a.alias.localeCompare(b.alias) ||
      (a.id ?? '').localeCompare(b.id ?? '') ||
      a.host.localeCompare(b.host),
  );
}
