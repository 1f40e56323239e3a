/**
 * The configuration as the running daemon reads it: in a short-lived child process (so yaml and
 * zod never stay in the daemon), with exactly the result, warnings and errors of loading it
 * in-process; and the schema-free key table the daemon diffs and redacts with, kept equal to the schema.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfigInChild } from '../src/config/child-loader.js';
import { CONFIG_KEYS, ConfigError, diffConfig, loadConfig, redactConfig } from '../src/config/index.js';
import { KEY_TAGS } from '../src/config/key-tags.js';
import { configFixtures } from './helpers/config.js';

const fixtures = configFixtures('kasa-config-child-');
const absent = join(fixtures.dir, 'absent.yaml');

describe('the configuration read in a child process', () => {
  test('gives what loading in-process gives: file, environment, overrides, credentials, warnings', async () => {
    const tokenFile = join(fixtures.dir, 'token');
    writeFileSync(tokenFile, 'sekrit-token\n');
    const file = fixtures.writeConfig(`discovery:
  broadcast: [127.255.255.255]
  hosts: [127.0.0.7]
polling:
  interval: 2s
storage:
  sqlite:
    path: ${join(fixtures.dir, 'kasa.db')}
  influx:
    url: http://127.0.0.1:8428
    token_file: ${tokenFile}
credentials:
  username: someone@example.com
`);
    const options = {
      file,
      defaultFile: absent,
      env: {
        KASA_PASSWORD: 'pass word ',
        KASA_MONITOR_POLING_INTERVAL: '3s',
        KASA_MONITOR_LOG_LEVEL: 'debug',
      },
      overrides: { 'http.listen': '127.0.0.1:0', 'discovery.interval': '45s' },
    };
    const inProcess = loadConfig(options);
    const inChild = await loadConfigInChild(options);
    assert.deepEqual(inChild, inProcess);
    assert.equal(inChild.config.credentials.password, 'pass word ');
    assert.equal(inChild.config.storage.influx.token, 'sekrit-token');
    assert.ok(inChild.warnings.length > 0, 'the misspelt KASA_MONITOR_ variable is warned about');
  });

  test('rejects a bad configuration with the same problems, source and message', async () => {
    const file = fixtures.writeConfig(
      'polling:\n  interval: banana\n  timeot: 1s\nhttp:\n  listen: nowhere:99999\n',
    );
    const options = { file, defaultFile: absent, env: { KASA_MONITOR_WRITER_BATCH_SIZE: 'many' } };
    const expected = (() => {
      try {
        loadConfig(options);
      } catch (error) {
        return error;
      }
      assert.fail('the configuration loaded in-process');
    })();
    assert.ok(expected instanceof ConfigError);
    await assert.rejects(loadConfigInChild(options), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, expected.message);
      assert.deepEqual(error.problems, expected.problems);
      assert.equal(error.source, file);
      assert.equal(error.exitCode, 78);
      return true;
    });
  });

  test('reports a missing file as loading in-process does', async () => {
    const options = { file: join(fixtures.dir, 'missing.yaml'), env: {} };
    assert.throws(() => loadConfig(options), ConfigError);
    const expected = (() => {
      try {
        loadConfig(options);
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    await assert.rejects(loadConfigInChild(options), { name: 'ConfigError', message: expected });
  });
});

describe('the key table the daemon diffs and redacts with', () => {
  test('lists every key of the schema, in schema order, with its reload tag and secrecy', () => {
    assert.deepEqual(
      KEY_TAGS.map((key) => ({
        path: key.path,
        segments: key.segments,
        reload: key.reload,
        secret: key.secret,
      })),
      CONFIG_KEYS.map((key) => ({
        path: key.path,
        segments: key.segments,
        reload: key.reload,
        secret: key.secret,
      })),
    );
  });

  test('diffs and redacts by it: secrets hidden, hot and restart keys split', () => {
    const old = fixtures.load({ overrides: { 'storage.influx.url': 'http://127.0.0.1:8428' } }).config;
    const next = fixtures.load({
      overrides: {
        'storage.influx.url': 'http://127.0.0.1:8429',
        'storage.influx.token': 'sekrit',
        'discovery.port': 9998,
        'polling.interval': '5s',
      },
    }).config;
    const diff = diffConfig(old, next);
    assert.ok(diff.hot.includes('polling.interval') && diff.hot.includes('storage.influx.url'));
    assert.ok(diff.restart.includes('discovery.port'));
    assert.equal(redactConfig(next).storage.influx.token, '[redacted]');
  });
});
