/**
 * AES securePassthrough's cryptography (no I/O). The device encrypts the session key with our RSA
 * public key using PKCS#1 v1.5; Node 20 refuses RSA_PKCS1_PADDING for private decryption
 * (CVE-2023-46809), so we decrypt with RSA_NO_PADDING and strip the padding ourselves. A fresh key
 * pair per handshake means there is no long-lived key a padding oracle could be used against.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  generateKeyPair,
  type KeyObject,
  privateDecrypt,
} from 'node:crypto';
import { promisify } from 'node:util';

export interface HandshakeKey {
  /** PEM SPKI with the base64 on one line, as the devices expect it. */
  readonly publicPem: string;
  readonly privateKey: KeyObject;
}

/** A fresh 1024-bit key pair per handshake, generated off the event loop. */
export async function newHandshakeKey(): Promise<HandshakeKey> {
  const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 1024 });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const publicPem = `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`;
  return { publicPem, privateKey };
}

/**
 * Removes EME-PKCS1-v1_5 padding: 00 02, at least 8 non-zero bytes, 00, message. Returns null when
 * the block is not padded that way.
 */
export function unpadPkcs1v15(block: Buffer): Buffer | null {
  if (block.length < 11 || block[0] !== 0x00 || block[1] !== 0x02) return null;
  const zero = block.indexOf(0x00, 2);
  if (zero < 0 || zero < 10) return null;
  return block.subarray(zero + 1);
}

/** Decrypts the handshake's `key` field into the session's AES key and IV (16 + 16 bytes). */
export function decryptSessionKey(
  privateKey: KeyObject,
  encryptedB64: string,
): { key: Buffer; iv: Buffer } | null {
  let block: Buffer;
  try {
    block = privateDecrypt(
      { key: privateKey, padding: constants.RSA_NO_PADDING },
      Buffer.from(encryptedB64, 'base64'),
    );
  } catch {
    return null;
  }
  const message = unpadPkcs1v15(block);
  if (message === null || message.length !== 32) return null;
  return { key: Buffer.from(message.subarray(0, 16)), iv: Buffer.from(message.subarray(16, 32)) };
}

/** The session cipher: same key and IV for every message (that is the protocol, not our choice). */
export class AesSession {
  constructor(
    readonly key: Buffer,
    readonly iv: Buffer,
  ) {}

  encrypt(plaintext: string): string {
    const cipher = createCipheriv('aes-128-cbc', this.key, this.iv);
    return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]).toString('base64');
  }

  /** Throws on bad base64 length, partial blocks or bad padding. */
  decrypt(b64: string): string {
    const decipher = createDecipheriv('aes-128-cbc', this.key, this.iv);
    return Buffer.concat([decipher.update(Buffer.from(b64, 'base64')), decipher.final()]).toString('utf8');
  }
}

const sha1Hex = (text: string): string => createHash('sha1').update(text, 'utf8').digest('hex');
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** `login_device` params: lv 2 sends `password2` = b64(sha1 hex(password)); lv 1 b64(password). */
export function loginParams(
  loginVersion: number,
  username: string,
  password: string,
): Record<string, string> {
  const user = b64(sha1Hex(username));
  return loginVersion >= 2
    ? { username: user, password2: b64(sha1Hex(password)) }
    : { username: user, password: b64(password) };
}
