/**
 * credentials: the TP-Link (Kasa/Tapo) account newer plugs need for local access (issue 12).
 * load.ts resolves the password from password_file, KASA_PASSWORD or the systemd credential; use
 * `tplinkAccount`.
 */
import * as z from 'zod';
import { key, optionalPath, optionalText, RESTART } from './building-blocks.js';

export function credentialsSection() {
  return z
    .strictObject({
      username: key(
        optionalText(),
        'TP-Link account e-mail, used exactly as written (the login hashes are case-sensitive). Personal data: never logged. Also KASA_USERNAME or the systemd credential tplink-username.',
        { reload: 'restart', secret: true },
      ),
      password: key(
        optionalText(),
        'TP-Link account password (secret). Prefer `password_file`, KASA_PASSWORD or the systemd credential tplink-password.',
        { reload: 'restart', secret: true },
      ),
      password_file: key(
        optionalPath(),
        'A file holding the TP-Link account password, read at load time (a trailing newline is not part of it).',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'The TP-Link account that newer (KLAP/AES) plugs need for local access.' });
}
