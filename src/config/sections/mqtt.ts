/**
 * mqtt: MQTT with Home Assistant discovery (issue 15). load.ts resolves the password from
 * password_file or the systemd credential mqtt-password. Every key is applied by a reload.
 */
import * as z from 'zod';
import { HOT, key, nullWhenUnset, optionalDuration, optionalPath, optionalText } from './building-blocks.js';

function isMqttUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (
      (url.protocol === 'mqtt:' || url.protocol === 'mqtts:') &&
      url.hostname !== '' &&
      url.username === '' &&
      url.password === ''
    );
  } catch {
    return false;
  }
}

export function mqttSection() {
  return z
    .strictObject({
      url: key(
        z
          .string()
          .refine((text) => text === '' || isMqttUrl(text), {
            message:
              'must be an mqtt:// or mqtts:// URL such as mqtt://127.0.0.1:1883, without user or password (use mqtt.username and mqtt.password_file), or empty for no MQTT',
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'MQTT broker URL (mqtt:// or mqtts://). Absent or empty: no MQTT.',
        HOT,
      ),
      username: key(optionalText(), 'MQTT user name. Empty: connect without one.', HOT),
      password: key(
        optionalText(),
        'MQTT password (secret). Prefer `password_file` or the systemd credential mqtt-password.',
        { reload: 'hot', secret: true },
      ),
      password_file: key(
        optionalPath(),
        'A file holding the MQTT password, read at load time (a trailing newline is not part of it).',
        HOT,
      ),
      ca_file: key(
        optionalPath(),
        "PEM file with the CA certificate(s) that sign the broker's certificate (mqtts://). Empty: the system CAs.",
        HOT,
      ),
      topic_prefix: key(
        z
          .string()
          .regex(/^[^#+]+$/, { message: 'must be a non-empty MQTT topic without # or +' })
          .refine((text) => !text.startsWith('/') && !text.endsWith('/'), {
            message: 'must not start or end with /',
          })
          .prefault('kasa-monitor'),
        'Topics are <topic_prefix>/<device_id>/state, <topic_prefix>/<device_id>/availability and <topic_prefix>/status.',
        HOT,
      ),
      homeassistant: z
        .strictObject({
          discovery: key(
            z.boolean().prefault(true),
            'Publish Home Assistant discovery configs (retained), so plugs appear in Home Assistant by themselves.',
            HOT,
          ),
          prefix: key(
            z
              .string()
              .regex(/^[^#+]+$/, { message: 'must be a non-empty MQTT topic without # or +' })
              .prefault('homeassistant'),
            "Home Assistant's discovery prefix.",
            HOT,
          ),
          expire_after: key(
            optionalDuration(),
            'A plug offline for longer than this has its Home Assistant entities removed (they come back when it does). Empty: never.',
            HOT,
          ),
        })
        .prefault({})
        .meta({ description: 'Home Assistant MQTT discovery.' }),
    })
    .prefault({})
    .meta({ description: 'Publishing readings to an MQTT broker, with Home Assistant discovery.' });
}
