/**
 * KLAP's pure cryptography (no I/O): the v1/v2 auth hashes, the handshake proofs, and the session
 * that encrypts and signs each request. Checked against known answers (test/smart-crypto.test.ts).
 *
 * v1 (legacy IOT family): md5-based auth hash. v2 (SMART family and IOT "new_klap"): sha1/sha256.
 * Which one a device speaks is not configured: the client tests both against the device's first
 * handshake reply (see klap.ts).
 */
import { createCipheriv, createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';

export type KlapVersion = 1 | 2;

function digest(algorithm: 'md5' | 'sha1' | 'sha256', ...parts: Buffer[]): Buffer {
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return hash.digest();
}

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

/** The account-derived secret. The e-mail is used exactly as written: the hashes are case-sensitive. */
export function authHash(version: KlapVersion, username: string, password: string): Buffer {
  if (version === 1) return digest('md5', digest('md5', utf8(username)), digest('md5', utf8(password)));
  return digest('sha256', digest('sha1', utf8(username)), digest('sha1', utf8(password)));
}

/** What the device sends back in handshake1 (after its 16-byte seed) to prove it knows the account. */
export function serverProof(
  version: KlapVersion,
  localSeed: Buffer,
  remoteSeed: Buffer,
  auth: Buffer,
): Buffer {
  return version === 1 ? digest('sha256', localSeed, auth) : digest('sha256', localSeed, remoteSeed, auth);
}

/** What the client sends in handshake2 to prove it knows the account. */
export function clientProof(
  version: KlapVersion,
  localSeed: Buffer,
  remoteSeed: Buffer,
  auth: Buffer,
): Buffer {
  return version === 1 ? digest('sha256', remoteSeed, auth) : digest('sha256', remoteSeed, localSeed, auth);
}

/** Constant-time comparison of two proofs (false for different lengths). */
export function proofsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const INT32_MAX = 0x7fffffff;

/**
 * The keys of one KLAP session and its request counter. The first request uses `seq0 + 1`.
 * `seq` is a signed 32-bit integer on the wire; `exhausted` says when the session must be renewed
 * (before the counter would wrap).
 */
export class KlapSession {
  readonly key: Buffer;
  readonly iv12: Buffer;
  readonly sig: Buffer;
  readonly seq0: number;
  #seq: number;

  constructor(localSeed: Buffer, remoteSeed: Buffer, auth: Buffer) {
    this.key = digest('sha256', utf8('lsk'), localSeed, remoteSeed, auth).subarray(0, 16);
    const full = digest('sha256', utf8('iv'), localSeed, remoteSeed, auth);
    this.iv12 = full.subarray(0, 12);
    this.seq0 = full.readInt32BE(28);
    this.#seq = this.seq0;
    this.sig = digest('sha256', utf8('ldk'), localSeed, remoteSeed, auth).subarray(0, 28);
  }

  get seq(): number {
    return this.#seq;
  }

  /** True when the next request would overflow the signed 32-bit counter. */
  get exhausted(): boolean {
    return this.#seq >= INT32_MAX;
  }

  #iv(seq: number): Buffer {
    const iv = Buffer.alloc(16);
    this.iv12.copy(iv, 0);
    iv.writeInt32BE(seq, 12);
    return iv;
  }

  /** Encrypts the next request: advances seq and returns it with the body (signature ‖ ciphertext). */
  encrypt(plaintext: string | Buffer): { seq: number; body: Buffer } {
    if (this.exhausted) throw new RangeError('KLAP sequence number exhausted: renew the session');
    const seq = ++this.#seq;
    return { seq, body: this.encryptAt(seq, plaintext) };
  }

  /** Encrypts under a given seq (the device side answers under the request's seq). */
  encryptAt(seq: number, plaintext: string | Buffer): Buffer {
    const cipher = createCipheriv('aes-128-cbc', this.key, this.#iv(seq));
    const ct = Buffer.concat([
      cipher.update(typeof plaintext === 'string' ? utf8(plaintext) : plaintext),
      cipher.final(),
    ]);
    const seqBytes = Buffer.alloc(4);
    seqBytes.writeInt32BE(seq, 0);
    const signature = digest('sha256', this.sig, seqBytes, ct);
    return Buffer.concat([signature, ct]);
  }

  /** The signature a body under `seq` should carry. */
  signatureFor(seq: number, ciphertext: Buffer): Buffer {
    const seqBytes = Buffer.alloc(4);
    seqBytes.writeInt32BE(seq, 0);
    return digest('sha256', this.sig, seqBytes, ciphertext);
  }

  /**
   * Decrypts a body (signature ‖ ciphertext) under `seq`. Throws on a body too short, a ciphertext
   * that is not whole blocks, or bad padding. The signature is not enforced (devices' response
   * signatures are unverified); `signed` tells whether it matched.
   */
  decrypt(seq: number, body: Buffer): { plaintext: Buffer; signed: boolean } {
    if (body.length < 48 || (body.length - 32) % 16 !== 0) {
      throw new RangeError(`KLAP body of ${body.length} bytes is not a signature and whole AES blocks`);
    }
    const ct = body.subarray(32);
    const decipher = createDecipheriv('aes-128-cbc', this.key, this.#iv(seq));
    const plaintext = Buffer.concat([decipher.update(ct), decipher.final()]);
    return { plaintext, signed: proofsEqual(body.subarray(0, 32), this.signatureFor(seq, ct)) };
  }
}
