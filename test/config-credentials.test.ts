/**
 * The TP-Link account (`credentials.*`, KASA_USERNAME / KASA_PASSWORD, password_file, systemd
 * credentials): each source, their precedence, and that the account never shows up where it must
 * not: ConfigErrors, `check-config`, log lines, /health and /api/devices of a real daemon
 * (HTTP on 127.36.0.2, discovery to 127.255.255.255 port 36002, where no plug answers).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import {
  type LoadOptions,
  REDACTED,
  redactConfig,
  TplinkAccount,
  tplinkAccount,
} from '../src/config/index.js';
import { Daemon } from '../src/main.js';
import { captureLogger } from './helpers/capture-logger.js';
import { runCliProcess } from './helpers/cli.js';
import { configErrorOf, configFixtures } from './helpers/config.js';

const { dir, load } = configFixtures('kasa-credentials-');

let counter = 0;
function writeFile(text: string, name = `file-${++counter}`): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Mixed case on purpose: the login hashes are case-sensitive, so it must never be lowercased. */
const USER = 'Alice.Example+Kasa@Example.COM';
const PASSWORD = 'Pa ss-w0rd with spaces ';
const OTHER = 'another-Password-42';

function account(options: LoadOptions) {
  const a = tplinkAccount(load(options).config.credentials);
  return a === null ? null : { username: a.username, password: a.password };
}

function credentialsDir(files: Record<string, string>): string {
  const path = join(dir, `creds-${++counter}`);
  mkdirSync(path);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(path, name), text);
  return path;
}

describe('where the TP-Link account comes from', () => {
  test('nothing configured: no account', () => {
    assert.equal(account({}), null);
  });

  test('the config file, with the user name exactly as written', () => {
    const file = writeFile(`credentials:\n  username: ${USER}\n  password: "${PASSWORD}"\n`);
    assert.deepEqual(account({ file }), { username: USER, password: PASSWORD });
  });

  test('password_file: a trailing newline (LF or CRLF) is not part of the password, spaces are', () => {
    for (const ending of ['\n', '\r\n', '']) {
      const passwordFile = writeFile(`${PASSWORD}${ending}`);
      const file = writeFile(`credentials: { username: ${USER}, password_file: ${passwordFile} }\n`);
      assert.deepEqual(account({ file }), { username: USER, password: PASSWORD }, JSON.stringify(ending));
    }
  });

  test('KASA_USERNAME / KASA_PASSWORD, as python-kasa users know them', () => {
    assert.deepEqual(account({ env: { KASA_USERNAME: USER, KASA_PASSWORD: PASSWORD } }), {
      username: USER,
      password: PASSWORD,
    });
  });

  test('systemd credentials tplink-username and tplink-password from $CREDENTIALS_DIRECTORY', () => {
    const creds = credentialsDir({ 'tplink-username': `${USER}\n`, 'tplink-password': `${PASSWORD}\n` });
    assert.deepEqual(account({ env: { CREDENTIALS_DIRECTORY: creds } }), {
      username: USER,
      password: PASSWORD,
    });
  });

  test('precedence: file < KASA_* < KASA_MONITOR_CREDENTIALS_* < flags; the systemd credential only fills gaps', () => {
    const file = writeFile(`credentials: { username: file-user@x.org, password: file-password }\n`);
    const creds = credentialsDir({ 'tplink-username': 'cred-user@x.org', 'tplink-password': 'cred-pw' });
    assert.deepEqual(account({ file, env: { CREDENTIALS_DIRECTORY: creds } }), {
      username: 'file-user@x.org',
      password: 'file-password',
    });
    assert.deepEqual(account({ file, env: { KASA_USERNAME: USER, KASA_PASSWORD: PASSWORD } }), {
      username: USER,
      password: PASSWORD,
    });
    const env = { KASA_PASSWORD: PASSWORD, KASA_MONITOR_CREDENTIALS_PASSWORD: OTHER };
    assert.equal(account({ file, env })?.password, OTHER);
    assert.equal(
      account({ file, env, overrides: { 'credentials.password': 'from-flag' } })?.password,
      'from-flag',
    );
    // Half from the environment, half from the credential.
    assert.deepEqual(account({ env: { KASA_USERNAME: USER, CREDENTIALS_DIRECTORY: creds } }), {
      username: USER,
      password: 'cred-pw',
    });
  });

  test('password and password_file: the later layer wins; both in one layer are ambiguous', () => {
    const passwordFile = writeFile(`${OTHER}\n`);
    const withFile = writeFile(`credentials: { username: ${USER}, password_file: ${passwordFile} }\n`);
    assert.equal(account({ file: withFile, env: { KASA_PASSWORD: PASSWORD } })?.password, PASSWORD);
    const inline = writeFile(`credentials: { username: ${USER}, password: "${PASSWORD}" }\n`);
    assert.equal(
      account({ file: inline, env: { KASA_MONITOR_CREDENTIALS_PASSWORD_FILE: passwordFile } })?.password,
      OTHER,
    );
    const both = writeFile(
      `credentials: { username: ${USER}, password: "${PASSWORD}", password_file: ${passwordFile} }\n`,
    );
    const error = configErrorOf(() => load({ file: both }));
    assert.equal(error.problems[0]?.path, 'credentials.password_file');
    assert.match(
      error.problems[0]?.message ?? '',
      /either credentials.password or credentials.password_file/,
    );
    assert.ok(
      !error.message.includes(PASSWORD) && !error.message.includes(OTHER) && !error.message.includes(USER),
    );
  });

  test('a user name without a password, or the reverse, is a problem that names what to set', () => {
    const noPassword = configErrorOf(() => load({ env: { KASA_USERNAME: USER } }));
    assert.equal(noPassword.problems[0]?.path, 'KASA_USERNAME');
    assert.match(noPassword.problems[0]?.message ?? '', /no password.*KASA_PASSWORD.*tplink-password/);
    const noUser = configErrorOf(() => load({ env: { KASA_PASSWORD: PASSWORD } }));
    assert.equal(noUser.problems[0]?.path, 'credentials.username');
    assert.match(noUser.problems[0]?.message ?? '', /KASA_USERNAME/);
    const onlyUserCredential = configErrorOf(() =>
      load({ env: { CREDENTIALS_DIRECTORY: credentialsDir({ 'tplink-username': USER }) } }),
    );
    assert.equal(onlyUserCredential.problems[0]?.path, 'CREDENTIALS_DIRECTORY/tplink-username');
    for (const e of [noPassword, noUser, onlyUserCredential]) {
      assert.ok(!e.message.includes(USER) && !e.message.includes(PASSWORD), e.message);
    }
  });

  test('an unreadable or empty password_file is an error at its key path, without its contents', () => {
    const missing = configErrorOf(() =>
      load({ file: writeFile(`credentials: { username: ${USER}, password_file: ${dir}/nope }\n`) }),
    );
    assert.equal(missing.problems[0]?.path, 'credentials.password_file');
    assert.match(missing.problems[0]?.message ?? '', /cannot read the password file .*nope \(ENOENT\)/);
    const empty = writeFile('\n');
    const fromEnv = configErrorOf(() =>
      load({ env: { KASA_USERNAME: USER, KASA_MONITOR_CREDENTIALS_PASSWORD_FILE: empty } }),
    );
    assert.equal(fromEnv.problems[0]?.path, 'KASA_MONITOR_CREDENTIALS_PASSWORD_FILE');
    assert.match(fromEnv.problems[0]?.message ?? '', /is empty/);
    if (process.getuid?.() !== 0) {
      const locked = writeFile(PASSWORD);
      chmodSync(locked, 0o000);
      const denied = configErrorOf(() =>
        load({ file: writeFile(`credentials: { username: ${USER}, password_file: ${locked} }\n`) }),
      );
      assert.match(denied.problems[0]?.message ?? '', /EACCES/);
    }
  });
});

describe('the account never shows', () => {
  test('in a ConfigError, whatever else is wrong in the file', () => {
    const file = writeFile(`credentials:
  username: ${USER}
  password: "${PASSWORD}"
  pasword: "${PASSWORD}"
polling: { interval: "${PASSWORD}" }
discovery: { broadcast: "${USER}" }
`);
    const error = configErrorOf(() => load({ file, env: { KASA_PASSWORD: PASSWORD, KASA_USERNAME: USER } }));
    assert.ok(error.problems.length >= 3, error.message);
    for (const secret of [USER, PASSWORD, PASSWORD.trim()]) {
      assert.ok(!error.message.includes(secret), `leaked in: ${error.message}`);
    }
  });

  test('in check-config output, valid or not', async () => {
    const valid = writeFile(`credentials: { username: ${USER}, password: "${PASSWORD}" }\n`, 'valid.yaml');
    const ok = await runCliProcess(['check-config', '-c', valid]);
    assert.equal(ok.code, 0, ok.stderr);
    const invalid = writeFile(
      `credentials: { username: ${USER}, password: "${PASSWORD}", passwrd: "${PASSWORD}" }\npolling: { timeout: "${PASSWORD}" }\n`,
      'invalid.yaml',
    );
    const bad = await runCliProcess(['check-config', '-c', invalid], { KASA_PASSWORD: PASSWORD });
    assert.equal(bad.code, 78);
    for (const result of [ok, bad]) {
      const text = result.stdout + result.stderr;
      assert.ok(!text.includes(USER) && !text.includes(PASSWORD.trim()), text);
    }
  });

  test('in the redacted config, nor when the resolved account is logged, inspected or serialised by mistake', () => {
    const { config } = load({ env: { KASA_USERNAME: USER, KASA_PASSWORD: PASSWORD } });
    const redacted = redactConfig(config);
    assert.equal(redacted.credentials.username, REDACTED);
    assert.equal(redacted.credentials.password, REDACTED);
    assert.equal(config.credentials.username, USER, 'the config itself is untouched');
    const resolved = tplinkAccount(config.credentials);
    assert.ok(resolved instanceof TplinkAccount);
    for (const text of [JSON.stringify({ resolved }), inspect(resolved), String(resolved), `${resolved}`]) {
      assert.ok(!text.includes(USER) && !text.includes(PASSWORD.trim()), text);
    }
    const { logger, lines } = captureLogger();
    logger.info({ config: redactConfig(config) }, 'starting');
    logger.info({ config }, 'a careless dump');
    logger.warn({ account: resolved, device: '127.36.0.9' }, 'authentication failed');
    logger.warn({ username: USER, password: PASSWORD }, 'flat');
    logger.warn({ login: { username: USER, password: PASSWORD } }, 'nested');
    const text = JSON.stringify(lines());
    assert.equal(lines().length, 5);
    assert.ok(!text.includes(USER) && !text.includes(PASSWORD.trim()), text);
  });

  test('in the logs, /health and /api/devices of a running daemon', async () => {
    const passwordFile = writeFile(`${PASSWORD}\n`);
    const { config } = load({
      env: { KASA_USERNAME: USER, KASA_MONITOR_CREDENTIALS_PASSWORD_FILE: passwordFile },
      overrides: {
        'discovery.broadcast': ['127.255.255.255'],
        'discovery.port': '36002',
        'discovery.timeout': '200ms',
        'storage.sqlite.path': join(dir, 'daemon.db'),
        'storage.sqlite.synchronous': 'NORMAL',
        'http.listen': '127.36.0.2:0',
        'health.interval': '200ms',
        'health.min_free_disk_mb': '0',
      },
    });
    assert.equal(tplinkAccount(config.credentials)?.password, PASSWORD);
    const { logger, lines } = captureLogger();
    const daemon = new Daemon(config, logger);
    await daemon.start();
    try {
      const address = daemon.httpAddress;
      assert.ok(address !== null);
      const base = `http://127.36.0.2:${address.port}`;
      const health = await (await fetch(`${base}/health`)).text();
      const devices = await (await fetch(`${base}/api/devices`)).text();
      assert.match(health, /"status"/);
      for (const text of [health, devices]) {
        assert.ok(!text.includes(USER) && !text.includes(PASSWORD.trim()), text);
      }
    } finally {
      await daemon.stop();
    }
    const log = JSON.stringify(lines());
    assert.ok(
      lines().some((l) => l.msg === 'configuration' && l['config'] !== undefined),
      'the whole config was logged (at debug) at start',
    );
    assert.ok(!log.includes(USER) && !log.includes(PASSWORD.trim()), 'account in the logs');
  });
});
