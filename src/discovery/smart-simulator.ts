/**
 * Simulated newer plugs on loopback, for tests, the demo and the benchmark: UDP 20002 discovery,
 * KLAP v1/v2, AES securePassthrough (login versions 1 and 2), the smart protocol (plugs and strips
 * with outlets) and the legacy JSON over KLAP (HS300 hw 2.0 "new_klap"). Written from the protocol
 * facts in the project notes; the fixture data is our own, in the shapes real devices send.
 *
 * Each device binds its own 127.x address: an HTTP server on the fleet's HTTP port and a UDP socket
 * on the discovery port, so replies leave from the discovery port as they do on real plugs. One
 * socket bound to 127.255.255.255 receives broadcasts and hands them to every device.
 *
 * Fault injection: wrong/default/blank credentials (the account the device knows), 403 on handshake1
 * ("Third-Party Compatibility"), a short session TIMEOUT and sessions dropped on demand (403), a
 * connection closed after every answer, requests that hang, garbage and short bodies, batches
 * rejected, unknown methods (−1002), reboots (since-boot counter back to 0) and month rollover.
 */

import { constants, createHash, publicEncrypt, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AesSession } from '../smart/aes-crypto.js';
import { type Account, BLANK, DEFAULT_KASA, DEFAULT_TAPO } from '../smart/credentials.js';
import {
  authHash,
  clientProof,
  KlapSession,
  type KlapVersion,
  proofsEqual,
  serverProof,
} from '../smart/klap-crypto.js';
import { encodeTdp, isProbe } from '../smart/tdp.js';

export type SmartSimKind = 'klap' | 'aes' | 'iot-klap';

export interface SmartSimChannelValues {
  powerMw: number;
  voltageMv: number;
  currentMa: number;
  /** `month_energy` (Wh). */
  monthWh: number;
  todayWh: number;
  /** Since power-on (get_emeter_data.energy_wh; legacy total_wh). */
  sinceBootWh: number;
}

export interface SmartSimFaults {
  /** handshake1 (KLAP) or handshake (AES) answers 403: firmware wanting "Third-Party Compatibility". */
  thirdPartyCompat?: boolean;
  /** Every answer closes the connection (some P100 firmware). */
  closeConnection?: boolean;
  /** Requests after the handshake get no answer at all. */
  hang?: boolean;
  /** Energy requests answer garbage ('garbage') or a body too short to be one ('short'). */
  body?: 'garbage' | 'short' | null;
  /** multipleRequest answers −1003. */
  rejectBatches?: boolean;
  /** Does not answer port-20002 probes (only a direct handshake finds it). */
  silentDiscovery?: boolean;
}

export interface SmartSimSpec {
  readonly address: string;
  readonly kind: SmartSimKind;
  /** KLAP hash version: smart KLAP is always 2; iot-klap 1 (old) or 2 ("new_klap"). */
  readonly klapVersion?: KlapVersion;
  /** AES login version (1: password, 2: password2). */
  readonly loginVersion?: 1 | 2;
  /** e.g. 'P110', 'KP125M', 'P304M', 'HS300'. */
  readonly model: string;
  readonly region?: string;
  readonly deviceId?: string;
  readonly alias?: string;
  /** "AA-BB-CC-DD-EE-FF"; random by default. */
  readonly mac?: string;
  /** What the device accepts: the owner's account, or a built-in pair. */
  readonly account: Account | 'blank' | 'default-kasa' | 'default-tapo';
  /** Has get_emeter_data (voltage and current); default true. */
  readonly emeterData?: boolean;
  /** get_energy_usage carries current_power (mW); default true (not on P304M outlets). */
  readonly usagePower?: boolean;
  /** energy_monitoring version (1: get_energy_usage only); default 2. */
  readonly energyVersion?: 1 | 2;
  /** Outlet aliases of a strip (P304M-like smart strip, or HS300 over KLAP). */
  readonly outlets?: readonly string[];
  /** Session TIMEOUT in seconds sent with the cookie and enforced (default 86400). */
  readonly sessionTimeoutS?: number;
  /** Advertised `encrypt_type` in discovery (default from kind); 'TPAP' for the newest firmware. */
  readonly advertise?: string;
  readonly values?: Partial<SmartSimChannelValues>;
  readonly faults?: SmartSimFaults;
  /**
   * Answers `get_energy_data` (daily and monthly history from seeded day statistics; newer
   * firmware, unverified on hardware); default false: only today/month energy, as most plugs.
   */
  readonly energyData?: boolean;
}

/** One seeded day statistic: the plug's energy on its local day. */
export interface SmartSimDayStat {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly energyWh: number;
}

export interface SmartSimDevice {
  readonly deviceId: string;
  readonly address: string;
  readonly kind: SmartSimKind;
  readonly model: string;
  readonly alias: string;
  readonly mac: string;
  /** Channel ids: the plug's deviceId, or its outlets' ids (for a strip). */
  readonly channelIds: readonly string[];
  readonly outletIds: readonly string[];
}

export interface SmartSimStats {
  handshakes: number;
  requests: number;
  discoveryReplies: number;
  /** Requests rejected with 403 (session unknown or expired). */
  rejectedSessions: number;
}

export interface SmartSimFleetOptions {
  /** UDP discovery port (20002 on real plugs). */
  readonly discoveryPort: number;
  /** HTTP port every device listens on (80 on real plugs). */
  readonly httpPort: number;
  readonly devices: readonly SmartSimSpec[];
}

export interface SmartSimFleet {
  readonly discoveryPort: number;
  readonly httpPort: number;
  readonly devices: readonly SmartSimDevice[];
  setValues(channelId: string, values: Partial<SmartSimChannelValues>): void;
  values(channelId: string): SmartSimChannelValues;
  setFaults(deviceId: string, faults: SmartSimFaults): void;
  /** Forgets every session of the device: its next request gets 403. */
  expireSessions(deviceId: string): void;
  /** The owner changes the account (or the password): sessions end, only the new one logs in. */
  setAccount(deviceId: string, account: Account): void;
  /** Power cycle: since-boot counters back to 0, sessions gone; month counters kept. */
  reboot(deviceId: string): void;
  /** The device's clock passes the 1st of the month: month and day counters back to 0. */
  monthRollover(deviceId: string): void;
  /** Seeds a channel's day statistics (`get_energy_data`; `get_daystat` over KLAP); months are their sums. */
  setDayStats(channelId: string, days: readonly SmartSimDayStat[]): void;
  /** The device's time zone: local time minus UTC (get_device_time.time_diff, local_time). */
  setClockOffset(deviceId: string, offsetMs: number): void;
  stats(deviceId: string): SmartSimStats;
  /** Makes the meters wander for the demo; returns a stop function. */
  animate(intervalMs?: number): () => void;
  stop(): Promise<void>;
}

const LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex').toUpperCase();
}

function accountOf(spec: SmartSimSpec): Account {
  if (spec.account === 'blank') return BLANK;
  if (spec.account === 'default-kasa') return DEFAULT_KASA;
  if (spec.account === 'default-tapo') return DEFAULT_TAPO;
  return spec.account;
}

const sha1Hex = (text: string): string => createHash('sha1').update(text, 'utf8').digest('hex');
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

interface KlapServerSession {
  localSeed: Buffer;
  remoteSeed: Buffer;
  session: KlapSession | null;
  expiresAt: number;
}

interface AesServerSession {
  session: AesSession;
  token: string | null;
  expiresAt: number;
}

interface Channel {
  id: string;
  alias: string;
  values: SmartSimChannelValues;
  /** Seeded day statistics, Wh by local date "Y-M-D". */
  days: Map<string, number>;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class SimDevice implements SmartSimDevice {
  readonly deviceId: string;
  readonly address: string;
  readonly kind: SmartSimKind;
  readonly model: string;
  readonly alias: string;
  readonly mac: string;
  readonly channelIds: string[];
  readonly outletIds: string[];
  readonly channels = new Map<string, Channel>();
  readonly stats: SmartSimStats = { handshakes: 0, requests: 0, discoveryReplies: 0, rejectedSessions: 0 };
  faults: SmartSimFaults;
  readonly klapSessions = new Map<string, KlapServerSession>();
  readonly aesSessions = new Map<string, AesServerSession>();
  klapAuth: Buffer;
  readonly klapVersion: KlapVersion;
  account: Account;
  /** The device clock's offset from ours (a month rollover moves it to the 1st). */
  clockOffsetMs = 0;
  /** The device's zone: local time minus UTC (time_diff). */
  zoneOffsetMs = 0;
  server: Server | null = null;
  udp: Socket | null = null;
  readonly hanging = new Set<ServerResponse>();

  constructor(
    readonly spec: SmartSimSpec,
    readonly httpPort: number,
  ) {
    if (!LOOPBACK.test(spec.address))
      throw new Error(`simulated plug address must be loopback: ${spec.address}`);
    this.address = spec.address;
    this.kind = spec.kind;
    this.model = spec.model;
    this.alias = spec.alias ?? `${spec.model} ${spec.address}`;
    this.deviceId = spec.deviceId ?? hex(20);
    const m = randomBytes(6).toString('hex').toUpperCase();
    this.mac = spec.mac ?? m.match(/../g)?.join('-') ?? m;
    this.faults = { ...spec.faults };
    this.account = accountOf(spec);
    this.klapVersion = spec.kind === 'klap' ? 2 : (spec.klapVersion ?? 1);
    this.klapAuth = authHash(this.klapVersion, this.account.username, this.account.password);
    const base: SmartSimChannelValues = {
      powerMw: 12_345,
      voltageMv: 230_100,
      currentMa: 54,
      monthWh: 1_234,
      todayWh: 56,
      sinceBootWh: 789,
      ...spec.values,
    };
    const outlets = spec.outlets ?? [];
    // Legacy strips: deviceId + 2-digit index; smart strips: 40-hex ids of their own.
    this.outletIds = outlets.map((_, i) =>
      spec.kind === 'iot-klap'
        ? `${this.deviceId}${String(i).padStart(2, '0')}`
        : createHash('sha1').update(`${this.deviceId}/${i}`).digest('hex').toUpperCase(),
    );
    if (outlets.length === 0) {
      this.channels.set(this.deviceId, {
        id: this.deviceId,
        alias: this.alias,
        values: { ...base },
        days: new Map(),
      });
    } else {
      outlets.forEach((alias, i) => {
        const id = this.outletIds[i] ?? '';
        this.channels.set(id, {
          id,
          alias,
          values: { ...base, powerMw: base.powerMw + i * 1000 },
          days: new Map(),
        });
      });
    }
    this.channelIds = [...this.channels.keys()];
  }

  get isStrip(): boolean {
    return this.outletIds.length > 0;
  }

  localTime(): string {
    return new Date(Date.now() + this.clockOffsetMs + this.zoneOffsetMs)
      .toISOString()
      .slice(0, 19)
      .replace('T', ' ');
  }

  /** Legacy `get_daystat` / `get_monthstat` (Wh, newer firmware) from the seeded days. */
  iotStats(channel: Channel, emeter: Json): Json {
    const entries = [...channel.days].map(([key, wh]) => {
      const [year, month, day] = key.split('-').map(Number) as [number, number, number];
      return { year, month, day, wh };
    });
    const day = emeter['get_daystat'];
    if (isRecord(day)) {
      const list = entries
        .filter((e) => e.year === day['year'] && e.month === day['month'])
        .map((e) => ({ year: e.year, month: e.month, day: e.day, energy_wh: e.wh }));
      return { get_daystat: { day_list: list, err_code: 0 } };
    }
    const year = isRecord(emeter['get_monthstat']) ? emeter['get_monthstat']['year'] : null;
    const months = new Map<number, number>();
    for (const e of entries) if (e.year === year) months.set(e.month, (months.get(e.month) ?? 0) + e.wh);
    const list = [...months].map(([month, wh]) => ({ year, month, energy_wh: wh }));
    return { get_monthstat: { month_list: list, err_code: 0 } };
  }

  /**
   * `get_energy_data` from the seeded days: daily (from the first day of a quarter) or monthly (from
   * 1 January) buckets from start to end, timestamps being local midnights written as UTC; none
   * after the device's today. Other ranges and intervals: −1008, as the notes report.
   */
  energyData(channel: Channel, params: Json): Json | null {
    const start = params['start_timestamp'];
    const end = params['end_timestamp'];
    const interval = params['interval'];
    if (typeof start !== 'number' || typeof end !== 'number' || end < start) return null;
    const first = new Date(start * 1000);
    const now = Date.now() + this.clockOffsetMs + this.zoneOffsetMs;
    const data: number[] = [];
    if (interval === 1440) {
      if (first.getUTCDate() !== 1 || first.getUTCMonth() % 3 !== 0 || start % 86_400 !== 0) return null;
      for (let t = start * 1000; t <= end * 1000 && t <= now && data.length < 100; t += 86_400_000) {
        const d = new Date(t);
        data.push(channel.days.get(`${d.getUTCFullYear()}-${d.getUTCMonth() + 1}-${d.getUTCDate()}`) ?? 0);
      }
    } else if (interval === 43200) {
      if (first.getUTCDate() !== 1 || first.getUTCMonth() !== 0 || start % 86_400 !== 0) return null;
      const year = first.getUTCFullYear();
      for (let m = 0; m < 12 && Date.UTC(year, m, 1) <= Math.min(end * 1000, now); m++) {
        let sum = 0;
        for (const [key, wh] of channel.days) if (key.startsWith(`${year}-${m + 1}-`)) sum += wh;
        data.push(sum);
      }
    } else return null;
    return { local_time: this.localTime(), data, start_timestamp: start, end_timestamp: end, interval };
  }

  // ---- discovery ----

  discoveryReply(): Buffer {
    const family =
      this.kind === 'iot-klap'
        ? 'IOT.SMARTPLUGSWITCH'
        : this.model.startsWith('K') || this.model.startsWith('E')
          ? 'SMART.KASAPLUG'
          : 'SMART.TAPOPLUG';
    const encrypt = this.spec.advertise ?? (this.kind === 'aes' ? 'AES' : 'KLAP');
    const schm: Json = { is_support_https: false, encrypt_type: encrypt, http_port: this.httpPort };
    if (this.kind === 'aes') schm['lv'] = this.spec.loginVersion ?? 2;
    else if (this.kind === 'klap' || this.klapVersion === 2) schm['lv'] = 2;
    if (this.kind === 'iot-klap' && this.klapVersion === 2) schm['new_klap'] = 1;
    const result: Json = {
      device_id: createHash('md5').update(this.deviceId).digest('hex').toUpperCase(),
      device_model: `${this.model}(${this.spec.region ?? 'EU'})`,
      device_type: family,
      factory_default: false,
      ip: this.address,
      is_support_iot_cloud: true,
      mac: this.mac,
      mgt_encrypt_schm: schm,
      obd_src: 'tplink',
      owner: createHash('md5').update(this.account.username).digest('hex').toUpperCase(),
      protocol_version: 1,
    };
    return encodeTdp(Buffer.from(JSON.stringify({ error_code: 0, result }), 'utf8'), 1, 0);
  }

  // ---- HTTP ----

  handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    if (this.faults.closeConnection) res.setHeader('Connection', 'close');
    res.setHeader('Server', 'SIM 1.0');
    const url = new URL(req.url ?? '/', 'http://device');
    const klap = this.kind !== 'aes';
    if (klap && url.pathname === '/app/handshake1') this.#handshake1(res, body);
    else if (klap && url.pathname === '/app/handshake2') this.#handshake2(req, res, body);
    else if (klap && url.pathname === '/app/request') this.#klapRequest(req, res, url, body);
    else if (!klap && url.pathname === '/app') this.#aes(req, res, url, body);
    else {
      res.statusCode = 404;
      res.end();
    }
  }

  #cookie(req: IncomingMessage): string | null {
    const header = req.headers.cookie ?? '';
    const match = /(?:^|;\s*)(?:TP_SESSIONID|SESSIONID)=([\w.-]+)/.exec(header);
    return match?.[1] ?? null;
  }

  #timeoutS(): number {
    return this.spec.sessionTimeoutS ?? 86_400;
  }

  #handshake1(res: ServerResponse, body: Buffer): void {
    if (this.faults.thirdPartyCompat) {
      res.statusCode = 403;
      res.end();
      return;
    }
    if (body.length !== 16) {
      res.statusCode = 400;
      res.end();
      return;
    }
    this.stats.handshakes++;
    const remoteSeed = randomBytes(16);
    const id = hex(16);
    this.klapSessions.set(id, {
      localSeed: Buffer.from(body),
      remoteSeed,
      session: null,
      expiresAt: Date.now() + this.#timeoutS() * 1000,
    });
    res.setHeader('Set-Cookie', `TP_SESSIONID=${id};TIMEOUT=${this.#timeoutS()}`);
    res.setHeader('Content-Type', 'text/html');
    res.end(Buffer.concat([remoteSeed, serverProof(this.klapVersion, body, remoteSeed, this.klapAuth)]));
  }

  #handshake2(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const id = this.#cookie(req);
    const pending = id === null ? undefined : this.klapSessions.get(id);
    if (
      pending === undefined ||
      !proofsEqual(body, clientProof(this.klapVersion, pending.localSeed, pending.remoteSeed, this.klapAuth))
    ) {
      res.statusCode = 403;
      res.end();
      return;
    }
    pending.session = new KlapSession(pending.localSeed, pending.remoteSeed, this.klapAuth);
    res.end();
  }

  #klapRequest(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    const id = this.#cookie(req);
    const live = id === null ? undefined : this.klapSessions.get(id);
    const seq = Number(url.searchParams.get('seq'));
    if (live?.session == null || Date.now() > live.expiresAt || !Number.isInteger(seq)) {
      this.stats.rejectedSessions++;
      res.statusCode = 403;
      res.end();
      return;
    }
    this.stats.requests++;
    if (this.faults.hang) {
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }
    let request: string;
    try {
      request = live.session.decrypt(seq, body).plaintext.toString('utf8');
    } catch {
      res.statusCode = 400;
      res.end();
      return;
    }
    if (this.faults.body === 'short') return void res.end(randomBytes(20));
    if (this.faults.body === 'garbage') return void res.end(randomBytes(32 + 64));
    const answer = this.kind === 'iot-klap' ? this.#iot(request) : JSON.stringify(this.#smartTop(request));
    res.end(live.session.encryptAt(seq, answer));
  }

  #aes(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      res.statusCode = 400;
      res.end();
      return;
    }
    if (!isRecord(json)) return void res.end('{"error_code":-1003}');
    res.setHeader('Content-Type', 'application/json;charset=UTF-8');
    if (json['method'] === 'handshake') {
      if (this.faults.thirdPartyCompat) {
        res.statusCode = 403;
        res.end();
        return;
      }
      const params = isRecord(json['params']) ? json['params'] : {};
      const pem = typeof params['key'] === 'string' ? params['key'] : '';
      const keyIv = randomBytes(32);
      let encrypted: Buffer;
      try {
        encrypted = publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_PADDING }, keyIv);
      } catch {
        return void res.end('{"error_code":-1010}');
      }
      this.stats.handshakes++;
      const id = hex(16);
      this.aesSessions.set(id, {
        session: new AesSession(keyIv.subarray(0, 16), keyIv.subarray(16, 32)),
        token: null,
        expiresAt: Date.now() + this.#timeoutS() * 1000,
      });
      res.setHeader('Set-Cookie', `TP_SESSIONID=${id};TIMEOUT=${this.#timeoutS()}`);
      res.end(JSON.stringify({ error_code: 0, result: { key: encrypted.toString('base64') } }));
      return;
    }
    if (json['method'] !== 'securePassthrough') return void res.end('{"error_code":-1002}');
    const id = this.#cookie(req);
    const live = id === null ? undefined : this.aesSessions.get(id);
    if (live === undefined || Date.now() > live.expiresAt) {
      this.stats.rejectedSessions++;
      return void res.end('{"error_code":9999}');
    }
    const params = isRecord(json['params']) ? json['params'] : {};
    let inner: unknown;
    try {
      inner = JSON.parse(live.session.decrypt(String(params['request'] ?? '')));
    } catch {
      return void res.end('{"error_code":-1003}');
    }
    if (!isRecord(inner)) return void res.end('{"error_code":-1003}');
    let answer: Json;
    if (inner['method'] === 'login_device') {
      answer = this.#login(live, isRecord(inner['params']) ? inner['params'] : {});
    } else if (live.token === null || url.searchParams.get('token') !== live.token) {
      answer = { error_code: -1501 };
    } else {
      this.stats.requests++;
      if (this.faults.hang) {
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
        return;
      }
      answer = this.#smartTop(JSON.stringify(inner));
    }
    if (this.faults.body === 'garbage' && inner['method'] !== 'login_device') {
      return void res.end(
        JSON.stringify({ error_code: 0, result: { response: randomBytes(24).toString('base64') } }),
      );
    }
    if (this.faults.body === 'short' && inner['method'] !== 'login_device') return void res.end('{"error_co');
    res.end(
      JSON.stringify({ error_code: 0, result: { response: live.session.encrypt(JSON.stringify(answer)) } }),
    );
  }

  #login(live: AesServerSession, params: Json): Json {
    const lv = this.spec.loginVersion ?? 2;
    const userOk = params['username'] === b64(sha1Hex(this.account.username));
    const passOk =
      lv >= 2
        ? params['password2'] === b64(sha1Hex(this.account.password))
        : params['password'] === b64(this.account.password);
    if (!userOk || !passOk) return { error_code: -1501 };
    live.token = hex(16);
    return { error_code: 0, result: { token: live.token } };
  }

  // ---- smart protocol ----

  #smartTop(text: string): Json {
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch {
      return { error_code: -1003 };
    }
    if (!isRecord(request)) return { error_code: -1003 };
    return this.#smart(request, null);
  }

  #smart(request: Json, child: Channel | null): Json {
    const method = request['method'];
    const params = isRecord(request['params']) ? request['params'] : {};
    if (method === 'multipleRequest') {
      if (this.faults.rejectBatches) return { error_code: -1003 };
      const requests = Array.isArray(params['requests']) ? params['requests'] : [];
      const responses: Json[] = [];
      for (const r of requests) {
        if (!isRecord(r)) break;
        const answer = this.#smart(r, child);
        responses.push({ method: r['method'], ...answer });
        // Like real firmware: the batch stops at the first failing method.
        if (answer['error_code'] !== 0) break;
      }
      return { error_code: 0, result: { responses } };
    }
    if (method === 'control_child' && child === null) {
      const target = this.channels.get(String(params['device_id']));
      if (!this.isStrip || target === undefined) return { error_code: -1001 };
      const data = isRecord(params['requestData']) ? params['requestData'] : {};
      return { error_code: 0, result: { responseData: this.#smart(data, target) } };
    }
    const result = this.#method(String(method), params, child);
    return result === null ? { error_code: -1002 } : { error_code: 0, result };
  }

  #method(method: string, params: Json, child: Channel | null): Json | null {
    const version = this.spec.energyVersion ?? 2;
    const channel = child ?? (this.isStrip ? null : (this.channels.get(this.deviceId) ?? null));
    switch (method) {
      case 'component_nego': {
        if (child !== null) return null;
        const list: Json[] = [{ id: 'device', ver_code: 2 }];
        if (this.isStrip) list.push({ id: 'child_device', ver_code: 1 });
        else list.push({ id: 'energy_monitoring', ver_code: version });
        return { component_list: list };
      }
      case 'get_device_info': {
        const info: Json = {
          device_id: child?.id ?? this.deviceId,
          model: this.model,
          type: this.kind === 'aes' && this.model.startsWith('K') ? 'SMART.KASAPLUG' : 'SMART.TAPOPLUG',
          nickname: b64(child?.alias ?? this.alias),
          mac: this.mac,
          hw_ver: '1.0',
          fw_ver: '1.2.3 Build 240101 Rel.000000',
        };
        if (!this.isStrip || child !== null) info['device_on'] = true;
        return info;
      }
      case 'get_child_device_list':
      case 'get_child_device_component_list': {
        if (!this.isStrip || child !== null) return null;
        const start = typeof params['start_index'] === 'number' ? params['start_index'] : 0;
        const all = [...this.channels.values()];
        const page = all.slice(start, start + 2); // small pages: exercises paging
        if (method === 'get_child_device_list') {
          return {
            child_device_list: page.map((c, i) => ({
              device_id: c.id,
              nickname: b64(c.alias),
              position: start + i + 1,
              model: this.model,
              category: 'plug.powerstrip.sub-plug',
              device_on: true,
            })),
            start_index: start,
            sum: all.length,
          };
        }
        return {
          child_component_list: page.map((c) => ({
            device_id: c.id,
            component_list: [{ id: 'energy_monitoring', ver_code: 2 }],
          })),
          start_index: start,
          sum: all.length,
        };
      }
      case 'get_energy_usage': {
        if (channel === null) return null;
        const v = channel.values;
        const usage: Json = {
          today_runtime: 60,
          month_runtime: 600,
          today_energy: v.todayWh,
          month_energy: v.monthWh,
          local_time: this.localTime(),
          electricity_charge: [0, 0, 0],
        };
        if (this.spec.usagePower !== false) usage['current_power'] = v.powerMw;
        return usage;
      }
      case 'get_device_time':
        if (child !== null) return null;
        return {
          timestamp: Math.floor((Date.now() + this.clockOffsetMs) / 1000),
          time_diff: this.zoneOffsetMs / 60_000,
          region: 'Etc/Simulated',
        };
      case 'get_energy_data':
        if (channel === null || this.spec.energyData !== true) return null;
        return this.energyData(channel, params);
      case 'get_current_power':
        if (channel === null || version < 2) return null;
        return { current_power: Math.floor(channel.values.powerMw / 1000) };
      case 'get_emeter_data': {
        if (channel === null || version < 2 || this.spec.emeterData === false) return null;
        const v = channel.values;
        return {
          power_mw: v.powerMw,
          voltage_mv: v.voltageMv,
          current_ma: v.currentMa,
          energy_wh: v.sinceBootWh,
        };
      }
      default:
        return null;
    }
  }

  // ---- legacy JSON over KLAP ----

  #iot(text: string): string {
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch {
      return '{"err_code":-1,"err_msg":"json error"}';
    }
    if (!isRecord(request)) return '{"err_code":-1}';
    const out: Json = {};
    const context = isRecord(request['context']) ? request['context'] : null;
    const childIds = context !== null && Array.isArray(context['child_ids']) ? context['child_ids'] : null;
    if (isRecord(request['system'])) {
      const children = this.isStrip
        ? [...this.channels.values()].map((c) => ({ id: c.id, alias: c.alias, state: 1 }))
        : undefined;
      out['system'] = {
        get_sysinfo: {
          err_code: 0,
          sw_ver: '1.1.2 Build 230101 Rel.000000',
          hw_ver: this.klapVersion === 2 ? '2.0' : '1.0',
          type: 'IOT.SMARTPLUGSWITCH',
          model: `${this.model}(US)`,
          mac: this.mac.replace(/-/g, ':'),
          deviceId: this.deviceId,
          alias: this.alias,
          feature: 'TIM:ENE',
          ...(children === undefined ? { relay_state: 1 } : { children, child_num: children.length }),
        },
      };
    }
    if (isRecord(request['time'])) {
      const t = new Date(Date.now() + this.clockOffsetMs + this.zoneOffsetMs);
      out['time'] = {
        get_time: {
          err_code: 0,
          year: t.getUTCFullYear(),
          month: t.getUTCMonth() + 1,
          mday: t.getUTCDate(),
          hour: t.getUTCHours(),
          min: t.getUTCMinutes(),
          sec: t.getUTCSeconds(),
        },
      };
    }
    if (isRecord(request['emeter'])) {
      let channel: Channel | undefined;
      if (this.isStrip) {
        const id = childIds?.[0];
        channel = typeof id === 'string' ? this.channels.get(id) : undefined;
      } else {
        channel = this.channels.get(this.deviceId);
      }
      const emeter = request['emeter'];
      if (channel !== undefined && (isRecord(emeter['get_daystat']) || isRecord(emeter['get_monthstat']))) {
        out['emeter'] = this.iotStats(channel, emeter);
        return JSON.stringify(out);
      }
      out['emeter'] =
        channel === undefined
          ? { err_code: -2, err_msg: 'child id not found' }
          : {
              get_realtime: {
                err_code: 0,
                power_mw: channel.values.powerMw,
                voltage_mv: channel.values.voltageMv,
                current_ma: channel.values.currentMa,
                total_wh: channel.values.sinceBootWh,
                slot_id: this.channelIds.indexOf(channel.id),
              },
            };
    }
    return JSON.stringify(out);
  }
}

async function listen(server: Server, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function bindUdp(socket: Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => {});
}

/** Starts the fleet: every device's HTTP server and discovery socket, and the broadcast receiver. */
export async function startSmartSimulators(options: SmartSimFleetOptions): Promise<SmartSimFleet> {
  const devices = options.devices.map((spec) => new SimDevice(spec, options.httpPort));
  const byId = new Map(devices.map((d) => [d.deviceId, d]));
  const byChannel = new Map<string, SimDevice>();
  for (const d of devices) for (const id of d.channelIds) byChannel.set(id, d);
  const broadcast = createSocket({ type: 'udp4', reuseAddr: true });
  const started: SimDevice[] = [];

  const answer = (device: SimDevice, msg: Buffer, rinfo: RemoteInfo): void => {
    if (
      !LOOPBACK.test(rinfo.address) ||
      !isProbe(msg) ||
      device.udp === null ||
      device.faults.silentDiscovery
    )
      return;
    device.stats.discoveryReplies++;
    try {
      device.udp.send(device.discoveryReply(), rinfo.port, rinfo.address);
    } catch {
      // closed meanwhile: the answer is lost, as on a network
    }
  };

  const stopAll = async (): Promise<void> => {
    try {
      broadcast.close();
    } catch {
      // not bound
    }
    await Promise.all(
      started.map(async (d) => {
        for (const res of d.hanging) res.destroy();
        d.udp?.close();
        d.udp = null;
        const server = d.server;
        d.server = null;
        if (server !== null) {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
      }),
    );
  };

  try {
    for (const device of devices) {
      const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => device.handle(req, res, Buffer.concat(chunks)));
      });
      device.server = server;
      started.push(device);
      await listen(server, options.httpPort, device.address);
      const udp = createSocket({ type: 'udp4' });
      device.udp = udp;
      await bindUdp(udp, options.discoveryPort, device.address);
      udp.on('message', (msg, rinfo) => answer(device, msg, rinfo));
    }
    await bindUdp(broadcast, options.discoveryPort, '127.255.255.255');
    broadcast.on('message', (msg, rinfo) => {
      for (const device of devices) answer(device, msg, rinfo);
    });
  } catch (err) {
    await stopAll();
    throw err;
  }

  const device = (id: string): SimDevice => {
    const d = byId.get(id);
    if (d === undefined) throw new Error(`no simulated smart plug ${id}`);
    return d;
  };
  const channel = (id: string): Channel => {
    const c = byChannel.get(id)?.channels.get(id);
    if (c === undefined) throw new Error(`no simulated smart channel ${id}`);
    return c;
  };

  return {
    discoveryPort: options.discoveryPort,
    httpPort: options.httpPort,
    devices,
    setValues: (id, values) => Object.assign(channel(id).values, values),
    values: (id) => ({ ...channel(id).values }),
    setFaults: (id, faults) => {
      const d = device(id);
      d.faults = { ...d.faults, ...faults };
      if (!d.faults.hang) for (const res of d.hanging) res.destroy();
    },
    setAccount: (id, account) => {
      const d = device(id);
      d.account = account;
      d.klapAuth = authHash(d.klapVersion, account.username, account.password);
      d.klapSessions.clear();
      d.aesSessions.clear();
    },
    expireSessions: (id) => {
      const d = device(id);
      d.klapSessions.clear();
      d.aesSessions.clear();
    },
    reboot: (id) => {
      const d = device(id);
      d.klapSessions.clear();
      d.aesSessions.clear();
      for (const c of d.channels.values()) c.values.sinceBootWh = 0;
    },
    monthRollover: (id) => {
      const d = device(id);
      const now = new Date(Date.now() + d.clockOffsetMs);
      d.clockOffsetMs += Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1, 0, 0, 5) - now.getTime();
      for (const c of d.channels.values()) {
        c.values.monthWh = 0;
        c.values.todayWh = 0;
      }
    },
    setDayStats: (id, days) => {
      const c = channel(id);
      for (const d of days) c.days.set(`${d.year}-${d.month}-${d.day}`, d.energyWh);
    },
    setClockOffset: (id, offsetMs) => {
      device(id).zoneOffsetMs = offsetMs;
    },
    stats: (id) => ({ ...device(id).stats }),
    animate: (intervalMs = 1000) => {
      // Energy in Wh accrues in fractions: a 100 W load adds 0.028 Wh per second.
      const carry = new Map<Channel, number>();
      const timer = setInterval(() => {
        for (const d of devices) {
          for (const c of d.channels.values()) {
            const v = c.values;
            v.powerMw = Math.max(0, Math.round(v.powerMw * (0.97 + Math.random() * 0.06)));
            v.currentMa = Math.round((v.powerMw / Math.max(1, v.voltageMv)) * 1000);
            const energy = (carry.get(c) ?? 0) + (v.powerMw / 1000) * (intervalMs / 3_600_000);
            const wh = Math.floor(energy);
            carry.set(c, energy - wh);
            v.monthWh += wh;
            v.todayWh += wh;
            v.sinceBootWh += wh;
          }
        }
      }, intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
    stop: stopAll,
  };
}
