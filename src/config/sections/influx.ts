/** storage.influx: the optional InfluxDB v2 sink, fed from SQLite. */
import * as z from 'zod';
import {
  duration,
  HOT,
  hasUrlCredentials,
  int,
  isHttpUrl,
  key,
  nullWhenUnset,
  optionalPath,
  optionalText,
} from './building-blocks.js';

/** Tags the forwarder sets on every point itself; a global tag must not shadow them. */
export const RESERVED_TAGS: readonly string[] = ['device_id', 'alias', 'model', 'parent_id'];

export function influxSection() {
  return z
    .strictObject({
      url: key(
        z
          .string()
          .refine((text) => text === '' || isHttpUrl(text), {
            message:
              'must be an http:// or https:// URL such as http://127.0.0.1:8086, or empty for no InfluxDB',
            abort: true,
          })
          .refine((text) => !hasUrlCredentials(text), {
            message:
              'must not hold a user name or password (user:password@host): InfluxDB v2 authenticates with a token; put it in storage.influx.token_file (or storage.influx.token, KASA_MONITOR_STORAGE_INFLUX_TOKEN, or a systemd credential named influx-token)',
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'InfluxDB v2 write API base URL. Absent or empty: no InfluxDB. A reload switches to another URL in place (the outbox position is kept); switching InfluxDB on or off takes a restart.',
        HOT,
      ),
      token: key(optionalText(), 'InfluxDB API token (secret). Prefer `token_file` or the environment.', {
        reload: 'hot',
        secret: true,
      }),
      token_file: key(
        optionalPath(),
        'A file holding the InfluxDB token, read at load time (surrounding whitespace trimmed).',
        HOT,
      ),
      org: key(z.string().min(1).prefault('home'), 'InfluxDB organisation.', HOT),
      bucket: key(z.string().min(1).prefault('kasa'), 'InfluxDB bucket.', HOT),
      tags: key(
        z
          .record(
            z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
              message: 'tag names must be letters, digits and underscores, not starting with a digit',
            }),
            z.string().min(1),
          )
          .superRefine(
            (tags, ctx) => {
              if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) return;
              for (const name of Object.keys(tags)) {
                if (RESERVED_TAGS.includes(name)) {
                  ctx.addIssue({
                    code: 'custom',
                    path: [name],
                    message: `is set on every point already (reserved tags: ${RESERVED_TAGS.join(', ')})`,
                  });
                }
              }
            },
            // Also when another tag is malformed: report every problem in one go.
            { when: () => true },
          )
          .prefault({}),
        'Global tags added to every point (name: value).',
        HOT,
      ),
      batch_size: key(
        int(1, 1_000_000).prefault(5000),
        'Points per write request at most (readings are forwarded from SQLite in batches).',
        HOT,
      ),
      flush_interval: key(
        duration('1s'),
        'How often the forwarder looks for readings committed to SQLite and not yet sent (it also wakes on every commit).',
        HOT,
      ),
      gzip: key(
        z.boolean().prefault(false),
        'Compress write requests: worth it over a slow link, costs CPU on a LAN.',
        HOT,
      ),
    })
    .prefault({})
    .meta({ description: 'Optional InfluxDB v2 (or compatible) sink, fed from SQLite.' });
}
