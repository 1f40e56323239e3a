import type { ChannelInfo } from '../domain/channel.js';
import type { Logger } from '../log/logger.js';
import { type Endpoint, KasaClient, type KasaConnection, type KasaSysinfo, type OutletInfo } from './kasa.js';

/** A device is online until it misses `offlineTolerance` discovery rounds or polls in a row. */
export type DeviceState =
  | { readonly kind: 'online'; readonly since: number }
  | { readonly kind: 'offline'; readonly since: number; readonly misses: number };

export interface DeviceSnapshot {
  readonly id: string;
  readonly alias: string;
  readonly model: string;
  readonly host: string;
  readonly port: number;
  /** The sysinfo `feature` lists ENE. */
  readonly hasEmeter: boolean;
  /** Has an energy meter the poller can read (a plug with ENE); false e.g. for HS100/HS200. */
  readonly polled: boolean;
  readonly outlets: readonly OutletInfo[];
  /** The meter channels stored for this device: itself, or one per strip outlet; none without meter. */
  readonly channels: readonly ChannelInfo[];
  readonly state: DeviceState;
  readonly firstSeenMs: number;
  /** Last time it answered discovery or a poll. */
  readonly lastSeenMs: number;
  /** Consecutive discovery rounds it did not answer. */
  readonly missedRounds: number;
  /** Consecutive polls that failed. */
  readonly failedPolls: number;
}

export interface DeviceMove {
  readonly device: DeviceSnapshot;
  readonly from: Endpoint;
  readonly to: Endpoint;
}

export interface RegistryEvents {
  /** Channels of one device are new or changed (alias, outlets): upsert them into storage. */
  channels: (channels: readonly ChannelInfo[]) => void;
  /** A device was seen for the first time. */
  added: (device: DeviceSnapshot) => void;
  /** A device came back after being offline. */
  online: (device: DeviceSnapshot) => void;
  /** A device went offline (missed rounds or failed polls reached the tolerance). */
  offline: (device: DeviceSnapshot) => void;
  /** A known device answered from another address; its id and channels are unchanged. */
  moved: (move: DeviceMove) => void;
}

export interface RegistryCounts {
  readonly devices: number;
  readonly online: number;
  readonly offline: number;
  /** Devices whose meter is polled. */
  readonly polled: number;
  /** Meter channels of all known devices. */
  readonly channels: number;
  /** Meter channels of online devices (what a tick polls). */
  readonly onlineChannels: number;
}

/** What the poller needs to poll one device: its connection and its channels in outlet order. */
export interface PollTarget {
  readonly deviceId: string;
  readonly connection: KasaConnection;
  /** `childId` is null for a single plug, the full child id for a strip outlet. */
  readonly channels: readonly { readonly channel: string; readonly childId: string | null }[];
}

export interface RegistryOptions {
  readonly offlineTolerance: number;
}

interface Entry {
  sysinfo: KasaSysinfo;
  endpoint: Endpoint;
  channels: readonly ChannelInfo[];
  channelsKey: string;
  state: DeviceState;
  firstSeenMs: number;
  lastSeenMs: number;
  missedRounds: number;
  failedPolls: number;
  connection: KasaConnection | null;
  target: PollTarget | null;
}

function channelsOf(sysinfo: KasaSysinfo): ChannelInfo[] {
  if (!sysinfo.hasEmeter) return [];
  if (sysinfo.outlets.length === 0) {
    return [
      { id: sysinfo.deviceId, alias: sysinfo.alias, model: sysinfo.model, parentId: null, parentAlias: null },
    ];
  }
  return sysinfo.outlets.map((o) => ({
    id: o.id,
    alias: o.alias,
    model: sysinfo.model,
    parentId: sysinfo.deviceId,
    parentAlias: sysinfo.alias,
  }));
}

function isPolled(sysinfo: KasaSysinfo): boolean {
  return sysinfo.hasEmeter && sysinfo.isPlug;
}

type Listeners = { [E in keyof RegistryEvents]: Set<RegistryEvents[E]> };

/**
 * Every device ever seen, keyed by deviceId, never by address: a plug that DHCP moves keeps its id,
 * its channels and its history, and its connection is re-targeted. Fed by discovery rounds
 * (`observe`, `endRound`) and by poll outcomes (`recordPoll`).
 */
export class DeviceRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #client: KasaClient;
  readonly #listeners: Listeners = {
    channels: new Set(),
    added: new Set(),
    online: new Set(),
    offline: new Set(),
    moved: new Set(),
  };
  #tolerance: number;

  constructor(
    options: RegistryOptions,
    private readonly logger: Logger,
    client?: KasaClient,
  ) {
    this.#tolerance = Math.max(1, Math.floor(options.offlineTolerance));
    this.#client = client ?? new KasaClient(logger);
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends keyof RegistryEvents>(event: E, listener: RegistryEvents[E]): () => void {
    const set = this.#listeners[event] as Set<RegistryEvents[E]>;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  setOfflineTolerance(offlineTolerance: number): void {
    this.#tolerance = Math.max(1, Math.floor(offlineTolerance));
  }

  /** A device answered discovery at `endpoint`. */
  observe(reply: Endpoint & { readonly sysinfo: KasaSysinfo }, nowMs: number = Date.now()): void {
    const { sysinfo } = reply;
    const endpoint: Endpoint = { host: reply.host, port: reply.port };
    const existing = this.#entries.get(sysinfo.deviceId);
    const channels = channelsOf(sysinfo);
    const channelsKey = JSON.stringify(channels);
    if (existing === undefined) {
      const entry: Entry = {
        sysinfo,
        endpoint,
        channels,
        channelsKey,
        state: { kind: 'online', since: nowMs },
        firstSeenMs: nowMs,
        lastSeenMs: nowMs,
        missedRounds: 0,
        failedPolls: 0,
        connection: null,
        target: null,
      };
      this.#entries.set(sysinfo.deviceId, entry);
      this.logger.info(
        {
          deviceId: sysinfo.deviceId,
          alias: sysinfo.alias,
          model: sysinfo.model,
          host: endpoint.host,
          port: endpoint.port,
          emeter: sysinfo.hasEmeter,
          outlets: sysinfo.outlets.length,
        },
        'device found',
      );
      this.#emit('added', this.#snapshot(entry));
      if (channels.length > 0) this.#emit('channels', channels);
      return;
    }

    const previous = existing.endpoint;
    const moved = previous.host !== endpoint.host || previous.port !== endpoint.port;
    const pollingChanged = isPolled(existing.sysinfo) !== isPolled(sysinfo);
    existing.sysinfo = sysinfo;
    existing.lastSeenMs = nowMs;
    existing.missedRounds = 0;
    if (moved) {
      existing.endpoint = endpoint;
      existing.connection?.retarget(endpoint);
      existing.target = null;
    }
    if (pollingChanged) {
      existing.connection?.close();
      existing.connection = null;
      existing.target = null;
    }
    const channelsChanged = existing.channelsKey !== channelsKey;
    if (channelsChanged) {
      existing.channels = channels;
      existing.channelsKey = channelsKey;
      existing.target = null;
    }
    const cameBack = existing.state.kind === 'offline';
    if (cameBack) {
      existing.failedPolls = 0;
      existing.state = { kind: 'online', since: nowMs };
    }
    if (moved) {
      this.logger.info(
        { deviceId: sysinfo.deviceId, alias: sysinfo.alias, from: previous, to: endpoint },
        'device moved to another address',
      );
      this.#emit('moved', { device: this.#snapshot(existing), from: previous, to: endpoint });
    }
    if (channelsChanged && channels.length > 0) this.#emit('channels', channels);
    if (cameBack) {
      this.logger.info({ deviceId: sysinfo.deviceId, alias: sysinfo.alias }, 'device back online');
      this.#emit('online', this.#snapshot(existing));
    }
  }

  /** A discovery round ended: every known device not in `seen` missed it. */
  endRound(seen: ReadonlySet<string>, nowMs: number = Date.now()): void {
    for (const [id, entry] of this.#entries) {
      if (seen.has(id)) continue;
      entry.missedRounds++;
      if (entry.state.kind === 'offline') {
        entry.state = { ...entry.state, misses: entry.state.misses + 1 };
      } else if (entry.missedRounds >= this.#tolerance) {
        this.#goOffline(entry, entry.missedRounds, nowMs, 'missed discovery rounds');
      }
    }
  }

  /** The outcome of one poll job (ok: at least one channel answered with a valid reading). */
  recordPoll(deviceId: string, ok: boolean, nowMs: number = Date.now()): void {
    const entry = this.#entries.get(deviceId);
    if (entry === undefined) return;
    if (ok) {
      entry.failedPolls = 0;
      entry.lastSeenMs = nowMs;
      return;
    }
    entry.failedPolls++;
    if (entry.state.kind === 'online' && entry.failedPolls >= this.#tolerance) {
      this.#goOffline(entry, entry.failedPolls, nowMs, 'failed polls');
    }
  }

  /** Online devices with a meter the poller can read, with their connections. */
  pollTargets(): PollTarget[] {
    const out: PollTarget[] = [];
    for (const entry of this.#entries.values()) {
      if (entry.state.kind !== 'online' || !isPolled(entry.sysinfo) || entry.channels.length === 0) continue;
      if (entry.target === null) {
        entry.connection ??= this.#client.connect(entry.sysinfo, entry.endpoint);
        const deviceId = entry.sysinfo.deviceId;
        entry.target = {
          deviceId,
          connection: entry.connection,
          channels: entry.channels.map((c) => ({
            channel: c.id,
            childId: c.parentId === null ? null : c.id,
          })),
        };
      }
      out.push(entry.target);
    }
    return out;
  }

  get(deviceId: string): DeviceSnapshot | undefined {
    const entry = this.#entries.get(deviceId);
    return entry === undefined ? undefined : this.#snapshot(entry);
  }

  /** Every known device, in the order first seen. */
  snapshot(): DeviceSnapshot[] {
    return [...this.#entries.values()].map((e) => this.#snapshot(e));
  }

  /** Channels of every known device (for a full upsert, e.g. at start-up of the writer). */
  channels(): ChannelInfo[] {
    return [...this.#entries.values()].flatMap((e) => e.channels);
  }

  counts(): RegistryCounts {
    let online = 0;
    let polled = 0;
    let channels = 0;
    let onlineChannels = 0;
    for (const entry of this.#entries.values()) {
      const isOnline = entry.state.kind === 'online';
      if (isOnline) online++;
      if (isPolled(entry.sysinfo)) polled++;
      channels += entry.channels.length;
      if (isOnline && isPolled(entry.sysinfo)) onlineChannels += entry.channels.length;
    }
    const devices = this.#entries.size;
    return { devices, online, offline: devices - online, polled, channels, onlineChannels };
  }

  /** Closes every device connection (sockets reopen on the next poll). */
  close(): void {
    for (const entry of this.#entries.values()) {
      entry.connection?.close();
      entry.connection = null;
      entry.target = null;
    }
  }

  #goOffline(entry: Entry, misses: number, nowMs: number, why: string): void {
    entry.state = { kind: 'offline', since: nowMs, misses };
    // Offline devices are not polled: drop their sockets until they come back.
    entry.connection?.close();
    this.logger.warn(
      { deviceId: entry.sysinfo.deviceId, alias: entry.sysinfo.alias, misses, host: entry.endpoint.host },
      `device offline: ${why}`,
    );
    this.#emit('offline', this.#snapshot(entry));
  }

  #snapshot(entry: Entry): DeviceSnapshot {
    const { sysinfo } = entry;
    return {
      id: sysinfo.deviceId,
      alias: sysinfo.alias,
      model: sysinfo.model,
      host: entry.endpoint.host,
      port: entry.endpoint.port,
      hasEmeter: sysinfo.hasEmeter,
      polled: isPolled(sysinfo),
      outlets: sysinfo.outlets,
      channels: entry.channels,
      state: entry.state,
      firstSeenMs: entry.firstSeenMs,
      lastSeenMs: entry.lastSeenMs,
      missedRounds: entry.missedRounds,
      failedPolls: entry.failedPolls,
    };
  }

  #emit<E extends keyof RegistryEvents>(event: E, ...args: Parameters<RegistryEvents[E]>): void {
    for (const listener of this.#listeners[event]) {
      try {
        (listener as (...a: Parameters<RegistryEvents[E]>) => void)(...args);
      } catch (err) {
        this.logger.error({ err, event }, 'registry listener failed');
      }
    }
  }
}
