/**
 * One newer plug (or strip) over KLAP or AES: who it is (`identify`) and what its meters read
 * (`readChannel`). Two payloads ride the encrypted transports: the smart protocol (Tapo, newer Kasa)
 * and the legacy JSON (HS300 hw 2.0 and other "new_klap" IOT devices), whose outlets then come out
 * exactly as they do over port 9999.
 *
 * Identity: the device is identified (device_id, outlets) right after every new session, through
 * that session; every later answer is bound to the session's keys, which only the device that did
 * the handshake holds. A device that took over the address cannot answer under our session (it
 * answers 403, and the next handshake is followed by a fresh identification), so an answer is
 * never filed under another plug.
 */
import { energyPayload, type KasaSysinfo, parseReply, parseSysinfo, responderOf } from '../discovery/kasa.js';
import { AesTransport } from './aes.js';
import type { Account } from './credentials.js';
import { EnergyMethods, energyVersion, mapEnergy, type SmartEnergy } from './energy.js';
import { SmartError } from './errors.js';
import { KlapTransport } from './klap.js';
import { type CallOutcome, decodeNickname, isRecord, SmartProtocol } from './protocol.js';
import type { TransportChoice } from './tdp.js';
import type { SmartTransport } from './transport.js';

export interface SmartOutlet {
  /** The child's device id, as the strip reports it (its channel id). */
  readonly id: string;
  readonly alias: string;
  /** Its energy_monitoring version; null: no meter. */
  readonly energyVersion: number | null;
}

export interface SmartIdentity {
  readonly payload: 'smart' | 'iot';
  /** `get_device_info.device_id` (40 hex), or the legacy sysinfo deviceId. */
  readonly deviceId: string;
  readonly model: string;
  readonly alias: string;
  readonly mac: string | null;
  readonly hwVer: string | null;
  readonly fwVer: string | null;
  /** The plug itself has a meter (a strip's parent never counts: only its outlets are channels). */
  readonly hasEmeter: boolean;
  readonly outlets: readonly SmartOutlet[];
}

/** One channel's answer: the values and who answered (the device, and the outlet when asked for one). */
export type ChannelAnswer =
  | {
      readonly ok: true;
      readonly kind: 'smart';
      readonly energy: SmartEnergy;
      readonly deviceId: string;
      readonly childIds: readonly string[];
    }
  | {
      readonly ok: true;
      readonly kind: 'iot';
      readonly reply: unknown;
      readonly deviceId: string;
      readonly childIds: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason: 'malformed' | 'error-code' | 'implausible';
      readonly detail: string;
    };

export interface SmartDeviceOptions {
  readonly host: string;
  readonly choice: Exclude<TransportChoice, { kind: 'unsupported' }>;
  readonly httpPort: number;
  readonly account: Account | null;
}

function makeTransport(options: SmartDeviceOptions): SmartTransport {
  const { choice } = options;
  if (choice.kind === 'aes') {
    return new AesTransport({
      host: options.host,
      port: options.httpPort,
      account: options.account,
      loginVersion: choice.loginVersion,
    });
  }
  return new KlapTransport({
    host: options.host,
    port: options.httpPort,
    account: options.account,
    prefer: choice.payload === 'iot' ? 1 : 2,
  });
}

function str(value: unknown, max = 128): string | null {
  return typeof value === 'string' && value.length <= max ? value : null;
}

const SYSINFO = '{"system":{"get_sysinfo":{}}}';

export class SmartDevice {
  readonly transport: SmartTransport;
  readonly protocol: SmartProtocol;
  readonly payload: 'smart' | 'iot';
  #identity: SmartIdentity | null = null;
  /** transport handshakes at the last identification: a new session must be identified again. */
  #identifiedAt = -1;
  readonly #methods = new Map<string | null, EnergyMethods>();

  constructor(options: SmartDeviceOptions, transport?: SmartTransport) {
    this.transport = transport ?? makeTransport(options);
    this.protocol = new SmartProtocol(this.transport);
    this.payload = options.choice.kind === 'klap' ? options.choice.payload : 'smart';
  }

  get identity(): SmartIdentity | null {
    return this.#identity;
  }

  /** Authenticates (if needed) and reads who the device is. Rejects with a SmartError. */
  async identify(timeoutMs: number): Promise<SmartIdentity> {
    const before = this.transport.handshakes;
    const identity =
      this.payload === 'iot' ? await this.#identifyIot(timeoutMs) : await this.#identifySmart(timeoutMs);
    const previous = this.#identity;
    if (previous === null || previous.deviceId !== identity.deviceId) {
      this.#methods.clear();
    }
    this.#identity = identity;
    // If the identification itself needed a handshake, that session is the one identified.
    this.#identifiedAt = Math.max(before, this.transport.handshakes);
    return identity;
  }

  /**
   * Reads one channel (`childId` null for the plug itself). Resolves with the values and who
   * answered, or with why the answer is not a reading; rejects with a SmartError when nothing
   * usable came back (timeout, auth, protocol).
   */
  async readChannel(childId: string | null, timeoutMs: number): Promise<ChannelAnswer> {
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    if (this.#identity === null) await this.identify(left());
    const answer =
      this.payload === 'iot' ? await this.#readIot(childId, left()) : await this.#readSmart(childId, left());
    if (this.payload === 'smart' && this.transport.handshakes !== this.#identifiedAt) {
      // The answer came through a new session: identify that session's device before trusting it.
      const identity = await this.identify(left());
      if (answer.ok)
        return { ...answer, deviceId: identity.deviceId, childIds: identity.outlets.map((o) => o.id) };
    }
    return answer;
  }

  /**
   * One energy request as the device answers it (for `kasa-monitor probe`): the outcome of each
   * energy method, or the legacy reply. Rejects with a SmartError.
   */
  async rawEnergy(childId: string | null, timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    if (this.#identity === null) await this.identify(left());
    if (this.payload === 'iot') return parseReply(await this.transport.send(energyPayload(childId), left()));
    const version =
      childId === null ? 2 : (this.#identity?.outlets.find((o) => o.id === childId)?.energyVersion ?? 2);
    const outcomes = await this.protocol.many(new EnergyMethods(version).requests(), left(), childId);
    return Object.fromEntries(outcomes);
  }

  close(): void {
    this.transport.close();
  }

  async #identifySmart(timeoutMs: number): Promise<SmartIdentity> {
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    const outcomes = await this.protocol.many(
      [{ method: 'component_nego' }, { method: 'get_device_info' }],
      left(),
    );
    const info = outcomes.get('get_device_info');
    if (info === undefined || !info.ok) {
      throw new SmartError(
        'protocol',
        `get_device_info failed (${info === undefined ? 'no answer' : `error_code ${info.code}`})`,
      );
    }
    const nego = outcomes.get('component_nego');
    const components = nego?.ok ? nego.result : null;
    const r = info.result;
    const deviceId = str(r['device_id']);
    if (deviceId === null || deviceId.length === 0)
      throw new SmartError('protocol', 'get_device_info has no device_id');
    const list = components?.['component_list'];
    const isStrip = Array.isArray(list) && list.some((c) => isRecord(c) && c['id'] === 'child_device');
    const outlets = isStrip ? await this.#children(left) : [];
    const version = energyVersion(components);
    return {
      payload: 'smart',
      deviceId,
      model: (str(r['model'], 64) ?? 'unknown').replace(/\(.*\)$/, ''),
      alias: decodeNickname(r['nickname']),
      mac: str(r['mac'], 32),
      hwVer: str(r['hw_ver'], 32),
      fwVer: str(r['fw_ver'], 64),
      // A strip's parent may answer energy methods with the outlets' sum: never a channel.
      hasEmeter: !isStrip && version !== null,
      outlets,
    };
  }

  /** The strip's outlets, with their meters (paged lists: asked until `sum` entries came). */
  async #children(left: () => number): Promise<SmartOutlet[]> {
    const children = await this.#paged('get_child_device_list', 'child_device_list', left);
    const components = await this.#paged(
      'get_child_device_component_list',
      'child_component_list',
      left,
    ).catch(() => []);
    const versions = new Map<string, number | null>();
    for (const c of components) {
      const id = str(c['device_id']);
      if (id !== null) versions.set(id, energyVersion(c));
    }
    const outlets: SmartOutlet[] = [];
    for (const child of children) {
      const id = str(child['device_id']);
      if (id === null || id.length === 0) continue;
      outlets.push({
        id,
        alias: decodeNickname(child['nickname']),
        energyVersion: versions.has(id) ? (versions.get(id) ?? null) : 2,
      });
    }
    return outlets;
  }

  async #paged(method: string, field: string, left: () => number): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    for (let page = 0; page < 20; page++) {
      const outcome: CallOutcome = await this.protocol.call(
        page === 0 ? { method } : { method, params: { start_index: items.length } },
        left(),
      );
      if (!outcome.ok)
        throw new SmartError('device-error', `${method} error_code ${outcome.code}`, {
          deviceCode: outcome.code,
        });
      const list = outcome.result[field];
      if (!Array.isArray(list) || list.length === 0) break;
      for (const item of list) if (isRecord(item)) items.push(item);
      const sum = outcome.result['sum'];
      if (typeof sum !== 'number' || items.length >= sum) break;
    }
    return items;
  }

  async #readSmart(childId: string | null, timeoutMs: number): Promise<ChannelAnswer> {
    const identity = this.#identity;
    if (identity === null) throw new SmartError('protocol', 'device not identified');
    let methods = this.#methods.get(childId);
    if (methods === undefined) {
      const version =
        childId === null ? 2 : (identity.outlets.find((o) => o.id === childId)?.energyVersion ?? 2);
      methods = new EnergyMethods(version);
      this.#methods.set(childId, methods);
    }
    const outcomes = await this.protocol.many(methods.requests(), timeoutMs, childId);
    methods.learn(outcomes);
    const mapped = mapEnergy(outcomes);
    if (!mapped.ok) return mapped;
    return {
      ok: true,
      kind: 'smart',
      energy: mapped.energy,
      deviceId: identity.deviceId,
      childIds: identity.outlets.map((o) => o.id),
    };
  }

  async #identifyIot(timeoutMs: number): Promise<SmartIdentity> {
    const text = await this.transport.send(SYSINFO, timeoutMs);
    const sysinfo = parseIotSysinfo(text);
    if (sysinfo === null) throw new SmartError('protocol', 'get_sysinfo answer is not a usable sysinfo');
    this.#iotSysinfo = sysinfo;
    const raw = sysinfo.raw;
    return {
      payload: 'iot',
      deviceId: sysinfo.deviceId,
      model: sysinfo.model.replace(/\(.*\)$/, ''),
      alias: sysinfo.alias,
      mac: str(raw['mac']) ?? str(raw['ethernet_mac']),
      hwVer: str(raw['hw_ver']),
      fwVer: str(raw['sw_ver']),
      hasEmeter: sysinfo.hasEmeter && sysinfo.outlets.length === 0,
      outlets: sysinfo.outlets.map((o) => ({
        id: o.id,
        alias: o.alias,
        energyVersion: sysinfo.hasEmeter ? 1 : null,
      })),
    };
  }

  #iotSysinfo: KasaSysinfo | null = null;

  /** The legacy sysinfo of an IOT device over KLAP (null for a smart-protocol device). */
  get iotSysinfo(): KasaSysinfo | null {
    return this.#iotSysinfo;
  }

  /** Legacy JSON: the identity comes in the same answer (sysinfo with the realtime), as over 9999. */
  async #readIot(childId: string | null, timeoutMs: number): Promise<ChannelAnswer> {
    const text = await this.transport.send(energyPayload(childId), timeoutMs);
    const parsed = parseReply(text);
    if (!parsed.ok) return { ok: false, reason: 'malformed', detail: parsed.detail };
    const who = responderOf(parsed.value);
    if (who === null)
      return { ok: false, reason: 'malformed', detail: 'the answer does not say which device sent it' };
    this.#iotSysinfo = who.sysinfo;
    return {
      ok: true,
      kind: 'iot',
      reply: parsed.value,
      deviceId: who.responder.deviceId,
      childIds: who.responder.childIds,
    };
  }
}

function parseIotSysinfo(text: string): KasaSysinfo | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(parsed) || !isRecord(parsed['system'])) return null;
  const sysinfo = parsed['system']['get_sysinfo'];
  return isRecord(sysinfo) ? parseSysinfo(sysinfo) : null;
}
