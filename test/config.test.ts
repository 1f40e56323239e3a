import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, type ConfigProblem, defaultConfig, loadConfig } from '../src/config/index.js';
import { configFixtures, problemsOf } from './helpers/config.js';

const { dir, writeConfig, load } = configFixtures('kasa-config-');

function problemAt(problems: readonly ConfigProblem[], path: string): ConfigProblem {
  const found = problems.find((problem) => problem.path === path);
  assert.ok(found, `no problem at ${path}; got ${JSON.stringify(problems, null, 2)}`);
  return found;
}

describe('defaults', () => {
  test('with no file at all every key has its documented default', () => {
    const { config, source } = load();
    assert.equal(source, null);
    assert.deepEqual(config.discovery, {
      enabled: true,
      broadcast: ['255.255.255.255'],
      port: 9999,
      interval: 60_000,
      timeout: 2000,
      hosts: [],
      offline_tolerance: 3,
      receive_buffer: 4_194_304,
      smart_port: 20002,
    });
    assert.deepEqual(config.polling, {
      interval: 10_000,
      schedule: null,
      timeout: 3000,
      concurrency: 64,
      transport: 'udp',
      backoff_after: 3,
      backoff_max: 300_000,
    });
    assert.deepEqual(config.queue, { capacity: 100_000, overflow: 'drop-oldest' });
    assert.deepEqual(config.writer, { batch_size: 1000, flush_interval: 1000 });
    assert.deepEqual(config.storage.sqlite, {
      path: resolve('data', 'kasa-monitor.db'),
      journal_mode: 'WAL',
      synchronous: 'FULL',
      cache_size: -16_000,
      temp_store: 'MEMORY',
      busy_timeout: 100,
    });
    assert.deepEqual(config.storage.pool, { size: 5, max_overflow: 10, timeout: 30_000, recycle: 3_600_000 });
    assert.deepEqual(config.storage.influx, {
      url: null,
      token: null,
      token_file: null,
      org: 'home',
      bucket: 'kasa',
      tags: {},
      batch_size: 5000,
      flush_interval: 1000,
      gzip: false,
    });
    // The global retry keys are unset: each preset keeps the original system's values.
    const preset = (strategy: string, max_attempts: number, base_delay: number, max_delay: number) => ({
      strategy,
      max_attempts,
      base_delay,
      max_delay,
      jitter: strategy !== 'linear',
      timeout: strategy === 'linear' || max_attempts === 3 ? 30_000 : 10_000,
      breaker_threshold: 5,
      breaker_half_open_after: max_attempts === 5 ? 30_000 : 10_000,
    });
    assert.deepEqual(config.retry, {
      max_attempts: null,
      base_delay: null,
      max_delay: null,
      database: preset('exponential', 3, 100, 5000),
      network: preset('exponential', 5, 1000, 30_000),
      file: preset('linear', 3, 100, 1000),
    });
    assert.deepEqual(config.http, {
      listen: { host: '127.0.0.1', port: 9469 },
      auth: { username: null, password: null, password_file: null },
      allow_unauthenticated: false,
      public_metrics: false,
      write_timeout: 30_000,
    });
    assert.deepEqual(config.log, { level: 'info', format: 'auto' });
    assert.deepEqual(config.shutdown, { timeout: 10_000 });
  });

  test('the database goes into the first STATE_DIRECTORY entry under systemd', () => {
    const { config } = load({ env: { STATE_DIRECTORY: '/var/lib/kasa-monitor:/var/lib/other' } });
    assert.equal(config.storage.sqlite.path, '/var/lib/kasa-monitor/kasa-monitor.db');
    assert.equal(defaultConfig({}).storage.sqlite.path, resolve('data/kasa-monitor.db'));
  });

  test('an empty file, or one with only comments, means defaults', () => {
    assert.deepEqual(load({ file: writeConfig('') }).config, load().config);
    assert.deepEqual(load({ file: writeConfig('# nothing here\n') }).config, load().config);
  });

  test('an empty section or key ("key:" with no value) means its default', () => {
    const { config } = load({
      file: writeConfig('polling:\nqueue:\n  capacity:\n  overflow: drop-newest\n'),
    });
    assert.equal(config.polling.interval, 10_000);
    assert.equal(config.queue.capacity, 100_000);
    assert.equal(config.queue.overflow, 'drop-newest');
  });

  test('parsed defaults are fresh objects, so mutating one config cannot change another', () => {
    const first = load().config;
    first.discovery.broadcast.push('10.0.0.255');
    first.storage.influx.tags['x'] = 'y';
    const second = load().config;
    assert.deepEqual(second.discovery.broadcast, ['255.255.255.255']);
    assert.deepEqual(second.storage.influx.tags, {});
  });
});

describe('file', () => {
  test('values in the file override the defaults and durations become milliseconds', () => {
    const file = writeConfig(`
discovery:
  broadcast: 192.168.1.255
  port: 20002
  interval: 5m
  hosts: [192.168.5.20, 'plug.lan:10000', '[fd00::1]:9999']
polling:
  interval: 1500ms
  timeout: 0.5
  schedule: '*/15 * * * * *'
  transport: tcp
queue: { capacity: 10, overflow: drop-newest }
writer: { batch_size: 5, flush_interval: 1h30m }
storage:
  sqlite: { path: db/readings.db, synchronous: NORMAL, busy_timeout: 0, cache_size: -2000 }
  influx:
    url: http://influx.lan:8086
    org: lab
    tags: { site: home, floor: "1" }
http: { listen: '0.0.0.0:0', allow_unauthenticated: true }
log: { level: debug, format: journal }
shutdown: { timeout: 1d }
`);
    const { config, source } = load({ file });
    assert.equal(source, file);
    assert.deepEqual(config.discovery.broadcast, ['192.168.1.255']);
    assert.equal(config.discovery.interval, 300_000);
    assert.deepEqual(config.discovery.hosts, [
      { host: '192.168.5.20', port: 20002 },
      { host: 'plug.lan', port: 10000 },
      { host: 'fd00::1', port: 9999 },
    ]);
    assert.equal(config.polling.interval, 1500);
    assert.equal(config.polling.timeout, 500);
    assert.equal(config.polling.schedule, '*/15 * * * * *');
    assert.equal(config.polling.transport, 'tcp');
    assert.deepEqual(config.queue, { capacity: 10, overflow: 'drop-newest' });
    assert.deepEqual(config.writer, { batch_size: 5, flush_interval: 5_400_000 });
    assert.equal(config.storage.sqlite.path, resolve('db/readings.db'));
    assert.equal(config.storage.sqlite.synchronous, 'NORMAL');
    assert.equal(config.storage.sqlite.busy_timeout, 0);
    assert.equal(config.storage.sqlite.cache_size, -2000);
    assert.equal(config.storage.sqlite.journal_mode, 'WAL', 'keys not in the file keep their default');
    assert.equal(config.storage.influx.url, 'http://influx.lan:8086');
    assert.equal(config.storage.influx.org, 'lab');
    assert.equal(config.storage.influx.bucket, 'kasa');
    assert.deepEqual(config.storage.influx.tags, { site: 'home', floor: '1' });
    assert.deepEqual(config.http.listen, { host: '0.0.0.0', port: 0 });
    assert.deepEqual(config.log, { level: 'debug', format: 'journal' });
    assert.equal(config.shutdown.timeout, 86_400_000);
  });

  test('a schedule lifts the rule that the poll timeout must be shorter than the interval', () => {
    const file = writeConfig("polling: { interval: 2s, timeout: 5s, schedule: '* * * * *' }\n");
    assert.equal(load({ file }).config.polling.timeout, 5000);
    const problems = problemsOf(() =>
      load({ file: writeConfig('polling: { interval: 2s, timeout: 5s }\n') }),
    );
    assert.match(problemAt(problems, 'polling.timeout').message, /shorter than polling.interval \(2s\)/);
    assert.equal(problems.length, 1, 'reported once');
  });

  test('a rule between keys is reported even when another key of the section is also wrong', () => {
    const file = writeConfig(
      'polling: { timeout: 1h, concurrency: 2.5 }\nretry: { base_delay: 1m, max_delay: 30s, max_attempts: 0 }\n',
    );
    const problems = problemsOf(() => load({ file }));
    assert.match(problemAt(problems, 'polling.concurrency').message, /whole number, got 2.5/);
    assert.match(
      problemAt(problems, 'polling.timeout').message,
      /shorter than polling.interval \(10s\), got 1h/,
    );
    assert.match(problemAt(problems, 'retry.max_attempts').message, /at least 1/);
    assert.match(
      problemAt(problems, 'retry.base_delay').message,
      /not be longer than retry.max_delay \(30s\)/,
    );
    assert.equal(problems.length, 4);
  });

  test('an empty influx url means no InfluxDB', () => {
    assert.equal(
      load({ file: writeConfig('storage: { influx: { url: "" } }\n') }).config.storage.influx.url,
      null,
    );
  });

  test('KASA_MONITOR_CONFIG names the file when no explicit file is given', () => {
    const file = writeConfig('queue: { capacity: 7 }\n');
    const loaded = load({ env: { KASA_MONITOR_CONFIG: file } });
    assert.equal(loaded.source, file);
    assert.equal(loaded.config.queue.capacity, 7);
  });

  test('an explicit file wins over KASA_MONITOR_CONFIG and the default file', () => {
    const explicit = writeConfig('queue: { capacity: 1 }\n');
    const fromEnv = writeConfig('queue: { capacity: 2 }\n');
    const fallback = writeConfig('queue: { capacity: 3 }\n');
    const loaded = loadConfig({
      file: explicit,
      env: { KASA_MONITOR_CONFIG: fromEnv },
      defaultFile: fallback,
    });
    assert.equal(loaded.config.queue.capacity, 1);
    assert.equal(
      loadConfig({ env: { KASA_MONITOR_CONFIG: fromEnv }, defaultFile: fallback }).config.queue.capacity,
      2,
    );
    const usingDefault = loadConfig({ env: {}, defaultFile: fallback });
    assert.equal(usingDefault.source, fallback);
    assert.equal(usingDefault.config.queue.capacity, 3);
  });

  test('an explicitly named file that does not exist is a configuration error', () => {
    const missing = join(dir, 'nope.yaml');
    const error = (() => {
      try {
        load({ file: missing });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    assert.ok(error instanceof ConfigError);
    assert.equal(error.exitCode, 78);
    assert.equal(error.problems[0]?.path, missing);
    assert.match(error.message, /file not found/);
    const viaEnv = problemsOf(() => load({ env: { KASA_MONITOR_CONFIG: missing } }));
    assert.match(problemAt(viaEnv, missing).message, /not found \(named by KASA_MONITOR_CONFIG\)/);
  });

  test('a YAML syntax error is reported with its line and column', () => {
    const file = writeConfig('polling:\n  interval: 10s\n  timeout: [3s\nqueue:\n  capacity: 5\n');
    const problems = problemsOf(() => load({ file }));
    const problem = problems[0];
    assert.ok(problem);
    assert.equal(problem.path, file);
    assert.match(problem.message, /YAML syntax error/);
    assert.equal(typeof problem.line, 'number');
    assert.ok((problem.line ?? 0) >= 3, `line ${problem.line}`);
    assert.equal(typeof problem.column, 'number');
    const duplicate = problemsOf(() => load({ file: writeConfig('queue:\n  capacity: 1\n  capacity: 2\n') }));
    assert.equal(duplicate[0]?.line, 3);
  });

  test('a file that is not a mapping of sections is rejected', () => {
    const problems = problemsOf(() => load({ file: writeConfig('- a\n- b\n') }));
    assert.match(problems[0]?.message ?? '', /mapping of sections/);
  });

  test('a bad file reports every problem with its key path, line and what is allowed', () => {
    const file = writeConfig(`discovery:
  broadcast: [192.168.1.255, not-an-ip]
  hosts: ['plug.lan:70000']
  port: 0
polling:
  interval: ten seconds
  intervall: 5s
  timeout: -1
queue:
  capacity: 0
  overflow: drop-random
storage:
  sqlite:
    journal_mode: wal
    cache_size: 1.5
  influx:
    url: ftp://example.org
    tags: { device_id: x }
retry:
  base_delay: 1m
  max_delay: 10s
http:
  listen: 127.0.0.1
log:
  level: verbose
shutdown: 5s
colour: blue
`);
    const error = (() => {
      try {
        load({ file });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    assert.ok(error instanceof ConfigError);
    const { problems } = error;
    assert.match(problemAt(problems, 'discovery.broadcast.1').message, /IPv4 address.*got 'not-an-ip'/);
    assert.match(
      problemAt(problems, 'discovery.hosts.0').message,
      /port must be a whole number from 1 to 65535/,
    );
    assert.match(problemAt(problems, 'discovery.port').message, /at least 1, got 0/);
    const interval = problemAt(problems, 'polling.interval');
    assert.match(
      interval.message,
      /must be a duration such as '500ms', '10s', '5m', '1h', '1d'.*got 'ten seconds'/,
    );
    assert.equal(interval.line, 6);
    const unknown = problemAt(problems, 'polling.intervall');
    assert.match(
      unknown.message,
      /unknown key; allowed keys in polling: interval, schedule, timeout, concurrency, transport/,
    );
    assert.match(unknown.message, /did you mean 'interval'/);
    assert.equal(unknown.line, 7);
    assert.match(problemAt(problems, 'polling.timeout').message, /duration/);
    assert.match(problemAt(problems, 'queue.capacity').message, /at least 1, got 0/);
    assert.match(
      problemAt(problems, 'queue.overflow').message,
      /must be one of: drop-oldest, drop-newest, got 'drop-random'/,
    );
    assert.match(
      problemAt(problems, 'storage.sqlite.journal_mode').message,
      /one of: WAL, DELETE, TRUNCATE, PERSIST, MEMORY, OFF, got 'wal'/,
    );
    assert.match(problemAt(problems, 'storage.sqlite.cache_size').message, /whole number/);
    assert.match(problemAt(problems, 'storage.influx.url').message, /http:\/\/ or https:\/\/ URL/);
    assert.match(problemAt(problems, 'storage.influx.tags.device_id').message, /reserved/);
    assert.match(
      problemAt(problems, 'retry.base_delay').message,
      /not be longer than retry.max_delay \(10s\)/,
    );
    assert.match(problemAt(problems, 'http.listen').message, /port is missing; expected 'host:port'/);
    assert.match(problemAt(problems, 'log.level').message, /fatal, error, warn, info, debug, trace, silent/);
    assert.match(
      problemAt(problems, 'shutdown').message,
      /mapping of keys \(allowed keys in shutdown: timeout\)/,
    );
    const section = problemAt(problems, 'colour');
    assert.match(
      section.message,
      /allowed sections: discovery, polling, queue, writer, storage, retry, http, log/,
    );
    assert.equal(section.line, 27);
    assert.equal(problems.length, 17, JSON.stringify(problems, null, 2));
    for (const problem of problems) assert.ok(error.message.includes(problem.message), problem.path);
    const lines = problems.map((problem) => problem.line ?? 0);
    assert.deepEqual(
      lines,
      [...lines].sort((a, b) => a - b),
      'problems come in file order',
    );
    assert.ok(error.message.startsWith(`invalid configuration in ${file} (17 problems):`));
  });

  test('durations outside the timer range or equal to zero are rejected', () => {
    const problems = problemsOf(() =>
      load({
        file: writeConfig('discovery: { interval: 30d, timeout: 0 }\nwriter: { flush_interval: true }\n'),
      }),
    );
    assert.match(problemAt(problems, 'discovery.interval').message, /at most 24d/);
    assert.match(problemAt(problems, 'discovery.timeout').message, /longer than 0/);
    assert.match(problemAt(problems, 'writer.flush_interval').message, /must be a duration/);
  });

  test('an invalid cron schedule says what a valid one looks like', () => {
    const problems = problemsOf(() => load({ file: writeConfig("polling: { schedule: 'every minute' }\n") }));
    assert.match(problemAt(problems, 'polling.schedule').message, /node-cron expression: 5 fields, or 6/);
  });
});
