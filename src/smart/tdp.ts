/**
 * The UDP discovery packet of the newer plugs ("TDP", port 20002): a 16-byte big-endian header and a
 * JSON payload. The probe carries an RSA public key (the device may encrypt an optional block with it;
 * plugs do not, but current firmware expects the keyed probe). Replies are untrusted: the parser
 * bounds every field and returns null for anything unusable.
 *
 * Header: version(1)=2, msg_type(1)=0, op_code(2)=1, msg_size(2)=payload length, flags(1)=0x11,
 * padding(1)=0, device_serial(4)=random, crc(4) = crc32 of header+payload computed with 0x5A6B7C8D
 * in the crc field.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

export const TDP_HEADER_BYTES = 16;
const CRC_SEED = 0x5a6b7c8d;
const MAX_REPLY_BYTES = 16 * 1024;

let cachedKey: Promise<string> | null = null;

/**
 * A 2048-bit RSA public key (PEM, SPKI), generated once per process: the probe only carries it.
 * Generated off the event loop (a synchronous 2048-bit keygen blocks it for hundreds of ms, long
 * enough for the legacy discovery round running beside it to time out before reading its replies).
 */
export function discoveryPublicKey(): Promise<string> {
  cachedKey ??= promisify(generateKeyPair)('rsa', { modulusLength: 2048 }).then(({ publicKey }) =>
    publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  );
  return cachedKey;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** zlib's CRC-32 (node:zlib has crc32 only from Node 20.15; engines allows any Node 20). */
export function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Builds a TDP packet (header + JSON payload) with its CRC. */
export function encodeTdp(
  payload: Buffer,
  opCode = 1,
  flags = 0x11,
  serial: Buffer = randomBytes(4),
): Buffer {
  const header = Buffer.alloc(TDP_HEADER_BYTES);
  header.writeUInt8(2, 0);
  header.writeUInt8(0, 1);
  header.writeUInt16BE(opCode, 2);
  header.writeUInt16BE(payload.length, 4);
  header.writeUInt8(flags, 6);
  header.writeUInt8(0, 7);
  serial.copy(header, 8, 0, 4);
  header.writeUInt32BE(CRC_SEED, 12);
  const packet = Buffer.concat([header, payload]);
  packet.writeUInt32BE(crc32(packet) >>> 0, 12);
  return packet;
}

/** The probe: `{"params":{"rsa_key":PEM}}` after the header. */
export function encodeProbe(publicKeyPem: string): Buffer {
  return encodeTdp(Buffer.from(JSON.stringify({ params: { rsa_key: publicKeyPem } }), 'utf8'));
}

export interface TdpHeader {
  readonly version: number;
  readonly opCode: number;
  readonly msgSize: number;
  readonly flags: number;
  readonly serial: Buffer;
  readonly crc: number;
}

/** Reads the header of a packet; null when it is shorter than a header or not version 2. */
export function decodeHeader(packet: Buffer): TdpHeader | null {
  if (packet.length < TDP_HEADER_BYTES || packet.readUInt8(0) !== 2) return null;
  return {
    version: 2,
    opCode: packet.readUInt16BE(2),
    msgSize: packet.readUInt16BE(4),
    flags: packet.readUInt8(6),
    serial: Buffer.from(packet.subarray(8, 12)),
    crc: packet.readUInt32BE(12),
  };
}

/** True when the packet's CRC is right (a real device's replies are not checked: their CRC rules are unknown). */
export function crcValid(packet: Buffer): boolean {
  if (packet.length < TDP_HEADER_BYTES) return false;
  const copy = Buffer.from(packet);
  const crc = copy.readUInt32BE(12);
  copy.writeUInt32BE(CRC_SEED, 12);
  return crc32(copy) >>> 0 === crc;
}

/** Whether a packet is a probe (our own or another client's): devices answer those, clients skip them. */
export function isProbe(packet: Buffer): boolean {
  const header = decodeHeader(packet);
  if (header === null || header.opCode !== 1) return false;
  try {
    const json = JSON.parse(packet.subarray(TDP_HEADER_BYTES).toString('utf8')) as unknown;
    return isRecord(json) && isRecord(json['params']) && !('result' in json);
  } catch {
    return false;
  }
}

/** What the device's reply says about how to reach it. */
export type SmartEncryption = 'KLAP' | 'AES' | 'TPAP' | 'unknown';

export interface SmartDiscoveryReply {
  /** The 32-hex hash id of the discovery reply (not the 40-hex device_id of get_device_info). */
  readonly discoveryId: string;
  /** Model without region: "P110(EU)" → "P110". */
  readonly model: string;
  /** As sent, e.g. "P110(EU)". */
  readonly modelFull: string;
  /** "SMART.TAPOPLUG", "SMART.KASAPLUG", "IOT.SMARTPLUGSWITCH" ... */
  readonly deviceType: string;
  /** "IOT" or "SMART" (prefix of deviceType); other families are not plugs we speak to. */
  readonly family: 'IOT' | 'SMART' | 'other';
  readonly mac: string | null;
  readonly ip: string | null;
  readonly encryption: SmartEncryption;
  /** The encrypt_type as sent (for "unsupported" messages). */
  readonly encryptTypeRaw: string | null;
  readonly httpPort: number;
  readonly loginVersion: number | null;
  readonly https: boolean;
  readonly newKlap: boolean;
  readonly factoryDefault: boolean;
  /** md5 of the owner's account e-mail (as hex) when the device sent it. */
  readonly owner: string | null;
  /** The reply JSON's result object, for `probe` (nothing secret in it). */
  readonly raw: Readonly<Record<string, unknown>>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function boundedString(value: unknown, max: number): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= max ? value : null;
}

/**
 * Parses a reply packet. The header is not trusted for the length (devices' msg_size/crc rules are
 * not verified): the JSON after the 16 bytes is. Null for anything that is not a usable reply.
 */
export function parseReply(packet: Buffer): SmartDiscoveryReply | null {
  if (packet.length <= TDP_HEADER_BYTES || packet.length > MAX_REPLY_BYTES) return null;
  if (packet.readUInt8(0) !== 2) return null;
  let json: unknown;
  try {
    json = JSON.parse(packet.subarray(TDP_HEADER_BYTES).toString('utf8'));
  } catch {
    return null;
  }
  if (!isRecord(json)) return null;
  if (json['error_code'] !== undefined && json['error_code'] !== 0) return null;
  const result = json['result'];
  if (!isRecord(result)) return null;
  const deviceType = boundedString(result['device_type'], 64);
  const modelFull = boundedString(result['device_model'], 64);
  if (deviceType === null || modelFull === null) return null;
  const discoveryId = boundedString(result['device_id'], 128) ?? '';
  const schm = isRecord(result['mgt_encrypt_schm']) ? result['mgt_encrypt_schm'] : {};
  let encryptTypeRaw = boundedString(schm['encrypt_type'], 32);
  if (encryptTypeRaw === null && isRecord(result['encrypt_info'])) {
    encryptTypeRaw = boundedString(result['encrypt_info']['sym_schm'], 32);
  }
  const encryption: SmartEncryption =
    encryptTypeRaw === 'KLAP' || encryptTypeRaw === 'AES' || encryptTypeRaw === 'TPAP'
      ? encryptTypeRaw
      : 'unknown';
  const port = schm['http_port'];
  const httpPort =
    typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535 ? port : 80;
  const lv = schm['lv'];
  let loginVersion = typeof lv === 'number' && Number.isInteger(lv) && lv >= 0 && lv < 100 ? lv : null;
  if (loginVersion === null && Array.isArray(result['encrypt_type'])) {
    const versions = result['encrypt_type']
      .map((v) => Number(v))
      .filter((v) => Number.isInteger(v) && v < 100);
    if (versions.length > 0) loginVersion = Math.max(...versions);
  }
  const family = deviceType.startsWith('IOT.') ? 'IOT' : deviceType.startsWith('SMART.') ? 'SMART' : 'other';
  const mac = boundedString(result['mac'], 32);
  return {
    discoveryId,
    model: modelFull.replace(/\(.*\)$/, ''),
    modelFull,
    deviceType,
    family,
    mac: mac === null ? null : mac.toUpperCase().replace(/:/g, '-'),
    ip: boundedString(result['ip'], 64),
    encryption,
    encryptTypeRaw,
    httpPort,
    loginVersion,
    https: schm['is_support_https'] === true,
    newKlap: schm['new_klap'] === 1 || schm['new_klap'] === true,
    factoryDefault: result['factory_default'] === true,
    owner: boundedString(result['owner'], 64),
    raw: result,
  };
}

/** How we will speak to a device, decided from its reply alone (see notes §1.3). */
export type TransportChoice =
  | { readonly kind: 'klap'; readonly payload: 'smart' | 'iot' }
  | { readonly kind: 'aes'; readonly loginVersion: number }
  | { readonly kind: 'unsupported'; readonly why: string };

export function chooseTransport(reply: SmartDiscoveryReply): TransportChoice {
  if (reply.https) return { kind: 'unsupported', why: 'HTTPS-only transport' };
  if (reply.family === 'other') return { kind: 'unsupported', why: `device family ${reply.deviceType}` };
  // TPAP firmware answers KLAP v2 when "Third-Party Compatibility" is on; else handshake1 gets 403.
  if (reply.encryption === 'KLAP' || reply.encryption === 'TPAP') {
    return { kind: 'klap', payload: reply.family === 'IOT' ? 'iot' : 'smart' };
  }
  if (reply.encryption === 'AES' && reply.family === 'SMART') {
    return { kind: 'aes', loginVersion: reply.loginVersion ?? 1 };
  }
  return { kind: 'unsupported', why: `encryption ${reply.encryptTypeRaw ?? 'not stated'}` };
}
