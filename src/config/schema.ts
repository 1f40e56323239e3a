import { resolve } from 'node:path';
import * as z from 'zod';
import { isValidTimeZone, systemTimeZone } from '../energy/zone.js';
import type { LogFormat, LogLevel } from '../log/logger.js';
import type { OverflowPolicy } from '../queue/bounded-queue.js';
import { isValidCronExpression } from '../shared/cron.js';
import { type HostPort, parseAddress } from './address.js';
import {
  DURATION_FORMS,
  DURATION_PATTERN,
  formatDuration,
  MAX_DURATION_MS,
  parseDuration,
} from './duration.js';
import {
  RETRY_PRESETS,
  RETRY_STRATEGIES,
  type RetryPreset,
  type RetryStrategyName,
} from './retry-presets.js';
import { AGE_FORMS, AGE_PATTERN, MAX_AGE_MS, parseAge, parseSize, SIZE_FORMS } from './size.js';
import { currencyInput, periodsInput, pricesFileInput } from './tariff.js';

/**
 * The configuration schema: the single source of truth for key names, types, defaults, descriptions
 * (shown in the JSON Schema) and reload behaviour. Keys keep their YAML snake_case names in the parsed
 * object too, so a problem's key path is exactly what the user typed. Durations parse to milliseconds.
 */

/** `hot`: a SIGHUP reload applies the key. `restart`: the daemon must restart for a change to apply. */
export type Reload = 'hot' | 'restart';

export interface KeyInfo {
  readonly reload: Reload;
  /** Never logged, never echoed in errors; `redactConfig` replaces it. */
  readonly secret?: boolean;
}

/** Reload tags (and secrecy) of every leaf key, attached to the schema instance of that key. */
export const keyRegistry = z.registry<KeyInfo>();

function key<T extends z.ZodType>(schema: T, description: string, info: KeyInfo): T {
  const described = schema.meta({ description });
  keyRegistry.add(described, info);
  return described;
}

const HOT: KeyInfo = { reload: 'hot' };
const RESTART: KeyInfo = { reload: 'restart' };

function int(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return z.number().int().min(min).max(max);
}

function durationInput() {
  return z.union(
    [
      z.string().regex(DURATION_PATTERN, { message: `must be ${DURATION_FORMS}` }),
      z.number().nonnegative({ message: `must be ${DURATION_FORMS}` }),
    ],
    { error: `must be ${DURATION_FORMS}` },
  );
}

/** Milliseconds of a duration that passed `durationInput`, or an issue (zero when not allowed, too long). */
function durationMs(
  value: string | number,
  ctx: { readonly issues: z.core.$ZodRawIssue[] },
  options: { allowZero?: boolean },
): number {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.issues.push({ code: 'custom', input: value, message: `must be ${DURATION_FORMS}` });
    return z.NEVER;
  }
  if (ms === 0 && options.allowZero !== true) {
    ctx.issues.push({ code: 'custom', input: value, message: 'must be longer than 0' });
    return z.NEVER;
  }
  if (ms > MAX_DURATION_MS) {
    ctx.issues.push({
      code: 'custom',
      input: value,
      message: `must be at most ${formatDuration(MAX_DURATION_MS)}`,
    });
    return z.NEVER;
  }
  return ms;
}

function duration(defaultValue: string, options: { allowZero?: boolean } = {}) {
  return durationInput()
    .transform((value, ctx) => durationMs(value, ctx, options))
    .prefault(defaultValue);
}

/** A duration that may be left unset (absent, null or empty): null then. */
function optionalDuration(options: { allowZero?: boolean } = {}) {
  return durationInput()
    .nullable()
    .optional()
    .transform((value, ctx) =>
      value === null || value === undefined ? null : durationMs(value, ctx, options),
    );
}

/**
 * Runs a section's cross-key rule only when the keys it compares parsed cleanly (zod would otherwise
 * run it on the raw text of a key whose check failed without aborting).
 */
function whenParsed(...fields: string[]) {
  return {
    when: (payload: z.core.ParsePayload): boolean =>
      !payload.issues.some((issue) => fields.includes(String(issue.path?.[0] ?? ''))),
  };
}

/** The longest poll timeout taken when `polling.timeout` is not set. */
export const MAX_DEFAULT_POLL_TIMEOUT_MS = 3000;

/**
 * `polling.timeout` when the user did not set it: 80% of the interval, at most 3 s, so that
 * `interval: 1s` alone works (a poll gets 800 ms) and the default stays 3 s from `interval: 4s` up.
 */
export function defaultPollTimeout(interval: number): number {
  return Math.max(1, Math.min(MAX_DEFAULT_POLL_TIMEOUT_MS, Math.floor(interval * 0.8)));
}

function pollingTimeoutProblem(
  interval: number,
  timeout: number | null,
  schedule: string | null,
): string | undefined {
  // Only a timeout the user set is checked: the default is derived from the interval.
  if (timeout === null || schedule !== null || timeout < interval) return undefined;
  return `must be shorter than polling.interval (${formatDuration(interval)}), got ${formatDuration(timeout)}`;
}

function retryDelayProblem(
  baseDelay: number | null,
  maxDelay: number | null,
  maxKey = 'retry.max_delay',
): string | undefined {
  if (baseDelay === null || maxDelay === null || baseDelay <= maxDelay) return undefined;
  return `must not be longer than ${maxKey} (${formatDuration(maxDelay)}), got ${formatDuration(baseDelay)}`;
}

/** Loopback addresses: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return (
    h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
  );
}

function openListenProblem(
  listen: { readonly host: string },
  username: string | null,
  allowUnauthenticated: boolean,
): string | undefined {
  if (isLoopbackHost(listen.host) || username !== null || allowUnauthenticated) return undefined;
  return `listens on ${listen.host}, which is not loopback: set http.auth (username and password_file) to require a password, or http.allow_unauthenticated: true to serve the dashboard and API to the network without auth`;
}

/** A rule between keys: `problem` gets the parsed values of `keys` (in order) and reports at `path`. */
export interface CrossCheck {
  readonly path: string;
  readonly keys: readonly string[];
  readonly problem: (values: readonly unknown[]) => string | undefined;
}

/**
 * The rules between keys, also enforced inside the schema. zod skips a section's rule once any key
 * of it fails to parse; the loader runs these on their own keys then, so one run reports everything.
 */
export const CROSS_CHECKS: readonly CrossCheck[] = [
  {
    path: 'polling.timeout',
    keys: ['polling.interval', 'polling.timeout', 'polling.schedule'],
    problem: ([interval, timeout, schedule]) =>
      pollingTimeoutProblem(interval as number, timeout as number | null, schedule as string | null),
  },
  {
    path: 'retry.base_delay',
    keys: ['retry.base_delay', 'retry.max_delay'],
    problem: ([baseDelay, maxDelay]) =>
      retryDelayProblem(baseDelay as number | null, maxDelay as number | null),
  },
  ...(['database', 'network', 'file'] as const).map(
    (preset): CrossCheck => ({
      path: `retry.${preset}.base_delay`,
      keys: [`retry.${preset}.base_delay`, `retry.${preset}.max_delay`],
      problem: ([baseDelay, maxDelay]) =>
        retryDelayProblem(baseDelay as number, maxDelay as number, `retry.${preset}.max_delay`),
    }),
  ),
  {
    path: 'http.listen',
    keys: ['http.listen', 'http.auth.username', 'http.allow_unauthenticated'],
    problem: ([listen, username, allow]) =>
      openListenProblem(listen as { host: string }, username as string | null, allow as boolean),
  },
  {
    path: 'health.recovery_backoff',
    keys: ['health.recovery_backoff', 'health.recovery_backoff_max'],
    problem: ([backoff, max]) =>
      retryDelayProblem(backoff as number, max as number, 'health.recovery_backoff_max'),
  },
];

/** An optional setting: absent, null or (for strings where that makes sense) empty means "not set". */
function nullWhenUnset<T>(value: T | null | undefined | ''): T | null {
  return value === undefined || value === '' ? null : value;
}

const IPV4_MESSAGE = 'must be an IPv4 address such as 255.255.255.255 or 192.168.1.255';
/** A text key that may be absent or empty (both mean unset: null). */
function optionalText() {
  return z.string().nullable().optional().transform(nullWhenUnset);
}

/** A file path key that may be absent (null), made absolute against the working directory. */
function optionalPath() {
  return z
    .string()
    .min(1)
    .nullable()
    .optional()
    .transform((path) => (path ? resolve(path) : null));
}

const ipv4 = () => z.ipv4({ error: IPV4_MESSAGE });

const hostEntry = z.string().transform((text, ctx): { host: string; port: number | null } => {
  const parsed = parseAddress(text, { portRequired: false, minPort: 1 });
  if (!parsed.ok) {
    ctx.issues.push({ code: 'custom', input: text, message: parsed.message });
    return z.NEVER;
  }
  return { host: parsed.host, port: parsed.port };
});

const listenAddress = z.string().transform((text, ctx): HostPort => {
  const parsed = parseAddress(text, { portRequired: true, minPort: 0 });
  if (!parsed.ok || parsed.port === null) {
    ctx.issues.push({
      code: 'custom',
      input: text,
      message: parsed.ok ? 'the port is missing' : parsed.message,
    });
    return z.NEVER;
  }
  return { host: parsed.host, port: parsed.port };
});

/** Tags the forwarder sets on every point itself; a global tag must not shadow them. */
export const RESERVED_TAGS: readonly string[] = ['device_id', 'alias', 'model', 'parent_id'];

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

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** True when a URL carries user-info (`http://user:password@host`): secrets belong in their own keys. */
export function hasUrlCredentials(text: string): boolean {
  try {
    const url = new URL(text);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

/** `$STATE_DIRECTORY/kasa-monitor.db` (the first entry when systemd passes a list), else `./data/kasa-monitor.db`. */
export function defaultDatabasePath(env: NodeJS.ProcessEnv = process.env): string {
  const stateDirectory = env['STATE_DIRECTORY']?.split(':').find((entry) => entry !== '');
  return resolve(stateDirectory ?? 'data', 'kasa-monitor.db');
}

export const JOURNAL_MODES = ['WAL', 'DELETE', 'TRUNCATE', 'PERSIST', 'MEMORY', 'OFF'] as const;
export const SYNCHRONOUS_MODES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;
export const TEMP_STORES = ['DEFAULT', 'FILE', 'MEMORY'] as const;
export const LOG_LEVELS = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
] as const satisfies readonly LogLevel[];
export const LOG_FORMATS = ['auto', 'json', 'journal', 'human'] as const satisfies readonly LogFormat[];
export const OVERFLOW_POLICIES = ['drop-oldest', 'drop-newest'] as const satisfies readonly OverflowPolicy[];
export const TRANSPORTS = ['udp', 'tcp'] as const;

export { RETRY_PRESETS, RETRY_STRATEGIES, type RetryPreset, type RetryStrategyName };

/** Defaults of one retry preset, as users would write them. */
export interface RetryPresetDefaults {
  readonly strategy: RetryStrategyName;
  readonly maxAttempts: number;
  readonly baseDelay: string;
  readonly maxDelay: string;
  readonly jitter: boolean;
  readonly timeout: string;
  readonly breakerThreshold: number;
  readonly breakerHalfOpenAfter: string;
}

/** The presets of the original system: database 3 × exponential ≤ 5 s, network 5 × exponential ≤ 30 s, file 3 × linear ≤ 1 s. */
export const RETRY_PRESET_DEFAULTS: Readonly<Record<RetryPreset, RetryPresetDefaults>> = {
  database: {
    strategy: 'exponential',
    maxAttempts: 3,
    baseDelay: '100ms',
    maxDelay: '5s',
    jitter: true,
    timeout: '30s',
    breakerThreshold: 5,
    breakerHalfOpenAfter: '10s',
  },
  network: {
    strategy: 'exponential',
    maxAttempts: 5,
    baseDelay: '1s',
    maxDelay: '30s',
    jitter: true,
    timeout: '10s',
    breakerThreshold: 5,
    breakerHalfOpenAfter: '30s',
  },
  file: {
    strategy: 'linear',
    maxAttempts: 3,
    baseDelay: '100ms',
    maxDelay: '1s',
    jitter: false,
    timeout: '30s',
    breakerThreshold: 5,
    breakerHalfOpenAfter: '10s',
  },
};

/**
 * Builds the schema. The only environment-dependent part is the default SQLite path (from
 * STATE_DIRECTORY); relative paths resolve against the current directory.
 */
export function createConfigSchema(env: NodeJS.ProcessEnv = process.env) {
  const databaseDefault = defaultDatabasePath(env);

  const timeZone = key(
    z
      .string()
      .nullable()
      .optional()
      .transform((zone, ctx): string => {
        if (zone === null || zone === undefined || zone.trim() === '') return systemTimeZone();
        if (!isValidTimeZone(zone.trim())) {
          ctx.issues.push({
            code: 'custom',
            input: zone,
            message: 'must be an IANA time zone such as Europe/Berlin, America/New_York or UTC',
          });
          return z.NEVER;
        }
        return zone.trim();
      }),
    'IANA time zone of energy periods (days, months), day rollups and backup schedules. Empty: the system zone.',
    RESTART,
  );

  const discovery = z
    .strictObject({
      enabled: key(
        z.boolean().prefault(true),
        'Find plugs by UDP broadcast. When false only `hosts` are polled.',
        HOT,
      ),
      broadcast: key(
        z
          .union([ipv4(), z.array(ipv4()).min(1)], {
            error: `must be an IPv4 address or a list of them, such as 255.255.255.255 or [192.168.1.255]`,
          })
          .transform((value) => (typeof value === 'string' ? [value] : [...value]))
          .prefault(['255.255.255.255']),
        'Where discovery packets go: one IPv4 broadcast address or a list. 255.255.255.255 reaches the whole local network.',
        HOT,
      ),
      port: key(
        int(1, 65535).prefault(9999),
        'The UDP/TCP port the plugs listen on (9999 for Kasa; tests use others).',
        RESTART,
      ),
      interval: key(
        duration('60s'),
        'How often discovery runs again to find new plugs and moved addresses.',
        HOT,
      ),
      timeout: key(duration('2s'), 'How long one discovery round listens for replies.', HOT),
      hosts: key(
        z.array(hostEntry).prefault([]),
        "Static plug addresses ('host' or 'host:port'), polled even when broadcast cannot reach them.",
        HOT,
      ),
      offline_tolerance: key(
        int(1, 1000).prefault(3),
        'Consecutive missed discoveries or polls before a plug counts as offline.',
        HOT,
      ),
      receive_buffer: key(
        int(1024, 2_147_483_647).prefault(4_194_304),
        'UDP receive buffer for discovery replies, in bytes.',
        RESTART,
      ),
      smart_port: key(
        int(1, 65535).prefault(20002),
        "UDP port of the newer plugs' discovery (KLAP/AES: Tapo, newer Kasa); 20002 on real plugs, tests use others. Asked at the same broadcast addresses and hosts every round.",
        HOT,
      ),
    })
    .transform((section) => ({
      ...section,
      hosts: section.hosts.map((entry): HostPort => ({ host: entry.host, port: entry.port ?? section.port })),
    }))
    .prefault({})
    .meta({ description: 'Finding plugs on the network.' });

  const polling = z
    .strictObject({
      interval: key(duration('10s'), 'Time between two polls of a plug (unless `schedule` is set).', HOT),
      schedule: key(
        z
          .string()
          .refine((expression) => isValidCronExpression(expression), {
            message:
              "must be a node-cron expression: 5 fields, or 6 with seconds first (for example '*/10 * * * * *')",
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'A node-cron expression (a seconds field is allowed). When set it replaces `interval`.',
        HOT,
      ),
      timeout: key(
        optionalDuration(),
        'How long one poll may take before it counts as missed. Must be shorter than `interval`. Not set: 80% of `interval`, at most 3s.',
        HOT,
      ),
      concurrency: key(int(1, 10_000).prefault(64), 'Polls in flight at most.', HOT),
      transport: key(z.enum(TRANSPORTS).prefault('udp'), 'How polls reach a plug: udp or tcp.', RESTART),
      backoff_after: key(
        int(1, 1000).prefault(3),
        'Consecutive polls a plug leaves unanswered (timeout, refused) before it is backed off: polled again after one interval, then two, four, ... up to backoff_max, until it answers.',
        HOT,
      ),
      backoff_max: key(
        duration('5m'),
        'Longest pause between two polls of a plug that does not answer.',
        HOT,
      ),
    })
    .superRefine(
      (section, ctx) => {
        const message = pollingTimeoutProblem(section.interval, section.timeout, section.schedule);
        if (message) ctx.addIssue({ code: 'custom', path: ['timeout'], message });
      },
      whenParsed('interval', 'timeout', 'schedule'),
    )
    .transform((section) => ({
      ...section,
      timeout: section.timeout ?? defaultPollTimeout(section.interval),
    }))
    .prefault({})
    .meta({ description: 'Reading the energy meters.' });

  const queue = z
    .strictObject({
      capacity: key(
        int(1, 100_000_000).prefault(100_000),
        'Readings held in memory while storage catches up.',
        HOT,
      ),
      overflow: key(
        z.enum(OVERFLOW_POLICIES).prefault('drop-oldest'),
        'Which reading is lost when the queue is full.',
        HOT,
      ),
    })
    .prefault({})
    .meta({ description: 'The bounded queue between the poller and the writer.' });

  const writer = z
    .strictObject({
      batch_size: key(
        int(1, 1_000_000).prefault(1000),
        'Readings written per SQLite transaction at most.',
        HOT,
      ),
      flush_interval: key(duration('1s'), 'Longest time a reading waits in the queue before a write.', HOT),
    })
    .prefault({})
    .meta({ description: 'Batching readings into SQLite.' });

  const sqlite = z
    .strictObject({
      path: key(
        z
          .string()
          .min(1)
          .nullable()
          .optional()
          .transform((path) => resolve(path ?? databaseDefault)),
        "The database file. Default: $STATE_DIRECTORY/kasa-monitor.db under systemd; /var/lib/kasa-monitor/kasa-monitor.db (the service's) for any command that reads /etc/kasa-monitor/config.yaml; else ./data/kasa-monitor.db. Relative paths resolve against the working directory.",
        RESTART,
      ),
      journal_mode: key(z.enum(JOURNAL_MODES).prefault('WAL'), 'SQLite journal_mode pragma.', RESTART),
      synchronous: key(
        z.enum(SYNCHRONOUS_MODES).prefault('FULL'),
        'SQLite synchronous pragma. FULL makes every committed reading survive a power cut.',
        RESTART,
      ),
      cache_size: key(
        z.number().int().prefault(10_000),
        'SQLite cache_size pragma: pages when positive, KiB when negative.',
        RESTART,
      ),
      temp_store: key(z.enum(TEMP_STORES).prefault('MEMORY'), 'SQLite temp_store pragma.', RESTART),
      busy_timeout: key(
        duration('100ms', { allowZero: true }),
        'How long the writer waits for a lock held by another connection before SQLITE_BUSY; kept short because the database retry policy retries a busy write with backoff.',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'The SQLite database, the source of truth.' });

  const pool = z
    .strictObject({
      size: key(
        int(1, 1000).prefault(5),
        'Reader connections kept open while they are used; any idle for 10 s is closed (each is a worker thread) and opened again on demand.',
        RESTART,
      ),
      max_overflow: key(int(0, 1000).prefault(10), 'Extra reader connections allowed under load.', RESTART),
      timeout: key(duration('30s'), 'How long a request waits for a free reader connection.', RESTART),
      recycle: key(duration('3600s'), 'Reader connections older than this are reopened.', RESTART),
    })
    .prefault({})
    .meta({
      description:
        'Reader connections: the HTTP API and the health checks read through them, in worker threads.',
    });

  const influx = z
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

  // The data lifecycle: rollups, retention and the disk budget, backups (issue 6).
  const age = (defaultValue: string) =>
    z
      .union([z.string().regex(AGE_PATTERN, { message: `must be ${AGE_FORMS}` }), z.number().nonnegative()], {
        error: `must be ${AGE_FORMS}`,
      })
      .transform((value, ctx): number | null => {
        const ms = parseAge(value);
        if (ms === undefined || (ms !== null && ms <= 0)) {
          ctx.issues.push({ code: 'custom', input: value, message: `must be ${AGE_FORMS}, longer than 0` });
          return z.NEVER;
        }
        return ms === null || ms > MAX_AGE_MS ? null : ms;
      })
      .prefault(defaultValue);

  const rollups = z
    .strictObject({
      enabled: key(
        z.boolean().prefault(true),
        'Keep minute, hour and day rollups of every channel as readings are stored (energy, mean/min/max power).',
        RESTART,
      ),
      gap_limit: key(
        duration('5m'),
        'Readings of a channel further apart than this leave a gap: reported as such, its energy never spread over time.',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'Rollups and energy accounting.' });

  const retention = z
    .strictObject({
      raw: key(age('30d'), 'Raw readings (one row a poll) older than this are deleted.', HOT),
      minute: key(age('365d'), 'Minute rollups older than this are deleted.', HOT),
      hour: key(age('forever'), 'Hour rollups older than this are deleted.', HOT),
      day: key(age('forever'), 'Day rollups older than this are deleted.', HOT),
      max_size: key(
        z
          .union([z.string(), z.number().nonnegative()])
          .nullable()
          .optional()
          .transform((value, ctx): number | null => {
            if (value === null || value === undefined || value === '') return null;
            const bytes = parseSize(value);
            if (bytes === undefined || bytes < 1_048_576) {
              ctx.issues.push({
                code: 'custom',
                input: value,
                message: `must be ${SIZE_FORMS}, at least 1MiB`,
              });
              return z.NEVER;
            }
            return bytes;
          }),
        'Disk budget of the database (WAL included): near it, the oldest raw readings go first, then the oldest minutes, then hours. Empty: no budget.',
        HOT,
      ),
      interval: key(duration('15m'), 'How often retention and the budget are applied.', HOT),
    })
    .prefault({})
    .meta({ description: 'How long data is kept, and how much disk it may use.' });

  const backup = z
    .strictObject({
      schedule: key(
        z
          .string()
          .refine((expression) => isValidCronExpression(expression), {
            message: "must be a node-cron expression, for example '0 3 * * *' (every day at 03:00)",
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'When scheduled backups run (node-cron, in time_zone). Empty: none.',
        HOT,
      ),
      keep: key(int(1, 10_000).prefault(7), 'Scheduled backups kept; older ones are deleted.', HOT),
      directory: key(
        z
          .string()
          .nullable()
          .optional()
          .transform((path) => (path ? resolve(path) : null)),
        'Where backups go. Empty: a backups directory beside the database (the state directory).',
        HOT,
      ),
    })
    .prefault({})
    .meta({ description: 'Online backups of the database.' });

  const storage = z
    .strictObject({ sqlite, pool, influx, rollups, retention, backup })
    .prefault({})
    .meta({ description: 'Where readings are kept.' });

  const preset = (name: RetryPreset, defaults: RetryPresetDefaults, use: string) =>
    z
      .strictObject({
        strategy: key(
          z.enum(RETRY_STRATEGIES).prefault(defaults.strategy),
          'How the delay between attempts grows: exponential (doubles), linear (base, 2x base, ...), fixed (always base_delay) or random (between base_delay and max_delay).',
          HOT,
        ),
        max_attempts: key(
          int(1, 1000).prefault(defaults.maxAttempts),
          'Attempts per operation, the first one included.',
          HOT,
        ),
        base_delay: key(
          duration(defaults.baseDelay),
          'Delay before the first retry (the minimum for the random strategy).',
          HOT,
        ),
        max_delay: key(duration(defaults.maxDelay), 'Longest delay between two attempts.', HOT),
        jitter: key(
          z.boolean().prefault(defaults.jitter),
          'Randomise each delay between half and all of its value, so many clients do not retry in step.',
          HOT,
        ),
        timeout: key(
          duration(defaults.timeout),
          'How long one attempt may take before it counts as failed.',
          HOT,
        ),
        breaker_threshold: key(
          int(1, 1_000_000).prefault(defaults.breakerThreshold),
          'Consecutive failed attempts that open the circuit breaker: calls then fail at once, without touching the resource.',
          HOT,
        ),
        breaker_half_open_after: key(
          duration(defaults.breakerHalfOpenAfter),
          'How long an open breaker waits before it lets one trial call through (success closes it).',
          HOT,
        ),
      })
      .superRefine(
        (section, ctx) => {
          const message = retryDelayProblem(section.base_delay, section.max_delay, `retry.${name}.max_delay`);
          if (message) ctx.addIssue({ code: 'custom', path: ['base_delay'], message });
        },
        whenParsed('base_delay', 'max_delay'),
      )
      .prefault({})
      .meta({ description: `The ${name} preset: ${use}.` });

  const retry = z
    .strictObject({
      max_attempts: key(
        int(1, 1000).nullable().optional().transform(nullWhenUnset),
        'When set, replaces max_attempts of every preset (RETRY_MAX_ATTEMPTS).',
        HOT,
      ),
      base_delay: key(
        optionalDuration(),
        'When set, replaces base_delay of every preset (RETRY_BASE_DELAY, in seconds).',
        HOT,
      ),
      max_delay: key(
        optionalDuration(),
        'When set, replaces max_delay of every preset (RETRY_MAX_DELAY, in seconds).',
        HOT,
      ),
      database: preset('database', RETRY_PRESET_DEFAULTS.database, 'SQLite writes'),
      network: preset('network', RETRY_PRESET_DEFAULTS.network, 'InfluxDB writes'),
      file: preset('file', RETRY_PRESET_DEFAULTS.file, 'file operations'),
    })
    .superRefine(
      (section, ctx) => {
        const message = retryDelayProblem(section.base_delay, section.max_delay);
        if (message) ctx.addIssue({ code: 'custom', path: ['base_delay'], message });
      },
      whenParsed('base_delay', 'max_delay'),
    )
    .prefault({})
    .meta({ description: 'Retry, circuit-breaker and timeout policies, by preset.' });

  const httpAuth = z
    .strictObject({
      username: key(
        z.string().min(1).nullable().optional().transform(nullWhenUnset),
        'User name of HTTP basic authentication for the dashboard and API. Unset: no authentication.',
        RESTART,
      ),
      password: key(
        optionalText(),
        'The password (secret). Prefer `password_file` or the systemd credential `http-password`.',
        { reload: 'restart', secret: true },
      ),
      password_file: key(
        optionalPath(),
        'A file holding the password, read at start (a trailing line break is not part of it; spaces are).',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'HTTP basic authentication (use it behind TLS, e.g. a reverse proxy).' });

  const http = z
    .strictObject({
      listen: key(
        listenAddress.prefault('127.0.0.1:9469'),
        "Address of the dashboard, /health, /metrics and /api: 'host:port' ('[::1]:9469' for IPv6; port 0 picks a free one). An address other than loopback needs `auth` or `allow_unauthenticated: true`.",
        RESTART,
      ),
      auth: httpAuth,
      allow_unauthenticated: key(
        z.boolean().prefault(false),
        'Serve a non-loopback `listen` address without authentication (anyone on the network sees the dashboard and API).',
        RESTART,
      ),
      public_metrics: key(
        z.boolean().prefault(false),
        'Serve /metrics and /health without authentication even when `auth` is set (for Prometheus).',
        RESTART,
      ),
      write_timeout: key(
        duration('30s'),
        'How long a response waits for a client that takes no more bytes before it is cut (a stalled /api/readings export frees its reader connection).',
        RESTART,
      ),
    })
    .superRefine(
      (section, ctx) => {
        const message = openListenProblem(
          section.listen,
          section.auth.username,
          section.allow_unauthenticated,
        );
        if (message) ctx.addIssue({ code: 'custom', path: ['listen'], message });
      },
      whenParsed('listen', 'auth', 'allow_unauthenticated'),
    )
    .prefault({})
    .meta({ description: 'The HTTP endpoint.' });

  const health = z
    .strictObject({
      interval: key(duration('30s'), 'How often every health check runs.', HOT),
      alert_after: key(
        int(1, 1000).prefault(3),
        'Consecutive bad checks (degraded or failed) before a problem becomes an alert.',
        HOT,
      ),
      webhook_url: key(
        z
          .string()
          .refine((text) => text === '' || isHttpUrl(text), {
            message: 'must be an http:// or https:// URL, or empty for no webhook',
          })
          .nullable()
          .optional()
          .transform(nullWhenUnset),
        'Alerts and their "resolved" notices are POSTed here as JSON (through the network retry policy). Absent or empty: log only.',
        HOT,
      ),
      quick_check_interval: key(
        duration('6h', { allowZero: true }),
        'How often `PRAGMA quick_check` runs on a reader connection (it always runs at start); 0: only at start.',
        HOT,
      ),
      min_free_disk_mb: key(
        int(0).prefault(100),
        'Free space (MiB) on the database file system below which the database check is degraded.',
        HOT,
      ),
      max_wal_mb: key(
        int(1).prefault(256),
        'Size (MiB) of the -wal file above which the database check is degraded (checkpoints are starved).',
        HOT,
      ),
      max_event_loop_lag: key(
        duration('200ms'),
        'p99 event-loop delay over one check interval above which the event-loop check is degraded.',
        HOT,
      ),
      max_memory_mb: key(
        int(16).prefault(512),
        'Resident memory (MiB) above which the memory check is degraded.',
        HOT,
      ),
      max_poll_error_rate: key(
        z.number().min(0).max(1).prefault(0.5),
        'Share of poll requests (0-1) that gave no reading over one check interval above which polling is degraded.',
        HOT,
      ),
      max_influx_lag: key(
        duration('5m'),
        'How far InfluxDB may trail SQLite (age of the oldest reading not yet sent) before the InfluxDB check is degraded.',
        HOT,
      ),
      recovery_attempts: key(
        int(1, 1000).prefault(5),
        'Recovery actions (reopen SQLite, restart discovery or the scheduler) tried per problem before the daemon exits non-zero so the service manager restarts it.',
        HOT,
      ),
      recovery_backoff: key(
        duration('1s'),
        'Wait before the second recovery attempt; it doubles each time.',
        HOT,
      ),
      recovery_backoff_max: key(duration('1m'), 'Longest wait between two recovery attempts.', HOT),
    })
    .superRefine(
      (section, ctx) => {
        const message = retryDelayProblem(
          section.recovery_backoff,
          section.recovery_backoff_max,
          'health.recovery_backoff_max',
        );
        if (message) ctx.addIssue({ code: 'custom', path: ['recovery_backoff'], message });
      },
      whenParsed('recovery_backoff', 'recovery_backoff_max'),
    )
    .prefault({})
    .meta({ description: 'The supervisor: health checks, alerts and recovery.' });

  const log = z
    .strictObject({
      level: key(z.enum(LOG_LEVELS).prefault('info'), 'Least severe level logged.', HOT),
      format: key(
        z.enum(LOG_FORMATS).prefault('auto'),
        'json: one JSON object a line (for log shippers); journal: syslog priority prefix for journald; human: short lines for a person; auto: journal under systemd, human on a terminal, else json.',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'Logging (to stdout).' });

  const shutdown = z
    .strictObject({
      timeout: key(
        duration('10s'),
        'How long SIGTERM may take to drain the queue into storage before a hard exit.',
        HOT,
      ),
    })
    .prefault({})
    .meta({ description: 'Stopping the daemon.' });

  // The TP-Link (Kasa/Tapo) account newer plugs need for local access (issue 12). load.ts resolves
  // the password from password_file, KASA_PASSWORD or the systemd credential; use `tplinkAccount`.
  const credentials = z
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

  // What energy costs (issue 13); the rules are checked in ./tariff.ts.
  const tariff = z
    .strictObject({
      currency: key(
        currencyInput,
        'Currency of every price (three letters, such as EUR). Needed when periods or prices_file are set.',
        HOT,
      ),
      periods: key(
        periodsInput.prefault([]),
        'Tariff periods, each from its date (in time_zone) until the next: standing_charge per day and rates (days, from, to, price per kWh; first match wins).',
        HOT,
      ),
      prices_file: key(
        pricesFileInput,
        'CSV of dynamic prices (header start,end,price; ISO 8601 times with offset; end exclusive; rows must touch). A row overrides the rates for its interval.',
        HOT,
      ),
    })
    .superRefine(
      (section, ctx) => {
        const periods: unknown = section.periods;
        const priced =
          (Array.isArray(periods) && periods.length > 0) || typeof section.prices_file === 'string';
        if (section.currency === null && priced) {
          ctx.addIssue({
            code: 'custom',
            path: ['currency'],
            message: 'must be set when tariff.periods or tariff.prices_file is (such as EUR)',
          });
        }
      },
      // Also when a period has a problem: a missing currency is reported in the same run.
      whenParsed('currency'),
    )
    .prefault({})
    .meta({
      description: 'What energy costs: tariff periods with rates and standing charges, and dynamic prices.',
    });

  // Filling gaps from the plugs' own statistics (issue 13).
  const backfill = z
    .strictObject({
      enabled: key(
        z.boolean().prefault(true),
        "After a gap, fill each complete day it touched from the plugs' own day statistics (`kasa-monitor energy --backfill` does the same once).",
        RESTART,
      ),
      interval: key(
        duration('1h'),
        'How often the daemon looks for gaps to fill (a run asks a plug only when it has an unfilled day).',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: "Gap fills from the plugs' own energy statistics." });

  // MQTT with Home Assistant discovery (issue 15). load.ts resolves the password from
  // password_file or the systemd credential mqtt-password. Every key is applied by a reload.
  const mqtt = z
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

  return z
    .strictObject({
      discovery,
      polling,
      queue,
      writer,
      storage,
      retry,
      http,
      log,
      shutdown,
      health,
      time_zone: timeZone,
      credentials,
      tariff,
      backfill,
      mqtt,
    })
    .meta({ title: 'kasa-monitor configuration', description: 'The kasa-monitor YAML configuration file.' });
}

export type ConfigSchema = ReturnType<typeof createConfigSchema>;

/** The parsed configuration: defaults applied, durations in milliseconds, addresses split into host and port. */
export type Config = z.output<ConfigSchema>;
/** The configuration as users write it (YAML file). */
export type ConfigInput = z.input<ConfigSchema>;

export type DiscoveryConfig = Config['discovery'];
export type PollingConfig = Config['polling'];
export type QueueConfig = Config['queue'];
export type WriterConfig = Config['writer'];
export type StorageConfig = Config['storage'];
export type SqliteConfig = StorageConfig['sqlite'];
export type PoolConfig = StorageConfig['pool'];
export type InfluxConfig = StorageConfig['influx'];
export type RetryConfig = Config['retry'];
export type RetryPresetConfig = RetryConfig['database'];
export type HttpConfig = Config['http'];
export type HealthConfig = Config['health'];
export type LogConfig = Config['log'];
export type ShutdownConfig = Config['shutdown'];
export type RollupsConfig = StorageConfig['rollups'];
export type RetentionConfig = StorageConfig['retention'];
export type BackupConfig = StorageConfig['backup'];
export type CredentialsConfig = Config['credentials'];
export type TariffSectionConfig = Config['tariff'];
export type MqttConfig = Config['mqtt'];

/** The configuration with nothing set: every default (the SQLite path depends on `env`). */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return createConfigSchema(env).parse({});
}
