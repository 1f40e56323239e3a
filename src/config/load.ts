import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { safeParse } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';
import { describeIssue } from './issues.js';
import { CONFIG_KEYS, type ConfigKey, closest, configKey, keyContaining, valueAt } from './keys.js';
import { type Config, CROSS_CHECKS, createConfigSchema } from './schema.js';
import { describeYamlErrors } from './yaml-errors.js';

export const DEFAULT_CONFIG_FILE = '/etc/kasa-monitor/config.yaml';
/** The unit's state directory (StateDirectory=kasa-monitor): the service's database lives here. */
export const SYSTEM_STATE_DIRECTORY = '/var/lib/kasa-monitor';
/** Names the configuration file; not a key. */
export const CONFIG_FILE_ENV = 'KASA_MONITOR_CONFIG';
/** KASA_MONITOR_* names that are not keys: the config file. */
const NON_KEY_ENV: readonly string[] = [CONFIG_FILE_ENV];
/** systemd credential read for the Influx token when neither token nor token_file is set. */
export const INFLUX_TOKEN_CREDENTIAL = 'influx-token';
/** systemd credentials read for the TP-Link account when nothing else sets it. */
export const TPLINK_USERNAME_CREDENTIAL = 'tplink-username';
export const TPLINK_PASSWORD_CREDENTIAL = 'tplink-password';
/** systemd credential read for the dashboard password when http.auth.username is set without one. */
export const HTTP_PASSWORD_CREDENTIAL = 'http-password';
/** systemd credential read for the MQTT password when neither password nor password_file is set. */
export const MQTT_PASSWORD_CREDENTIAL = 'mqtt-password';

export interface LoadOptions {
  /** Explicit configuration file (`-c FILE`); it must exist. */
  readonly file?: string | undefined;
  /** The environment to read; process.env by default. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Dotted key path → value, from command-line flags. Strings are converted like environment values; undefined is skipped. */
  readonly overrides?: Readonly<Record<string, unknown>> | undefined;
  /** The file used when neither `file` nor KASA_MONITOR_CONFIG names one, if it exists. Tests point it elsewhere. */
  readonly defaultFile?: string | undefined;
  /**
   * False: never fall back to the system config (`defaultFile`). The demo uses it, so simulated plugs
   * never reach the service's database, MQTT broker or InfluxDB.
   */
  readonly systemConfig?: boolean | undefined;
  /** The service's state directory, the default database's folder with the system config. Tests point it elsewhere. */
  readonly systemStateDirectory?: string | undefined;
}

export interface LoadedConfig {
  readonly config: Config;
  /** The configuration file used, or null when running on defaults (plus environment and flags). */
  readonly source: string | null;
  /** Not fatal: unknown KASA_MONITOR_* environment variables (probably misspelt). */
  readonly warnings: readonly ConfigProblem[];
  /** Why the database is where it is (storage.sqlite.path): for messages when it cannot be found. */
  readonly databaseOrigin: string;
}

/** The environment names of the original system, applied before KASA_MONITOR_* (which win). */
const LEGACY_ENV: readonly (readonly [name: string, path: string])[] = [
  ['DATABASE_PATH', 'storage.sqlite.path'],
  ['DATABASE_URL', 'storage.sqlite.path'],
  ['POOL_SIZE', 'storage.pool.size'],
  ['POOL_MAX_OVERFLOW', 'storage.pool.max_overflow'],
  ['POOL_TIMEOUT', 'storage.pool.timeout'],
  ['POOL_RECYCLE', 'storage.pool.recycle'],
  ['RETRY_MAX_ATTEMPTS', 'retry.max_attempts'],
  ['RETRY_BASE_DELAY', 'retry.base_delay'],
  ['RETRY_MAX_DELAY', 'retry.max_delay'],
];

/** The names python-kasa (and Home Assistant) users know; applied like LEGACY_ENV, KASA_MONITOR_* wins. */
const PYTHON_KASA_ENV: readonly (readonly [name: string, path: string])[] = [
  ['KASA_USERNAME', 'credentials.username'],
  ['KASA_PASSWORD', 'credentials.password'],
];

/** Keys whose value is used exactly as given: whitespace can be part of a password. */
const EXACT_KEYS: ReadonlySet<string> = new Set(['credentials.password']);

type Origin = { readonly kind: 'env'; readonly name: string } | { readonly kind: 'flag' };

type Converted = { ok: true; value: unknown } | { ok: false; message: string } | { ok: 'skip' };

const DATABASE_URL_FORMS = 'sqlite:///relative/path.db or sqlite:////absolute/path.db';

/**
 * DATABASE_URL with SQLAlchemy semantics: `sqlite:///data/x.db` is relative to the working directory,
 * `sqlite:////var/lib/x.db` absolute. A driver suffix (`sqlite+pysqlite://`) and query options are
 * accepted and ignored. Messages never repeat the URL (other schemes may carry a password).
 */
export function sqlitePathFromUrl(url: string): { ok: true; path: string } | { ok: false; message: string } {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(url.trim());
  if (!match) return { ok: false, message: `must be a URL such as ${DATABASE_URL_FORMS}` };
  const scheme = (match[1] ?? '').toLowerCase();
  if (scheme !== 'sqlite' && !scheme.startsWith('sqlite+')) {
    return {
      ok: false,
      message: `only sqlite URLs are supported (${DATABASE_URL_FORMS}), got a '${scheme}' URL`,
    };
  }
  const rest = (match[2] ?? '').replace(/\?.*$/s, '');
  if (rest === '' || rest === '//' || rest === '///' || rest === '///:memory:') {
    return {
      ok: false,
      message: `an in-memory database cannot keep readings; name a file: ${DATABASE_URL_FORMS}`,
    };
  }
  if (!rest.startsWith('///'))
    return { ok: false, message: `must be ${DATABASE_URL_FORMS} (three slashes, four for an absolute path)` };
  return { ok: true, path: rest.slice(3) };
}

function convert(key: ConfigKey, value: unknown): Converted {
  if (value === undefined) return { ok: 'skip' };
  if (typeof value !== 'string') return { ok: true, value };
  const text = value.trim();
  switch (key.kind) {
    case 'boolean':
      if (text === '') return { ok: 'skip' };
      if (/^(true|yes|on|1)$/i.test(text)) return { ok: true, value: true };
      if (/^(false|no|off|0)$/i.test(text)) return { ok: true, value: false };
      return { ok: false, message: `must be true or false (or yes/no, on/off, 1/0), got '${text}'` };
    case 'number':
      if (text === '') return { ok: 'skip' };
      if (/^[+-]?\d+(\.\d+)?$/.test(text)) return { ok: true, value: Number(text) };
      return { ok: false, message: `must be a number, got '${text}'` };
    case 'duration':
      return text === '' ? { ok: 'skip' } : { ok: true, value: text };
    case 'list':
      return {
        ok: true,
        value: text
          .split(',')
          .map((entry) => entry.trim())
          .filter((entry) => entry !== ''),
      };
    case 'map': {
      const map: Record<string, string> = {};
      for (const entry of text.split(',')) {
        if (entry.trim() === '') continue;
        const at = entry.indexOf('=');
        if (at < 1)
          return {
            ok: false,
            message: 'must be name=value pairs separated by commas, such as site=home,floor=1',
          };
        map[entry.slice(0, at).trim()] = entry.slice(at + 1).trim();
      }
      return { ok: true, value: map };
    }
    default:
      // Strings keep surrounding whitespace out; secrets are never echoed, so no message here.
      if (EXACT_KEYS.has(key.path)) return { ok: true, value };
      return { ok: true, value: key.secret ? value.trim() : text };
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** YAML `key:` with nothing after it means "not set": drop null mapping values everywhere. */
function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [name, child] of Object.entries(value)) {
    if (child !== null && child !== undefined) out[name] = dropNulls(child);
  }
  return out;
}

/** Sets a leaf in the raw input, creating sections; leaves a non-mapping section alone (its own error shows). */
function setLeaf(root: Record<string, unknown>, segments: readonly string[], value: unknown): void {
  let current = root;
  for (const segment of segments.slice(0, -1)) {
    const next = current[segment];
    if (next === undefined) {
      const created: Record<string, unknown> = {};
      current[segment] = created;
      current = created;
    } else if (isPlainObject(next)) {
      current = next;
    } else {
      return;
    }
  }
  const last = segments[segments.length - 1];
  if (last !== undefined) current[last] = value;
}

/** Line and column (1-based) of the value (or, failing that, the key) at `segments` in the YAML file. */
function locate(
  doc: Document,
  lines: LineCounter,
  segments: readonly (string | number)[],
  atKey = false,
): { line: number; column: number } | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined;
  let keyOffset: number | undefined;
  for (const segment of segments) {
    keyOffset = undefined;
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && String(isScalar(item.key) ? item.key.value : item.key) === String(segment),
      );
      if (!pair) break;
      offset = isScalar(pair.key) ? pair.key.range?.[0] : offset;
      keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
    } else {
      node = undefined;
      break;
    }
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) offset = range[0];
  }
  // An unknown key, or a whole section that is wrong, is on its key's line: a block mapping or list
  // as the value starts on the line below.
  if (keyOffset !== undefined && (atKey || isMap(node) || isSeq(node))) offset = keyOffset;
  if (offset === undefined) return undefined;
  const position = lines.linePos(offset);
  return { line: position.line, column: position.col };
}

interface FileContents {
  readonly data: Record<string, unknown>;
  readonly doc?: Document;
  readonly lines?: LineCounter;
}

function readConfigFile(file: string, namedBy: string | null): FileContents {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const what =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory, not a file'
            : `cannot read the file (${code ?? String(error)})`;
    throw new ConfigError([{ path: file, message: namedBy ? `${what} (named by ${namedBy})` : what }], file);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // Only the first line of each parser message: later lines quote the source, which may hold a secret.
    throw new ConfigError(describeYamlErrors(file, text, doc.errors, lines), file);
  }
  let data: unknown;
  try {
    data = dropNulls(doc.toJS({ maxAliasCount: 1000 }));
  } catch (error) {
    throw new ConfigError(
      [{ path: file, message: `cannot read the YAML: ${(error as Error).message}` }],
      file,
    );
  }
  if (data === undefined || data === null) return { data: {}, doc, lines };
  if (!isPlainObject(data)) {
    throw new ConfigError(
      [
        {
          path: file,
          message: `must be a mapping of sections (discovery:, polling:, storage:, ...), got ${Array.isArray(data) ? 'a list' : 'a single value'}`,
        },
      ],
      file,
    );
  }
  return { data, doc, lines };
}

/** Replaces every known secret in a message; the last line of defence behind never echoing secrets. */
function scrub(problems: readonly ConfigProblem[], secrets: readonly string[]): ConfigProblem[] {
  const long = secrets.filter((secret) => secret.length >= 4);
  return problems.map((problem) => {
    let message = problem.message;
    for (const secret of long) message = message.split(secret).join('[redacted]');
    return { ...problem, message };
  });
}

/**
 * Loads the configuration: defaults < file < environment < overrides (command-line flags).
 * File: `options.file`, else $KASA_MONITOR_CONFIG, else /etc/kasa-monitor/config.yaml if it exists.
 * Throws ConfigError listing every problem, each with its key path (or the environment variable).
 */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const secrets: string[] = [];

  // Which file.
  let source: string | null = null;
  let namedBy: string | null = null;
  if (options.file !== undefined && options.file !== '') {
    source = options.file;
    namedBy = 'the command line';
  } else if (env[CONFIG_FILE_ENV]) {
    source = env[CONFIG_FILE_ENV];
    namedBy = CONFIG_FILE_ENV;
  } else {
    const fallback = options.defaultFile ?? DEFAULT_CONFIG_FILE;
    if (options.systemConfig !== false && existsSync(fallback)) source = fallback;
  }
  const file: FileContents = source === null ? { data: {} } : readConfigFile(source, namedBy);
  const raw = file.data;
  const fileSetsDatabase = valueAt(raw, ['storage', 'sqlite', 'path']) !== undefined;
  const fileToken = valueAt(raw, ['storage', 'influx', 'token']);
  if (typeof fileToken === 'string') secrets.push(fileToken);
  for (const name of ['username', 'password']) {
    const fileSecret = valueAt(raw, ['credentials', name]);
    if (typeof fileSecret === 'string') secrets.push(fileSecret);
  }
  const fileMqttPassword = valueAt(raw, ['mqtt', 'password']);
  if (typeof fileMqttPassword === 'string') secrets.push(fileMqttPassword);

  // Environment, then flags, each setting whole leaves.
  const origins = new Map<string, Origin>();
  const apply = (key: ConfigKey, value: unknown, origin: Origin, label: string): void => {
    const converted = convert(key, value);
    if (converted.ok === 'skip') return;
    if (converted.ok === false) {
      const message = key.secret ? 'is not valid' : converted.message;
      problems.push(
        origin.kind === 'env'
          ? { path: label, message: `${message} (sets ${key.path})` }
          : { path: key.path, message: `${message} (from the command line)` },
      );
      return;
    }
    if (key.secret && typeof converted.value === 'string') secrets.push(converted.value);
    setLeaf(raw, key.segments, converted.value);
    origins.set(key.path, origin);
  };

  for (const [name, path] of [...LEGACY_ENV, ...PYTHON_KASA_ENV]) {
    const value = env[name];
    const key = configKey(path);
    if (value === undefined || value.trim() === '' || !key) continue;
    if (name === 'DATABASE_URL') {
      const parsed = sqlitePathFromUrl(value);
      if (!parsed.ok) {
        problems.push({ path: name, message: `${parsed.message} (sets ${path})` });
        continue;
      }
      apply(key, parsed.path, { kind: 'env', name }, name);
    } else {
      apply(key, value, { kind: 'env', name }, name);
    }
  }
  const envNames = new Set(CONFIG_KEYS.map((key) => key.envName));
  for (const key of CONFIG_KEYS) {
    const value = env[key.envName];
    if (value !== undefined) apply(key, value, { kind: 'env', name: key.envName }, key.envName);
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('KASA_MONITOR_') && !NON_KEY_ENV.includes(name) && !envNames.has(name)) {
      const suggestion = closest(name, [...envNames, CONFIG_FILE_ENV]);
      warnings.push({
        path: name,
        message: `not a kasa-monitor setting, ignored${suggestion ? ` (did you mean ${suggestion}?)` : ''}`,
      });
    }
  }
  for (const [path, value] of Object.entries(options.overrides ?? {})) {
    const key = configKey(path);
    if (!key) {
      if (value === undefined) continue;
      const suggestion = closest(
        path,
        CONFIG_KEYS.map((entry) => entry.path),
      );
      problems.push({
        path,
        message: `not a configuration key (from the command line)${suggestion ? `; did you mean ${suggestion}?` : ''}`,
      });
      continue;
    }
    apply(key, value, { kind: 'flag' }, path);
  }

  // A password in the Influx URL is refused below, and must not be echoed while it is.
  secrets.push(...urlPasswords(valueAt(raw, ['storage', 'influx', 'url'])));

  // Validate everything at once. With the system config (what the service reads) and no
  // $STATE_DIRECTORY, the default database is the unit's state directory, as under systemd: a
  // command typed in any directory then finds the service's database, not ./data.
  const systemFile = options.defaultFile ?? DEFAULT_CONFIG_FILE;
  const isSystemConfig = source !== null && resolve(source) === resolve(systemFile);
  const stateDirectory = env['STATE_DIRECTORY']?.split(':').find((entry) => entry !== '');
  const schemaEnv =
    isSystemConfig && stateDirectory === undefined
      ? { ...env, STATE_DIRECTORY: options.systemStateDirectory ?? SYSTEM_STATE_DIRECTORY }
      : env;
  const result = createConfigSchema(schemaEnv).safeParse(raw, { reportInput: true });
  let config: Config | undefined;
  if (result.success) {
    config = result.data;
  } else {
    const report = (
      segments: readonly (string | number)[],
      message: string,
      key: ConfigKey | undefined,
      atKey = false,
    ): void => {
      const dotted = segments.join('.');
      const origin = key ? origins.get(key.path) : undefined;
      if (origin?.kind === 'env') {
        problems.push({ path: origin.name, message: `${message} (sets ${dotted})` });
      } else if (origin?.kind === 'flag') {
        problems.push({ path: dotted, message: `${message} (from the command line)` });
      } else {
        const position = file.doc && file.lines ? locate(file.doc, file.lines, segments, atKey) : undefined;
        problems.push(
          position
            ? { path: dotted || '(top level)', message, line: position.line, column: position.column }
            : { path: dotted || '(top level)', message },
        );
      }
    };
    for (const issue of result.error.issues) {
      const issueKey = keyContaining(issue.path.map(String));
      const echo = issueKey !== undefined && !issueKey.secret && issueKey.path !== 'storage.influx.url';
      for (const text of describeIssue(issue, echo)) {
        report(text.segments, text.message, issueKey, text.atKey === true);
      }
    }
    // zod skips a section's cross-key rule once any key in it failed; check those rules on their own keys.
    const reported = new Set(problems.map((problem) => problem.message));
    for (const rule of CROSS_CHECKS) {
      const values: unknown[] = [];
      for (const path of rule.keys) {
        const key = configKey(path);
        const parsed = key ? safeParse(key.schema, valueAt(raw, key.segments)) : undefined;
        if (parsed?.success) values.push(parsed.data);
      }
      const message = values.length === rule.keys.length ? rule.problem(values) : undefined;
      const key = configKey(rule.path);
      if (message && key && ![...reported].some((text) => text.startsWith(message))) {
        report(key.segments, message, key);
      }
    }
  }

  // The Influx token: inline, from token_file, or from a systemd credential.
  if (config) {
    const influx = config.storage.influx;
    const fileOrigin = origins.get('storage.influx.token_file');
    const fileLabel = fileOrigin?.kind === 'env' ? fileOrigin.name : 'storage.influx.token_file';
    if (influx.token_file !== null && influx.token !== null) {
      problems.push({
        path: fileLabel,
        message: 'set either storage.influx.token or storage.influx.token_file, not both',
      });
    } else if (influx.token_file !== null) {
      const read = readSecretFile(influx.token_file);
      if (read.ok) {
        secrets.push(read.value);
        influx.token = read.value;
      } else {
        problems.push({ path: fileLabel, message: read.message });
      }
    } else if (influx.token === null && env['CREDENTIALS_DIRECTORY']) {
      const credential = join(env['CREDENTIALS_DIRECTORY'], INFLUX_TOKEN_CREDENTIAL);
      if (existsSync(credential)) {
        const read = readSecretFile(credential);
        if (read.ok) {
          secrets.push(read.value);
          influx.token = read.value;
        } else {
          problems.push({ path: 'CREDENTIALS_DIRECTORY', message: read.message });
        }
      }
    }
  }

  if (config) resolveCredentials(config.credentials, origins, env, problems, secrets);
  // The dashboard's password: inline, from password_file, or from a systemd credential.
  if (config && config.http.auth.username !== null) {
    const auth = config.http.auth;
    if (auth.password_file !== null && auth.password !== null) {
      problems.push({
        path: 'http.auth.password_file',
        message: 'set either http.auth.password or http.auth.password_file, not both',
      });
    } else if (auth.password_file !== null) {
      const read = readSecretFile(auth.password_file, 'password file', 'line-breaks');
      if (read.ok) {
        secrets.push(read.value);
        auth.password = read.value;
      } else {
        problems.push({ path: 'http.auth.password_file', message: read.message });
      }
    } else if (auth.password === null) {
      const credential = env['CREDENTIALS_DIRECTORY']
        ? join(env['CREDENTIALS_DIRECTORY'], HTTP_PASSWORD_CREDENTIAL)
        : null;
      const read =
        credential !== null && existsSync(credential)
          ? readSecretFile(credential, 'credential', 'line-breaks')
          : null;
      if (read?.ok) {
        secrets.push(read.value);
        auth.password = read.value;
      } else {
        problems.push({
          path: 'http.auth.username',
          message:
            read?.message ??
            `is set but there is no password: set http.auth.password_file (or the systemd credential ${HTTP_PASSWORD_CREDENTIAL})`,
        });
      }
    } else {
      secrets.push(auth.password);
    }
  }
  if (config) resolveMqttPassword(config.mqtt, origins, env, problems, secrets);
  // A password written into mqtt.url (refused: it belongs in password_file) is not echoed either.
  const mqttUrl = valueAt(raw, ['mqtt', 'url']);
  if (typeof mqttUrl === 'string' && URL.canParse(mqttUrl)) {
    const password = decodeURIComponent(new URL(mqttUrl).password);
    if (password !== '') secrets.push(password, new URL(mqttUrl).password);
  }

  if (problems.length > 0 || !config) {
    // Problems without a position (environment, flags, defaults) first, then the file's in reading order.
    const located = problems
      .filter((problem) => problem.line !== undefined)
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    const unlocated = problems.filter((problem) => problem.line === undefined);
    throw new ConfigError(scrub([...unlocated, ...located], secrets), source);
  }
  const origin = origins.get('storage.sqlite.path');
  const databaseOrigin =
    origin?.kind === 'env'
      ? `set by ${origin.name}`
      : origin?.kind === 'flag'
        ? 'set on the command line'
        : fileSetsDatabase
          ? `storage.sqlite.path in ${source}`
          : stateDirectory !== undefined
            ? 'the default under systemd: $STATE_DIRECTORY/kasa-monitor.db'
            : isSystemConfig
              ? `the service's database: ${source} sets no storage.sqlite.path, so it is in the unit's state directory`
              : source === null
                ? `the default without a configuration file (no ${systemFile}): ./data in the working directory`
                : `${source} sets no storage.sqlite.path: the default is ./data in the working directory`;
  return { config, source, warnings, databaseOrigin };
}

/** The password of a URL's user-info, as written and decoded (both are scrubbed from messages). */
function urlPasswords(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  // The user-info runs to the authority's last '@'; the password follows its first ':'.
  const userInfo = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)@/.exec(value.trim())?.[1] ?? '';
  const colon = userInfo.indexOf(':');
  const raw = colon < 0 ? '' : userInfo.slice(colon + 1);
  if (raw === '') return [];
  try {
    return [raw, decodeURIComponent(raw)];
  } catch {
    return [raw];
  }
}

/**
 * A secret from a file. `trim: 'whitespace'` drops surrounding whitespace (tokens, user names);
 * `'line-breaks'` only the line break(s) an editor or `echo` leaves at the end (passwords, where
 * spaces can be part of the secret).
 */
function readSecretFile(
  path: string,
  what = 'token file',
  trim: 'whitespace' | 'line-breaks' = 'whitespace',
): { ok: true; value: string } | { ok: false; message: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, message: `cannot read the ${what} ${path} (${code})` };
  }
  const value = trim === 'whitespace' ? text.trim() : text.replace(/[\r\n]+$/, '');
  return value === '' ? { ok: false, message: `the ${what} ${path} is empty` } : { ok: true, value };
}

/**
 * The MQTT password: inline or from password_file (not both), else the systemd credential
 * mqtt-password. The file's trailing line break is not part of it. Values are never echoed.
 */
function resolveMqttPassword(
  mqtt: Config['mqtt'],
  origins: ReadonlyMap<string, Origin>,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  secrets: string[],
): void {
  const fileOrigin = origins.get('mqtt.password_file');
  const fileLabel = fileOrigin?.kind === 'env' ? fileOrigin.name : 'mqtt.password_file';
  if (mqtt.password !== null && mqtt.password_file !== null) {
    problems.push({ path: fileLabel, message: 'set either mqtt.password or mqtt.password_file, not both' });
    return;
  }
  if (mqtt.password_file !== null) {
    const read = readSecretFile(mqtt.password_file, 'password file', 'line-breaks');
    if (!read.ok) {
      problems.push({ path: fileLabel, message: read.message });
      return;
    }
    secrets.push(read.value);
    mqtt.password = read.value;
    return;
  }
  const directory = env['CREDENTIALS_DIRECTORY'];
  if (mqtt.password !== null || !directory) return;
  const path = join(directory, MQTT_PASSWORD_CREDENTIAL);
  if (!existsSync(path)) return;
  const read = readSecretFile(path, 'credential', 'line-breaks');
  if (read.ok) {
    secrets.push(read.value);
    mqtt.password = read.value;
  } else {
    problems.push({ path: 'CREDENTIALS_DIRECTORY', message: read.message });
  }
}

/** Where a key's value came from, for precedence between two keys: file 0 < environment 1 < flag 2. */
function rank(origin: Origin | undefined): number {
  return origin === undefined ? 0 : origin.kind === 'env' ? 1 : 2;
}

/**
 * The TP-Link account: the password inline (file, KASA_PASSWORD, KASA_MONITOR_CREDENTIALS_PASSWORD,
 * flag) or from password_file; where both are set, the one from the later layer wins (defaults <
 * file < environment < flags), and both in one layer are ambiguous. The systemd credentials
 * tplink-username / tplink-password fill in what nothing else set. A user name without a password
 * (or the reverse) is a problem. Values are never echoed.
 */
function resolveCredentials(
  credentials: Config['credentials'],
  origins: ReadonlyMap<string, Origin>,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  secrets: string[],
): void {
  const fileOrigin = origins.get('credentials.password_file');
  const fileLabel = fileOrigin?.kind === 'env' ? fileOrigin.name : 'credentials.password_file';
  if (credentials.password !== null && credentials.password_file !== null) {
    const inline = rank(origins.get('credentials.password'));
    const fromFile = rank(fileOrigin);
    if (inline === fromFile) {
      problems.push({
        path: fileLabel,
        message: 'set either credentials.password or credentials.password_file, not both',
      });
      return;
    }
    if (inline > fromFile) credentials.password_file = null;
    else credentials.password = null;
  }
  if (credentials.password_file !== null) {
    const read = readSecretFile(credentials.password_file, 'password file', 'line-breaks');
    if (!read.ok) {
      problems.push({ path: fileLabel, message: read.message });
      return;
    }
    secrets.push(read.value);
    credentials.password = read.value;
  }
  const usernameOrigin = origins.get('credentials.username');
  let usernameLabel = usernameOrigin?.kind === 'env' ? usernameOrigin.name : 'credentials.username';
  const directory = env['CREDENTIALS_DIRECTORY'];
  if (directory) {
    const fromCredential = (name: string, what: string, trim: 'whitespace' | 'line-breaks') => {
      const path = join(directory, name);
      if (!existsSync(path)) return null;
      const read = readSecretFile(path, what, trim);
      if (read.ok) {
        secrets.push(read.value);
        return read.value;
      }
      problems.push({ path: 'CREDENTIALS_DIRECTORY', message: read.message });
      return null;
    };
    if (credentials.username === null) {
      credentials.username = fromCredential(TPLINK_USERNAME_CREDENTIAL, 'credential', 'whitespace');
      usernameLabel = `CREDENTIALS_DIRECTORY/${TPLINK_USERNAME_CREDENTIAL}`;
    }
    if (credentials.password === null) {
      credentials.password = fromCredential(TPLINK_PASSWORD_CREDENTIAL, 'credential', 'line-breaks');
    }
  }
  if (credentials.username !== null && credentials.password === null) {
    problems.push({
      path: usernameLabel,
      message: `is set but no password is: set credentials.password or credentials.password_file, KASA_PASSWORD, or the systemd credential ${TPLINK_PASSWORD_CREDENTIAL}`,
    });
  } else if (credentials.username === null && credentials.password !== null) {
    problems.push({
      path: 'credentials.username',
      message: `a TP-Link account password is set but no user name: set credentials.username, KASA_USERNAME, or the systemd credential ${TPLINK_USERNAME_CREDENTIAL}`,
    });
  }
}
