import { inspect } from 'node:util';
import { REDACTED } from './redact.js';
import type { CredentialsConfig } from './schema.js';

/**
 * The TP-Link (Kasa/Tapo) account, resolved from the config (inline, password_file, KASA_USERNAME /
 * KASA_PASSWORD, systemd credentials): what the KLAP/AES transports need for a handshake. The user
 * name is kept exactly as written: the login hashes are case-sensitive.
 *
 * Serialising or inspecting it shows '[redacted]' (toJSON, util.inspect), so an account passed to a
 * logger, an error or a JSON body by mistake cannot leak; the fields themselves stay plain strings.
 */
export class TplinkAccount {
  constructor(
    readonly username: string,
    readonly password: string,
  ) {}

  toJSON(): { username: string; password: string } {
    return { username: REDACTED, password: REDACTED };
  }

  [inspect.custom](): string {
    return `TplinkAccount { username: '${REDACTED}', password: '${REDACTED}' }`;
  }

  toString(): string {
    return 'TplinkAccount [redacted]';
  }
}

/**
 * The configured account, or null when none is (the transports then try only the blank and built-in
 * default credentials). loadConfig guarantees both parts or neither.
 */
export function tplinkAccount(credentials: CredentialsConfig): TplinkAccount | null {
  if (credentials.username === null || credentials.password === null) return null;
  return new TplinkAccount(credentials.username, credentials.password);
}
