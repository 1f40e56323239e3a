import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { CONFIG_KEYS } from '../src/config/index.js';
import { configFixtures, problemsOf } from './helpers/config.js';

const { writeConfig, load } = configFixtures('kasa-config-env-');

describe('environment', () => {
  test('DATABASE_PATH sets the SQLite path, resolved to an absolute path', () => {
    assert.equal(load({ env: { DATABASE_PATH: 'x/y.db' } }).config.storage.sqlite.path, resolve('x/y.db'));
  });

  test('DATABASE_URL follows SQLAlchemy: three slashes relative, four absolute', () => {
    const relative = load({ env: { DATABASE_URL: 'sqlite:///data/readings.db' } });
    assert.equal(relative.config.storage.sqlite.path, resolve('data/readings.db'));
    const absolute = load({ env: { DATABASE_URL: 'sqlite:////var/lib/kasa/readings.db?timeout=5' } });
    assert.equal(absolute.config.storage.sqlite.path, '/var/lib/kasa/readings.db');
    const withDriver = load({ env: { DATABASE_URL: 'sqlite+pysqlite:////srv/k.db' } });
    assert.equal(withDriver.config.storage.sqlite.path, '/srv/k.db');
  });

  test('DATABASE_URL wins over DATABASE_PATH, and KASA_MONITOR_STORAGE_SQLITE_PATH over both', () => {
    const env = { DATABASE_PATH: '/a.db', DATABASE_URL: 'sqlite:////b.db' };
    assert.equal(load({ env }).config.storage.sqlite.path, '/b.db');
    const all = { ...env, KASA_MONITOR_STORAGE_SQLITE_PATH: '/c.db' };
    assert.equal(load({ env: all }).config.storage.sqlite.path, '/c.db');
  });

  test('a non-sqlite DATABASE_URL is a clear error that does not repeat the URL', () => {
    const problems = problemsOf(() => load({ env: { DATABASE_URL: 'postgresql://kasa:hunter2@db/kasa' } }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'DATABASE_URL');
    assert.match(problems[0]?.message ?? '', /only sqlite URLs are supported.*got a 'postgresql' URL/);
    assert.doesNotMatch(problems[0]?.message ?? '', /hunter2/);
    for (const url of ['sqlite://', 'sqlite:///:memory:', 'sqlite:/abs.db', 'not a url']) {
      const [problem] = problemsOf(() => load({ env: { DATABASE_URL: url } }));
      assert.equal(problem?.path, 'DATABASE_URL', url);
      assert.match(
        problem?.message ?? '',
        /sqlite:\/\/\/relative\/path\.db or sqlite:\/\/\/\/absolute\/path\.db/,
        url,
      );
    }
  });

  test('POOL_* and RETRY_* set the pool and retry keys, delays in seconds', () => {
    const { config } = load({
      env: {
        POOL_SIZE: '8',
        POOL_MAX_OVERFLOW: '0',
        POOL_TIMEOUT: '15',
        POOL_RECYCLE: '1800',
        RETRY_MAX_ATTEMPTS: '6',
        RETRY_BASE_DELAY: '0.5',
        RETRY_MAX_DELAY: '60',
      },
    });
    assert.deepEqual(config.storage.pool, { size: 8, max_overflow: 0, timeout: 15_000, recycle: 1_800_000 });
    const { max_attempts, base_delay, max_delay } = config.retry;
    assert.deepEqual(
      { max_attempts, base_delay, max_delay },
      { max_attempts: 6, base_delay: 500, max_delay: 60_000 },
    );
  });

  test('KASA_MONITOR_<SECTION>_<KEY> sets any key, with lists and maps comma-separated', () => {
    const { config } = load({
      env: {
        KASA_MONITOR_POLLING_INTERVAL: '5s',
        KASA_MONITOR_POLLING_TIMEOUT: '1',
        KASA_MONITOR_DISCOVERY_ENABLED: 'no',
        KASA_MONITOR_DISCOVERY_BROADCAST: '127.255.255.255, 10.0.0.255',
        KASA_MONITOR_DISCOVERY_HOSTS: '10.0.0.5,10.0.0.6:20000',
        KASA_MONITOR_DISCOVERY_OFFLINE_TOLERANCE: '5',
        KASA_MONITOR_STORAGE_SQLITE_PATH: '/x/k.db',
        KASA_MONITOR_STORAGE_SQLITE_JOURNAL_MODE: 'DELETE',
        KASA_MONITOR_STORAGE_INFLUX_URL: 'https://influx.example:8086',
        KASA_MONITOR_STORAGE_INFLUX_TOKEN: 'env-token-value',
        KASA_MONITOR_STORAGE_INFLUX_TAGS: 'site=home,floor=1',
        KASA_MONITOR_QUEUE_CAPACITY: '50',
        KASA_MONITOR_HTTP_LISTEN: '[::1]:9000',
        KASA_MONITOR_LOG_LEVEL: 'warn',
      },
    });
    assert.equal(config.polling.interval, 5000);
    assert.equal(config.polling.timeout, 1000);
    assert.equal(config.discovery.enabled, false);
    assert.deepEqual(config.discovery.broadcast, ['127.255.255.255', '10.0.0.255']);
    assert.deepEqual(config.discovery.hosts, [
      { host: '10.0.0.5', port: 9999 },
      { host: '10.0.0.6', port: 20000 },
    ]);
    assert.equal(config.discovery.offline_tolerance, 5);
    assert.equal(config.storage.sqlite.path, '/x/k.db');
    assert.equal(config.storage.sqlite.journal_mode, 'DELETE');
    assert.equal(config.storage.influx.url, 'https://influx.example:8086');
    assert.equal(config.storage.influx.token, 'env-token-value');
    assert.deepEqual(config.storage.influx.tags, { site: 'home', floor: '1' });
    assert.equal(config.queue.capacity, 50);
    assert.deepEqual(config.http.listen, { host: '::1', port: 9000 });
    assert.equal(config.log.level, 'warn');
  });

  test('every leaf key has a KASA_MONITOR_ name derived from its path', () => {
    const names = CONFIG_KEYS.map((key) => key.envName);
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.includes('KASA_MONITOR_STORAGE_INFLUX_TOKEN_FILE'));
    assert.ok(names.includes('KASA_MONITOR_DISCOVERY_OFFLINE_TOLERANCE'));
    assert.ok(names.includes('KASA_MONITOR_WRITER_BATCH_SIZE'));
  });

  test('the environment overrides the file, key by key', () => {
    const file = writeConfig('polling: { interval: 20s, timeout: 4s }\nqueue: { capacity: 9 }\n');
    const { config } = load({ file, env: { KASA_MONITOR_POLLING_INTERVAL: '30s' } });
    assert.equal(config.polling.interval, 30_000);
    assert.equal(config.polling.timeout, 4000);
    assert.equal(config.queue.capacity, 9);
  });

  test('an environment value that fails validation is reported under the variable name', () => {
    const problems = problemsOf(() =>
      load({
        env: {
          KASA_MONITOR_POLLING_INTERVAL: 'soon',
          KASA_MONITOR_QUEUE_CAPACITY: 'lots',
          KASA_MONITOR_STORAGE_POOL_SIZE: '0',
          KASA_MONITOR_DISCOVERY_ENABLED: 'maybe',
          KASA_MONITOR_DISCOVERY_BROADCAST: '10.0.0.255,bad',
          KASA_MONITOR_LOG_FORMAT: 'xml',
          POOL_TIMEOUT: 'forever',
        },
      }),
    );
    const byPath = new Map(problems.map((problem) => [problem.path, problem.message]));
    assert.match(
      byPath.get('KASA_MONITOR_POLLING_INTERVAL') ?? '',
      /duration.*got 'soon' \(sets polling.interval\)/,
    );
    assert.match(byPath.get('KASA_MONITOR_QUEUE_CAPACITY') ?? '', /must be a number, got 'lots'/);
    assert.match(
      byPath.get('KASA_MONITOR_STORAGE_POOL_SIZE') ?? '',
      /at least 1, got 0 \(sets storage.pool.size\)/,
    );
    assert.match(byPath.get('KASA_MONITOR_DISCOVERY_ENABLED') ?? '', /true or false/);
    assert.match(
      byPath.get('KASA_MONITOR_DISCOVERY_BROADCAST') ?? '',
      /IPv4.*\(sets discovery.broadcast.1\)/,
    );
    assert.match(byPath.get('KASA_MONITOR_LOG_FORMAT') ?? '', /one of: auto, json, journal/);
    assert.match(byPath.get('POOL_TIMEOUT') ?? '', /duration.*\(sets storage.pool.timeout\)/);
    assert.equal(problems.length, 7);
  });

  test('empty numeric, boolean and duration variables are ignored; empty lists clear the list', () => {
    const file = writeConfig('discovery: { hosts: [10.0.0.9] }\n');
    const { config } = load({
      file,
      env: { KASA_MONITOR_QUEUE_CAPACITY: '', POOL_SIZE: ' ', KASA_MONITOR_DISCOVERY_HOSTS: '' },
    });
    assert.equal(config.queue.capacity, 100_000);
    assert.equal(config.storage.pool.size, 5);
    assert.deepEqual(config.discovery.hosts, []);
  });

  test('an unknown KASA_MONITOR_ variable is a warning with a suggestion, not an error', () => {
    const { warnings } = load({ env: { KASA_MONITOR_POLLING_INTERVALL: '5s', KASA_MONITOR_CONFIG: '' } });
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.path, 'KASA_MONITOR_POLLING_INTERVALL');
    assert.match(warnings[0]?.message ?? '', /did you mean KASA_MONITOR_POLLING_INTERVAL\?/);
  });
});

describe('command-line overrides', () => {
  test('flags override the environment and the file', () => {
    const file = writeConfig('discovery: { broadcast: 10.0.0.255, timeout: 5s }\n');
    const { config } = load({
      file,
      env: { KASA_MONITOR_DISCOVERY_TIMEOUT: '4s', KASA_MONITOR_DISCOVERY_BROADCAST: '10.1.0.255' },
      overrides: {
        'discovery.timeout': '1.5',
        'discovery.broadcast': '192.168.0.255',
        'log.level': undefined,
      },
    });
    assert.equal(config.discovery.timeout, 1500);
    assert.deepEqual(config.discovery.broadcast, ['192.168.0.255']);
    assert.equal(config.log.level, 'info', 'an undefined override (flag not given) changes nothing');
  });

  test('typed override values are taken as they are', () => {
    const { config } = load({
      overrides: { 'queue.capacity': 12, 'discovery.enabled': false, 'discovery.hosts': ['h1'] },
    });
    assert.equal(config.queue.capacity, 12);
    assert.equal(config.discovery.enabled, false);
    assert.deepEqual(config.discovery.hosts, [{ host: 'h1', port: 9999 }]);
  });

  test('a bad or unknown override is reported under its key path', () => {
    const problems = problemsOf(() =>
      load({ overrides: { 'polling.interval': 'x', 'polling.intervall': '5s' } }),
    );
    assert.match(
      problems.find((p) => p.path === 'polling.interval')?.message ?? '',
      /duration.*from the command line/,
    );
    assert.match(
      problems.find((p) => p.path === 'polling.intervall')?.message ?? '',
      /did you mean polling.interval\?/,
    );
  });
});
