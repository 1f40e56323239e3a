/**
 * The MQTT sink: publishes the latest committed state of every channel, the plugs' availability and
 * Home Assistant discovery configs. It never blocks the pipeline: `committed()` is called with a
 * batch the writer has just committed and only formats and hands messages to the socket.
 *
 * Memory is bounded while the broker is away: nothing is published or queued then; each channel
 * keeps only its latest state, and a newer reading replaces an unpublished one (counted as dropped).
 * On every (re)connect: `<prefix>/status` online, the discovery configs, the availability topics
 * (all retained), then the latest state of each channel.
 *
 * The link has its own backoff (250 ms doubling, at most MAX_BACKOFF_MS, so states resume within
 * seconds of the broker coming back) and its own breaker: after BREAKER_THRESHOLD failed attempts in
 * a row it is open, and a trial connection goes out every MAX_BACKOFF_MS. Failures are logged once
 * per episode (an authentication failure once more if it shows up later in the episode).
 */
import { hostname } from 'node:os';
import type { DeviceSnapshot } from '../../discovery/registry.js';
import type { Reading } from '../../domain/reading.js';
import type { Logger } from '../../log/logger.js';
import { MqttConnection, type MqttConnectOptions, type MqttLinkError } from './client.js';
import { EnergyLedger, EnergyStitcher, type StitchedCounter } from './energy.js';
import {
  availabilityTopic,
  discoveryConfigs,
  isTopicSafe,
  statePayload,
  stateTopic,
  statusTopic,
  type TopicOptions,
} from './payloads.js';

export interface MqttOptions extends TopicOptions {
  readonly url: string;
  readonly username: string | null;
  readonly password: string | null;
  readonly caFile: string | null;
  /** A plug offline for longer than this loses its discovery configs; null: never. */
  readonly expireAfterMs: number | null;
  /** Readings further apart than this are a gap for the energy counter (storage.rollups.gap_limit). */
  readonly gapLimitMs: number;
  /** Where the energy counters are kept across restarts (beside the database); null: not kept. */
  readonly energyFile: string | null;
  /** Changes when the tariff (or anything else that prices energy) does: costs are taken afresh. */
  readonly costKey?: string | null;
}

/** One channel's cost so far, as kasa_energy_cost_total reports it (src/http/energy-cost.ts). */
export interface ChannelCostTotal {
  readonly deviceId: string;
  readonly currency: string;
  readonly cost: number;
}

/**
 * Where costs come from: the same computation as the /metrics cost counter (from stored data, in
 * the reader pool). Rejects while it cannot answer yet (the readers start after the publisher).
 */
export interface CostSource {
  totals(): Promise<readonly ChannelCostTotal[]>;
}

/** The registry, as the publisher reads it. */
export interface DeviceSource {
  get(deviceId: string): DeviceSnapshot | undefined;
  snapshot(): readonly DeviceSnapshot[];
}

export interface MqttError {
  readonly message: string;
  readonly code: string;
  readonly atMs: number;
}

export interface MqttStats {
  readonly connected: boolean;
  /** Broker URL without user-info. */
  readonly url: string;
  /** open after BREAKER_THRESHOLD failed connection attempts in a row, until one succeeds. */
  readonly breaker: 'closed' | 'open';
  /** Messages handed to the broker connection (states, discovery, availability, status). */
  readonly published: number;
  readonly statesPublished: number;
  /** States never published: a newer reading of the channel replaced them while the broker was away. */
  readonly dropped: number;
  /** Channels whose latest state waits for the broker. */
  readonly pending: number;
  readonly connects: number;
  readonly failedConnects: number;
  readonly lastConnectedAtMs: number | null;
  readonly lastError: MqttError | null;
  readonly authFailing: boolean;
}

type Link =
  | { readonly kind: 'idle' }
  | { readonly kind: 'connecting'; readonly conn: MqttConnection }
  | { readonly kind: 'connected'; readonly conn: MqttConnection; readonly sinceMs: number }
  | { readonly kind: 'waiting'; readonly timer: NodeJS.Timeout }
  | { readonly kind: 'stopped' };

interface ChannelState {
  readonly energy: EnergyStitcher;
  payload: string | null;
  /** The payload has not been published yet. */
  pending: boolean;
  measuresVoltage: boolean;
  deviceId: string;
}

/**
 * Costs are taken from stored data every COST_REFRESH_MS, not per reading: one report for the whole
 * fleet instead of a query per reading (and no second pricing path that could disagree with
 * /metrics); per reading the state only looks its channel's cost up. The state's cost thus lags by up to this
 * much. A refresh prices today's hour buckets of every channel (earlier days and months are cached
 * by the computation): about 0.1-0.25 s of one core for 1,000 channels, a few % of what polling
 * them costs in a minute. With Prometheus scraping too, the computation is shared (refreshMs 30 s).
 */
const COST_REFRESH_MS = 60_000;
/** A channel without a known cost (new, or the first readings after start) asks for a refresh this soon at most. */
const COST_EARLY_MS = 5000;

const MAX_BACKOFF_MS = 5000;
const BREAKER_THRESHOLD = 3;
const CONNECT_TIMEOUT_MS = 10_000;
const KEEPALIVE_S = 30;
/** How often held states are tried again while the socket is full. */
const PENDING_RETRY_MS = 250;
/** How often the energy counters are saved (and at stop). */
const ENERGY_SAVE_MS = 60_000;

/** The URL without user-info, for logs and /health. */
export function safeMqttUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(invalid url)';
  }
}

function connectionKey(o: MqttOptions): string {
  return JSON.stringify([o.url, o.username, o.password, o.caFile, o.topicPrefix]);
}

export class MqttPublisher {
  readonly name = 'mqtt';
  #options: MqttOptions;
  #link: Link = { kind: 'idle' };
  readonly #clientId = `kasa-monitor-${hostname().replace(/[^A-Za-z0-9_-]/g, '')}-${process.pid}`;
  readonly #channels = new Map<string, ChannelState>();
  /** Discovery configs that should be retained on the broker now, per device. */
  readonly #configs = new Map<string, Map<string, string>>();
  /** Availability per topic. */
  readonly #availability = new Map<string, 'online' | 'offline'>();
  /** Devices whose configs expire_after removed. */
  readonly #expired = new Set<string>();
  #pendingTimer: NodeJS.Timeout | null = null;
  #expiryTimer: NodeJS.Timeout | null = null;
  #saveTimer: NodeJS.Timeout | null = null;
  #ledger: EnergyLedger | null = null;
  /** Counters saved by the previous run, taken by each channel's first reading. */
  #savedEnergy = new Map<string, StitchedCounter>();
  /** Cost per channel so far, in options.currency; it only grows while the tariff stays the same. */
  readonly #cost = new Map<string, number>();
  #costTimer: NodeJS.Timeout | null = null;
  #costInFlight = false;
  #costRequestedMs = 0;
  #costEarlyTimer: NodeJS.Timeout | null = null;
  /** Channels that asked for an early refresh (once each, so one without any cost cannot keep asking). */
  readonly #costAsked = new Set<string>();
  #costFailing = false;

  #failures = 0;
  #episodeStartedMs = 0;
  #authLogged = false;
  #published = 0;
  #statesPublished = 0;
  #dropped = 0;
  #pending = 0;
  #connects = 0;
  #failedConnects = 0;
  #lastConnectedAtMs: number | null = null;
  #lastError: MqttError | null = null;
  #authFailing = false;

  constructor(
    options: MqttOptions,
    private readonly devices: DeviceSource,
    private readonly logger: Logger,
    private readonly costs: CostSource | null = null,
  ) {
    this.#options = options;
  }

  start(): void {
    if (this.#link.kind !== 'idle') return;
    if (this.#options.energyFile !== null) {
      this.#ledger = new EnergyLedger(this.#options.energyFile);
      this.#savedEnergy = this.#ledger.load();
      this.#saveTimer = setInterval(() => void this.#saveEnergy(), ENERGY_SAVE_MS);
      this.#saveTimer.unref();
    }
    for (const device of this.devices.snapshot()) this.deviceChanged(device.id);
    this.#armExpiry();
    this.#armCost();
    this.#connect();
  }

  /**
   * A reload. A new broker, account or topic prefix: the connection is replaced at once (backoff
   * and breaker start afresh: the old broker's outage says nothing about the new one). Discovery
   * settings: configs are recomputed, removed ones cleared from the broker.
   */
  reconfigure(options: MqttOptions): void {
    const before = this.#options;
    this.#options = options;
    if (this.#link.kind === 'stopped' || this.#link.kind === 'idle') return;
    if (before.costKey !== options.costKey || before.currency !== options.currency) {
      // A new tariff reprices history: the figures are taken afresh (and may be lower, as on /metrics).
      this.#cost.clear();
      this.#costAsked.clear();
      this.#armCost();
    }
    if (connectionKey(before) !== connectionKey(options)) {
      // Retained messages under the old prefix stay there; clear the discovery configs pointing at them.
      if (before.topicPrefix !== options.topicPrefix) this.#clearConfigs();
      this.#configs.clear();
      this.#availability.clear();
      this.#expired.clear();
      for (const device of this.devices.snapshot()) this.deviceChanged(device.id);
      this.#failures = 0;
      // The old session ends cleanly with `offline` on its status topic (no stale `online` retained).
      this.#drop(statusTopic(before));
      this.#connect();
    } else {
      if (before.discovery !== options.discovery || before.haPrefix !== options.haPrefix)
        this.#clearConfigs();
      this.#expired.clear();
      for (const device of this.devices.snapshot()) this.deviceChanged(device.id);
    }
    this.#armExpiry();
  }

  /** Readings of a batch the writer committed: each becomes its channel's state. */
  committed(readings: readonly Reading[]): void {
    const publishNow = this.#link.kind === 'connected' && this.#link.conn.writable;
    for (const reading of readings) {
      let state = this.#channels.get(reading.channel);
      if (state === undefined) {
        if (!isTopicSafe(reading.channel)) continue;
        const saved = this.#savedEnergy.get(reading.channel) ?? null;
        this.#savedEnergy.delete(reading.channel);
        state = {
          energy: new EnergyStitcher(this.#options.gapLimitMs, saved),
          payload: null,
          pending: false,
          measuresVoltage: false,
          // A strip outlet's configs belong to the strip: deviceChanged() takes a device id.
          deviceId: this.#deviceOf(reading.channel),
        };
        this.#channels.set(reading.channel, state);
      }
      const wh = state.energy.add(reading);
      if (wh === null) continue; // a replay or a late reading: the state has moved on
      if (!state.measuresVoltage && reading.voltageMv !== null) {
        state.measuresVoltage = true;
        this.deviceChanged(state.deviceId);
      }
      if (state.pending) this.#dropped++;
      let cost: number | null = null;
      if (this.#options.currency != null) {
        cost = this.#cost.get(reading.channel) ?? null;
        if (cost === null && !this.#costAsked.has(reading.channel)) {
          this.#costAsked.add(reading.channel);
          this.#refreshCostSoon();
        }
      }
      state.payload = statePayload(reading, wh, cost);
      if (publishNow && this.#link.kind === 'connected') {
        this.#publishState(this.#link.conn, reading.channel, state);
      } else if (!state.pending) {
        state.pending = true;
        this.#pending++;
      }
    }
    if (this.#pending > 0 && this.#link.kind === 'connected') this.#schedulePending();
  }

  /**
   * A device was added, renamed, went offline or came back: its discovery configs and availability
   * are brought up to date (only what changed is published). A rename keeps every unique_id, so
   * Home Assistant renames its entities instead of adding new ones.
   */
  /** The id of the device a channel belongs to (a strip for its outlets); the channel when unknown. */
  #deviceOf(channel: string): string {
    if (this.devices.get(channel) !== undefined) return channel;
    for (const device of this.devices.snapshot()) {
      if (device.channels.some((c) => c.id === channel)) return device.id;
    }
    return channel;
  }

  deviceChanged(deviceId: string): void {
    const device = this.devices.get(deviceId);
    if (device === undefined || !isTopicSafe(device.id)) return;
    const o = this.#options;
    for (const channel of device.channels) {
      const state = this.#channels.get(channel.id);
      if (state !== undefined) state.deviceId = device.id;
    }
    const online = device.state.kind === 'online';
    const expire = o.expireAfterMs;
    if (online) this.#expired.delete(device.id);
    else if (expire !== null && Date.now() - device.state.since >= expire) this.#expired.add(device.id);

    const next = this.#expired.has(device.id)
      ? new Map<string, string>()
      : discoveryConfigs(o, device, (channel) => this.#channels.get(channel)?.measuresVoltage ?? false);
    const previous = this.#configs.get(device.id) ?? new Map<string, string>();
    const conn = this.#link.kind === 'connected' ? this.#link.conn : null;
    for (const topic of previous.keys()) {
      if (!next.has(topic)) conn?.publish(topic, '', 1, true);
    }
    for (const [topic, payload] of next) {
      if (previous.get(topic) !== payload && conn !== null) this.#send(conn, topic, payload, 1, true);
    }
    if (next.size === 0) this.#configs.delete(device.id);
    else this.#configs.set(device.id, next);

    const value = online ? 'online' : 'offline';
    for (const id of [device.id, ...device.channels.map((c) => c.id)]) {
      if (!isTopicSafe(id)) continue;
      const topic = availabilityTopic(o, id);
      if (this.#availability.get(topic) === value) continue;
      this.#availability.set(topic, value);
      if (conn !== null) this.#send(conn, topic, value, 1, true);
    }
  }

  /** Publishes `offline` on the status topic and disconnects cleanly. Idempotent. */
  async stop(): Promise<MqttStats> {
    const link = this.#link;
    this.#link = { kind: 'stopped' };
    if (this.#pendingTimer !== null) clearTimeout(this.#pendingTimer);
    if (this.#expiryTimer !== null) clearInterval(this.#expiryTimer);
    if (this.#saveTimer !== null) clearInterval(this.#saveTimer);
    if (this.#costTimer !== null) clearInterval(this.#costTimer);
    if (this.#costEarlyTimer !== null) clearTimeout(this.#costEarlyTimer);
    this.#costTimer = null;
    this.#costEarlyTimer = null;
    this.#pendingTimer = null;
    this.#expiryTimer = null;
    this.#saveTimer = null;
    if (link.kind !== 'stopped') await this.#saveEnergy();
    if (link.kind === 'waiting') clearTimeout(link.timer);
    if (link.kind === 'connecting') await link.conn.end(false);
    if (link.kind === 'connected') {
      this.#send(link.conn, statusTopic(this.#options), 'offline', 1, true);
      await link.conn.end(true);
    }
    const stats = this.stats();
    if (link.kind !== 'stopped') {
      this.logger.info(
        { published: stats.published, states: stats.statesPublished, dropped: stats.dropped },
        'MQTT publisher stopped',
      );
    }
    return stats;
  }

  stats(): MqttStats {
    return {
      connected: this.#link.kind === 'connected',
      url: safeMqttUrl(this.#options.url),
      breaker: this.#failures >= BREAKER_THRESHOLD ? 'open' : 'closed',
      published: this.#published,
      statesPublished: this.#statesPublished,
      dropped: this.#dropped,
      pending: this.#pending,
      connects: this.#connects,
      failedConnects: this.#failedConnects,
      lastConnectedAtMs: this.#lastConnectedAtMs,
      lastError: this.#lastError,
      authFailing: this.#authFailing,
    };
  }

  /** Saves every channel's counter (and those of channels not seen since the start, unchanged). */
  #saveEnergy(): Promise<void> {
    const ledger = this.#ledger;
    if (ledger === null) return Promise.resolve();
    const counters = new Map(this.#savedEnergy);
    for (const [channel, state] of this.#channels) {
      const saved = state.energy.saved();
      if (saved !== null) counters.set(channel, saved);
    }
    return ledger.save(counters, (error) =>
      this.logger.warn(
        { err: error, path: ledger.path },
        'could not save the MQTT energy counters; after a restart they start again at the plugs’ counters',
      ),
    );
  }

  #connectOptions(): MqttConnectOptions {
    const o = this.#options;
    return {
      url: o.url,
      username: o.username,
      password: o.password,
      caFile: o.caFile,
      clientId: this.#clientId,
      will: { topic: statusTopic(o), payload: 'offline' },
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      keepaliveSeconds: KEEPALIVE_S,
    };
  }

  #connect(): void {
    if (this.#link.kind === 'stopped') return;
    let conn: MqttConnection;
    try {
      conn = new MqttConnection(this.#connectOptions(), {
        connected: () => this.#connected(conn),
        closed: (error) => this.#closed(conn, error),
      });
    } catch (error) {
      // A CA file that cannot be read: a failed attempt like any other (the file may appear).
      const code = (error as { code?: unknown }).code;
      this.#failed({
        name: 'MqttLinkError',
        message: `cannot start the connection: ${error instanceof Error ? error.message : String(error)}`,
        code: typeof code === 'string' ? code : 'KASA_CONFIG',
        auth: false,
      } as MqttLinkError);
      return;
    }
    this.#link = { kind: 'connecting', conn };
  }

  #connected(conn: MqttConnection): void {
    if (this.#link.kind !== 'connecting' || this.#link.conn !== conn) return;
    const now = Date.now();
    this.#link = { kind: 'connected', conn, sinceMs: now };
    this.#connects++;
    this.#lastConnectedAtMs = now;
    this.#authFailing = false;
    const log = { url: safeMqttUrl(this.#options.url), topicPrefix: this.#options.topicPrefix };
    if (this.#failures > 0) {
      this.logger.info(
        { ...log, failedAttempts: this.#failures, outageMs: now - this.#episodeStartedMs },
        'MQTT broker connection restored; publishing the current state',
      );
    } else {
      this.logger.info(log, 'connected to the MQTT broker');
    }
    this.#failures = 0;
    this.#authLogged = false;
    this.#republish(conn);
  }

  /** Everything the broker may have lost (it may run without persistence), then the latest states. */
  #republish(conn: MqttConnection): void {
    const o = this.#options;
    this.#send(conn, statusTopic(o), 'online', 1, true);
    for (const configs of this.#configs.values()) {
      for (const [topic, payload] of configs) this.#send(conn, topic, payload, 1, true);
    }
    for (const [topic, value] of this.#availability) this.#send(conn, topic, value, 1, true);
    for (const [channel, state] of this.#channels) {
      if (state.payload === null) continue;
      if (!conn.writable) {
        if (!state.pending) {
          state.pending = true;
          this.#pending++;
        }
        continue;
      }
      this.#publishState(conn, channel, state);
    }
    if (this.#pending > 0) this.#schedulePending();
  }

  #closed(conn: MqttConnection, error: MqttLinkError | null): void {
    const link = this.#link;
    if ((link.kind !== 'connecting' && link.kind !== 'connected') || link.conn !== conn) return;
    if (link.kind === 'connected') {
      // A session that worked ended: the next try is at once, a new episode begins.
      this.logger.warn(
        { url: safeMqttUrl(this.#options.url), code: error?.code },
        'MQTT broker connection lost; reconnecting (states are kept, the latest per channel)',
      );
      this.#failures = 0;
      this.#episodeStartedMs = Date.now();
      if (error !== null) this.#lastError = { message: error.message, code: error.code, atMs: Date.now() };
      this.#link = { kind: 'idle' };
      this.#wait(0);
      return;
    }
    this.#failed(error);
  }

  #failed(error: MqttLinkError | null): void {
    this.#failedConnects++;
    this.#failures++;
    const now = Date.now();
    if (error !== null) this.#lastError = { message: error.message, code: error.code, atMs: now };
    const auth = error?.auth === true;
    this.#authFailing = auth;
    const fields = {
      url: safeMqttUrl(this.#options.url),
      username: this.#options.username === null ? undefined : '(set)',
      code: error?.code,
    };
    if (this.#failures === 1 && this.#lastConnectedAtMs === null) this.#episodeStartedMs = now;
    if (auth && !this.#authLogged) {
      this.#authLogged = true;
      this.logger.error(
        fields,
        `MQTT authentication failed: ${error?.message ?? ''}; check mqtt.username and the password (polling and recording go on; retrying)`,
      );
    } else if (this.#failures === 1 && !auth) {
      this.logger.warn(
        fields,
        `MQTT broker unavailable: ${error?.message ?? ''}; retrying (polling and recording go on)`,
      );
    } else {
      this.logger.debug({ ...fields, attempt: this.#failures }, 'MQTT connection attempt failed');
    }
    this.#link = { kind: 'idle' };
    this.#wait(this.#backoff());
  }

  #backoff(): number {
    const base = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.#failures - 1, 10));
    return Math.round(base * (0.8 + 0.2 * Math.random()));
  }

  #wait(ms: number): void {
    if (this.#link.kind === 'stopped') return;
    const timer = setTimeout(() => {
      if (this.#link.kind === 'waiting' && this.#link.timer === timer) this.#connect();
    }, ms);
    timer.unref();
    this.#link = { kind: 'waiting', timer };
  }

  /** Ends the current connection, if any, without a reconnect of its own; `offline` on `status` first. */
  #drop(status: string): void {
    const link = this.#link;
    if (link.kind === 'waiting') clearTimeout(link.timer);
    if (link.kind === 'connecting') void link.conn.end(false);
    if (link.kind === 'connected') {
      this.#send(link.conn, status, 'offline', 1, true);
      void link.conn.end(true);
    }
    this.#link = { kind: 'idle' };
  }

  #send(conn: MqttConnection, topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    conn.publish(topic, payload, qos, retain);
    this.#published++;
  }

  /** States are QoS 0 and not retained: at 1 Hz the next one follows soon; discovery and availability are QoS 1. */
  #publishState(conn: MqttConnection, channel: string, state: ChannelState): void {
    if (state.payload === null) return;
    this.#send(conn, stateTopic(this.#options, channel), state.payload, 0, false);
    this.#statesPublished++;
    if (state.pending) {
      state.pending = false;
      this.#pending--;
    }
  }

  #schedulePending(): void {
    if (this.#pendingTimer !== null) return;
    this.#pendingTimer = setTimeout(() => {
      this.#pendingTimer = null;
      const link = this.#link;
      if (link.kind !== 'connected') return;
      for (const [channel, state] of this.#channels) {
        if (!state.pending) continue;
        if (!link.conn.writable) break;
        this.#publishState(link.conn, channel, state);
      }
      if (this.#pending > 0) this.#schedulePending();
    }, PENDING_RETRY_MS);
    this.#pendingTimer.unref();
  }

  /** Publishes empty retained payloads on every discovery config (removes the entities). */
  #clearConfigs(): void {
    const conn = this.#link.kind === 'connected' ? this.#link.conn : null;
    for (const configs of this.#configs.values()) {
      for (const topic of configs.keys()) conn?.publish(topic, '', 1, true);
    }
    this.#configs.clear();
  }

  /** Refreshes costs every COST_REFRESH_MS while a tariff is configured (and once soon after). */
  #armCost(): void {
    if (this.#costTimer !== null) clearInterval(this.#costTimer);
    this.#costTimer = null;
    if (this.#options.currency == null || this.costs === null) return;
    this.#costTimer = setInterval(() => void this.#refreshCost(), COST_REFRESH_MS);
    this.#costTimer.unref();
    // After the reload that called this has applied the new configuration everywhere.
    setImmediate(() => void this.#refreshCost());
  }

  /** A refresh within COST_EARLY_MS of the last one (or at once), unless one is already due. */
  #refreshCostSoon(): void {
    if (this.costs === null || this.#costEarlyTimer !== null || this.#link.kind === 'stopped') return;
    const delay = Math.max(0, COST_EARLY_MS - (Date.now() - this.#costRequestedMs));
    this.#costEarlyTimer = setTimeout(() => {
      this.#costEarlyTimer = null;
      void this.#refreshCost();
    }, delay);
    this.#costEarlyTimer.unref();
  }

  /**
   * Takes each channel's cost from the cost computation. Within one tariff a figure never goes
   * down (a recomputation that comes out lower, say after rows were merged into rollups, keeps the
   * higher one); the next states carry it.
   */
  async #refreshCost(): Promise<void> {
    const currency = this.#options.currency;
    const costs = this.costs;
    if (currency == null || costs === null || this.#costInFlight || this.#link.kind === 'stopped') return;
    this.#costInFlight = true;
    this.#costRequestedMs = Date.now();
    const key = this.#options.costKey;
    try {
      const totals = await costs.totals();
      // The tariff changed while this was computed: its figures are of the old one.
      if (this.#options.costKey !== key || this.#options.currency !== currency) return;
      for (const total of totals) {
        if (total.currency !== currency || !Number.isFinite(total.cost)) continue;
        const before = this.#cost.get(total.deviceId);
        this.#cost.set(total.deviceId, before === undefined ? total.cost : Math.max(before, total.cost));
      }
      this.#costFailing = false;
    } catch (error) {
      // Debug only: the first try at start precedes the readers, and /metrics warns of a real failure.
      if (!this.#costFailing) {
        this.logger.debug({ err: error }, 'MQTT costs not available; states go out without cost');
      }
      this.#costFailing = true;
      // Channels may ask again (at most every COST_EARLY_MS): the readers start after MQTT.
      this.#costAsked.clear();
    } finally {
      this.#costInFlight = false;
    }
  }

  /** Checks offline devices against expire_after now and then. */
  #armExpiry(): void {
    if (this.#expiryTimer !== null) clearInterval(this.#expiryTimer);
    this.#expiryTimer = null;
    const expire = this.#options.expireAfterMs;
    if (expire === null) return;
    this.#expiryTimer = setInterval(
      () => {
        for (const device of this.devices.snapshot()) {
          if (device.state.kind === 'offline' && !this.#expired.has(device.id)) this.deviceChanged(device.id);
        }
      },
      Math.max(1000, Math.min(60_000, Math.floor(expire / 4))),
    );
    this.#expiryTimer.unref();
  }
}
