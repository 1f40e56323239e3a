import type { ChannelInfo } from '../domain/channel.js';
import type { Logger } from '../log/logger.js';
import {
  type Endpoint,
  type EnergyRequestOptions,
  KasaClient,
  type KasaSysinfo,
  type OutletInfo,
} from './kasa.js';
import type { EnergyAnswer, Responder } from './types.js';

/**
 * What the poller needs of a device, whatever its transport: the legacy one (KasaConnection) or
 * the newer plugs' KLAP/AES (src/smart/fleet.ts). `getEnergy` never rejects.
 */
export interface DeviceConnection {
  readonly endpoint: Endpoint;
  getEnergy(childId: string | null, options: EnergyRequestOptions): Promise<EnergyAnswer>;
  /** Points the connection at a new address. */
  retarget(endpoint: Endpoint): void;
  close(): void;
}

/** Makes the connection for a device the registry knows. */
export interface DeviceConnector {
  connect(sysinfo: KasaSysinfo, endpoint: Endpoint): DeviceConnection;
}

/** A device is online until it misses `offlineTolerance` discovery rounds or polls in a row. */
export type DeviceState =
  | { readonly kind: 'online'; readonly since: number }
  | { readonly kind: 'offline'; readonly since: number; readonly misses: number };

export interface DeviceSnapshot {
  readonly id: string;
  readonly alias: string;
  readonly model: string;
  /** Firmware version as the device reports it (`sw_ver`); null when it sends none. */
  readonly firmware?: string | null;
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

/**
 * Two claims on one identity. `device`: two addresses answer as one deviceId; `channel`: a strip
 * outlet's child id equals another device's channel (a plug's deviceId or another strip's outlet).
 * The device known first keeps the identity while it still answers; the other claim is not obeyed.
 */
export interface IdentityConflict {
  readonly kind: 'device' | 'channel';
  /** The contested id: a deviceId, or a channel id. */
  readonly id: string;
  /** The device that keeps the id, and where it answers. */
  readonly kept: { readonly deviceId: string; readonly host: string; readonly port: number };
  /** The other claimant, and where it answers. */
  readonly other: { readonly deviceId: string; readonly host: string; readonly port: number };
  readonly sinceMs: number;
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
  readonly connection: DeviceConnection;
  /** `childId` is null for a single plug, the full child id for a strip outlet. */
  readonly channels: readonly { readonly channel: string; readonly childId: string | null }[];
}

export interface RegistryOptions {
  readonly offlineTolerance: number;
}

/** Another address claims an online device's id; settled by whether the known address still answers. */
interface Contest {
  readonly endpoint: Endpoint;
  readonly sysinfo: KasaSysinfo;
  /** The discovery round it was claimed in. */
  readonly round: number;
}

interface ConflictRecord {
  conflict: IdentityConflict;
  /** The discovery round (number) that last saw the other claim. */
  lastClaimRound: number;
}

/** A discovery reply, or what a poll answer said about the device that sent it. */
export interface Observation extends Endpoint {
  readonly sysinfo: KasaSysinfo;
  /** The reply came from this address although it was asked at `host:port` (a static host). */
  readonly replyFrom?: Endpoint | undefined;
}

interface Entry {
  sysinfo: KasaSysinfo;
  endpoint: Endpoint;
  /** The round in which discovery last heard it at `endpoint`. */
  seenRound: number;
  contest: Contest | null;
  /** The other reply address already logged (once per device and address). */
  replyFromLogged: string | null;
  /** Its last poll answered with its identity proven (false also before any poll). */
  lastPollAnswered: boolean;
  channels: readonly ChannelInfo[];
  channelsKey: string;
  state: DeviceState;
  firstSeenMs: number;
  lastSeenMs: number;
  missedRounds: number;
  failedPolls: number;
  connection: DeviceConnection | null;
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

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.host === b.host && a.port === b.port;
}

const addressOf = (e: Endpoint): string => `${e.host}:${e.port}`;

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
  readonly #client: DeviceConnector;
  readonly #listeners: Listeners = {
    channels: new Set(),
    added: new Set(),
    online: new Set(),
    offline: new Set(),
    moved: new Set(),
  };
  #tolerance: number;
  /** Number of the discovery round in progress (rounds end with `endRound`). */
  #round = 0;
  /** Channel id → the deviceId that claimed it first. */
  readonly #channelOwner = new Map<string, string>();
  readonly #conflicts = new Map<string, ConflictRecord>();

  constructor(
    options: RegistryOptions,
    private readonly logger: Logger,
    /** Makes device connections (default: the legacy client; the smart fleet wraps it). */
    client?: DeviceConnector,
  ) {
    this.#tolerance = Math.max(1, Math.floor(options.offlineTolerance));
    this.#client = client ?? new KasaClient();
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
  observe(reply: Observation, nowMs: number = Date.now()): void {
    this.#claim(reply, 'discovery', nowMs);
  }

  /**
   * A poll of `deviceId` at `endpoint` was answered by another device (`identity` is its sysinfo).
   * The expected device is not there any more: it moves to the address another claim gave for it,
   * or stops being polled until it is seen again. The responder is learnt at that address.
   */
  answeredBy(
    deviceId: string,
    endpoint: Endpoint,
    responder: Responder,
    identity: unknown,
    nowMs: number = Date.now(),
  ): void {
    const entry = this.#entries.get(deviceId);
    if (entry !== undefined && sameEndpoint(entry.endpoint, endpoint)) {
      entry.lastPollAnswered = false;
      this.logger.info(
        {
          deviceId,
          alias: entry.sysinfo.alias,
          address: addressOf(endpoint),
          answeredBy: responder.deviceId,
        },
        'another device answers at this address: nothing recorded for the expected one',
      );
      if (entry.contest !== null) this.#move(entry, entry.contest.endpoint, entry.contest.sysinfo, nowMs);
      else if (entry.state.kind === 'online') {
        this.#goOffline(entry, entry.failedPolls, nowMs, 'its address answers as another device');
      }
    }
    const sysinfo = identity as KasaSysinfo | null;
    if (sysinfo !== null && typeof sysinfo === 'object' && sysinfo.deviceId === responder.deviceId) {
      this.#claim({ host: endpoint.host, port: endpoint.port, sysinfo }, 'poll', nowMs);
    }
  }

  /** Every identity claimed twice right now. */
  conflicts(): IdentityConflict[] {
    return [...this.#conflicts.values()].map((r) => r.conflict);
  }

  #claim(reply: Observation, how: 'discovery' | 'poll', nowMs: number): void {
    const { sysinfo } = reply;
    const endpoint: Endpoint = { host: reply.host, port: reply.port };
    const existing = this.#entries.get(sysinfo.deviceId);
    if (existing === undefined) {
      this.#add(sysinfo, endpoint, nowMs, how);
      this.#noteReplyFrom(this.#entries.get(sysinfo.deviceId), reply);
      return;
    }
    if (sameEndpoint(existing.endpoint, endpoint)) {
      if (how === 'discovery') existing.seenRound = this.#round;
      this.#noteReplyFrom(existing, reply);
      // The known address still answers as this device: a pending claim elsewhere is a conflict.
      if (existing.contest !== null && existing.state.kind === 'online')
        this.#confirmConflict(existing, nowMs);
      this.#refresh(existing, sysinfo, nowMs);
      return;
    }
    const conflict = this.#conflicts.get(`device:${sysinfo.deviceId}`);
    if (
      conflict !== undefined &&
      existing.state.kind === 'online' &&
      sameEndpoint(conflict.conflict.other, endpoint)
    ) {
      conflict.lastClaimRound = this.#round; // the same episode goes on
      return;
    }
    const knownAddressTaken = [...this.#entries.values()].some(
      (e) => e !== existing && e.state.kind === 'online' && sameEndpoint(e.endpoint, existing.endpoint),
    );
    if (existing.state.kind === 'offline' || knownAddressTaken) {
      this.#move(existing, endpoint, sysinfo, nowMs);
      this.#noteReplyFrom(existing, reply);
      return;
    }
    // The device known first wins while it still answers at its address: check that before moving.
    existing.contest = { endpoint, sysinfo, round: this.#round };
    if (how === 'discovery' && existing.seenRound === this.#round) this.#confirmConflict(existing, nowMs);
    else {
      this.logger.debug(
        { deviceId: sysinfo.deviceId, known: addressOf(existing.endpoint), claimed: addressOf(endpoint) },
        'device answers at another address: checking whether the known one still answers',
      );
    }
  }

  #add(sysinfo: KasaSysinfo, endpoint: Endpoint, nowMs: number, how: 'discovery' | 'poll'): void {
    const entry: Entry = {
      sysinfo,
      endpoint,
      seenRound: how === 'discovery' ? this.#round : -1,
      contest: null,
      replyFromLogged: null,
      lastPollAnswered: false,
      channels: [],
      channelsKey: '',
      state: { kind: 'online', since: nowMs },
      firstSeenMs: nowMs,
      lastSeenMs: nowMs,
      missedRounds: 0,
      failedPolls: 0,
      connection: null,
      target: null,
    };
    this.#entries.set(sysinfo.deviceId, entry);
    const channels = this.#ownChannels(entry, channelsOf(sysinfo), nowMs);
    entry.channels = channels;
    entry.channelsKey = JSON.stringify(channels);
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
      'plug found',
    );
    this.#emit('added', this.#snapshot(entry));
    if (channels.length > 0) this.#emit('channels', channels);
  }

  /** A known device answered at its known address: take its (possibly renamed) sysinfo. */
  #refresh(existing: Entry, sysinfo: KasaSysinfo, nowMs: number): void {
    const channels = this.#ownChannels(existing, channelsOf(sysinfo), nowMs);
    const channelsKey = JSON.stringify(channels);
    const pollingChanged = isPolled(existing.sysinfo) !== isPolled(sysinfo);
    existing.sysinfo = sysinfo;
    existing.lastSeenMs = nowMs;
    existing.missedRounds = 0;
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
    if (channelsChanged && channels.length > 0) this.#emit('channels', channels);
    if (cameBack) {
      this.logger.info({ deviceId: sysinfo.deviceId, alias: sysinfo.alias }, 'device back online');
      this.#emit('online', this.#snapshot(existing));
    }
  }

  /** The device is at another address now (DHCP, a swap): same id, same channels, new connection target. */
  #move(existing: Entry, endpoint: Endpoint, sysinfo: KasaSysinfo, nowMs: number): void {
    const previous = existing.endpoint;
    existing.contest = null;
    existing.endpoint = endpoint;
    existing.seenRound = -1;
    existing.lastPollAnswered = false;
    existing.connection?.retarget(endpoint);
    existing.target = null;
    this.#dropConflict(`device:${sysinfo.deviceId}`, nowMs);
    this.logger.info(
      { deviceId: sysinfo.deviceId, alias: sysinfo.alias, from: previous, to: endpoint },
      'device moved to another address',
    );
    this.#emit('moved', { device: this.#snapshot(existing), from: previous, to: endpoint });
    this.#refresh(existing, sysinfo, nowMs);
  }

  /** The known address still answers while another claims the same id: report, do not obey. */
  #confirmConflict(existing: Entry, nowMs: number): void {
    const contest = existing.contest;
    existing.contest = null;
    if (contest === null) return;
    const id = existing.sysinfo.deviceId;
    const key = `device:${id}`;
    const record = this.#conflicts.get(key);
    if (record !== undefined && sameEndpoint(record.conflict.other, contest.endpoint)) {
      record.lastClaimRound = this.#round;
      return;
    }
    this.#report(key, {
      kind: 'device',
      id,
      kept: { deviceId: id, host: existing.endpoint.host, port: existing.endpoint.port },
      other: { deviceId: id, host: contest.endpoint.host, port: contest.endpoint.port },
      sinceMs: nowMs,
    });
  }

  #report(key: string, conflict: IdentityConflict): void {
    this.#conflicts.set(key, { conflict, lastClaimRound: this.#round });
    const kept = addressOf(conflict.kept);
    const other = addressOf(conflict.other);
    this.logger.warn(
      {
        conflict: conflict.kind,
        id: conflict.id,
        kept,
        other,
        keptDevice: conflict.kept.deviceId,
        otherDevice: conflict.other.deviceId,
      },
      conflict.kind === 'device'
        ? `identity conflict: deviceId ${conflict.id} answers at ${kept} and at ${other}; keeping ${kept}, the device known first, while it answers`
        : `identity conflict: channel id ${conflict.id} of the device at ${other} is already the channel of the device at ${kept}; not recorded for the newcomer`,
    );
  }

  #dropConflict(key: string, nowMs: number): void {
    const record = this.#conflicts.get(key);
    if (record === undefined) return;
    this.#conflicts.delete(key);
    this.logger.info(
      { id: record.conflict.id, durationMs: nowMs - record.conflict.sinceMs },
      'identity conflict ended',
    );
  }

  /**
   * The channels of `entry` that are its own: a channel id already owned by another device (a strip
   * outlet whose child id equals a plug's deviceId) stays with its first owner and is reported.
   */
  #ownChannels(entry: Entry, channels: readonly ChannelInfo[], nowMs: number): ChannelInfo[] {
    const deviceId = entry.sysinfo.deviceId;
    const own: ChannelInfo[] = [];
    for (const channel of channels) {
      const owner = this.#channelOwner.get(channel.id);
      if (owner === undefined || owner === deviceId) {
        this.#channelOwner.set(channel.id, deviceId);
        own.push(channel);
        continue;
      }
      const key = `channel:${channel.id}:${deviceId}`;
      if (this.#conflicts.has(key)) continue;
      const holder = this.#entries.get(owner);
      this.#report(key, {
        kind: 'channel',
        id: channel.id,
        kept: { deviceId: owner, host: holder?.endpoint.host ?? '', port: holder?.endpoint.port ?? 0 },
        other: { deviceId, host: entry.endpoint.host, port: entry.endpoint.port },
        sinceMs: nowMs,
      });
    }
    return own;
  }

  #noteReplyFrom(entry: Entry | undefined, reply: Observation): void {
    if (entry === undefined || reply.replyFrom === undefined) return;
    const from = addressOf(reply.replyFrom);
    if (entry.replyFromLogged === from) return;
    entry.replyFromLogged = from;
    this.logger.info(
      {
        deviceId: entry.sysinfo.deviceId,
        alias: entry.sysinfo.alias,
        asked: addressOf(reply),
        replyFrom: from,
      },
      'plug answers from another address than it is asked at: polled at the address asked',
    );
  }

  /** A discovery round ended: every known device not in `seen` missed it. */
  endRound(seen: ReadonlySet<string>, nowMs: number = Date.now()): void {
    for (const [key, record] of this.#conflicts) {
      // A device conflict lasts while the other address keeps claiming the id; a channel conflict
      // while the newcomer is online (its sysinfo is re-checked whenever it is seen again).
      const { conflict } = record;
      const ended =
        conflict.kind === 'device'
          ? record.lastClaimRound < this.#round
          : this.#entries.get(conflict.other.deviceId)?.state.kind !== 'online';
      if (ended) this.#dropConflict(key, nowMs);
    }
    for (const entry of this.#entries.values()) {
      // A claim from another address wins when the known address did not answer this round, unless
      // the device's last poll answered there: then its next poll decides (a lost discovery reply
      // must not hand the id to an impostor), within two rounds at most.
      const contest = entry.contest;
      const pollsAnswer =
        entry.lastPollAnswered && entry.state.kind === 'online' && this.#round - (contest?.round ?? 0) < 2;
      if (contest !== null && entry.seenRound !== this.#round && !pollsAnswer) {
        this.#move(entry, contest.endpoint, contest.sysinfo, nowMs);
      }
    }
    this.#round++;
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

  /**
   * The outcome of one poll job: `answered` when the device answered and proved who it is, even if
   * its reading was rejected (a plug that answers is online).
   */
  recordPoll(deviceId: string, answered: boolean, nowMs: number = Date.now()): void {
    const entry = this.#entries.get(deviceId);
    if (entry === undefined) return;
    entry.lastPollAnswered = answered;
    if (answered) {
      entry.failedPolls = 0;
      entry.lastSeenMs = nowMs;
      if (entry.contest !== null) this.#confirmConflict(entry, nowMs);
      return;
    }
    if (entry.contest !== null) {
      // The known address does not answer while another claims the id: the device moved there.
      this.#move(entry, entry.contest.endpoint, entry.contest.sysinfo, nowMs);
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
      firmware: typeof sysinfo.raw['sw_ver'] === 'string' ? sysinfo.raw['sw_ver'].slice(0, 64) : null,
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
