import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  CONFIG_KEYS,
  configJsonSchema,
  configJsonSchemaText,
  diffConfig,
  REDACTED,
  redactConfig,
} from '../src/config/index.js';
import { configErrorOf, configFixtures } from './helpers/config.js';

const { dir, load } = configFixtures('kasa-config-tools-');

let counter = 0;
function writeFile(text: string, name = `config-${++counter}.yaml`): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const TOKEN = 'tok-3f9a2c71-very-secret';

describe('secrets', () => {
  test('token_file is read at load time and trimmed', () => {
    const tokenFile = writeFile(`  ${TOKEN}\n`, 'token');
    const { config } = load({ file: writeFile(`storage: { influx: { token_file: ${tokenFile} } }\n`) });
    assert.equal(config.storage.influx.token, TOKEN);
    assert.equal(config.storage.influx.token_file, tokenFile);
  });

  test('an unreadable or empty token_file is an error at its key path', () => {
    const missing = configErrorOf(() =>
      load({ file: writeFile(`storage: { influx: { token_file: ${dir}/nope } }\n`) }),
    );
    assert.equal(missing.problems[0]?.path, 'storage.influx.token_file');
    assert.match(missing.problems[0]?.message ?? '', /cannot read the token file .*nope \(ENOENT\)/);
    const empty = writeFile('\n', 'empty-token');
    const fromEnv = configErrorOf(() => load({ env: { KASA_MONITOR_STORAGE_INFLUX_TOKEN_FILE: empty } }));
    assert.equal(fromEnv.problems[0]?.path, 'KASA_MONITOR_STORAGE_INFLUX_TOKEN_FILE');
    assert.match(fromEnv.problems[0]?.message ?? '', /is empty/);
  });

  test('token and token_file together are ambiguous and rejected', () => {
    const tokenFile = writeFile(TOKEN, 'token-both');
    const error = configErrorOf(() =>
      load({
        file: writeFile(`storage: { influx: { token_file: ${tokenFile} } }\n`),
        env: { KASA_MONITOR_STORAGE_INFLUX_TOKEN: TOKEN },
      }),
    );
    assert.match(
      error.problems[0]?.message ?? '',
      /either storage.influx.token or storage.influx.token_file/,
    );
    assert.ok(!error.message.includes(TOKEN));
  });

  test('a systemd credential named influx-token supplies the token when none is configured', () => {
    const credentials = join(dir, 'credentials');
    mkdirSync(credentials);
    writeFileSync(join(credentials, 'influx-token'), `${TOKEN}\n`);
    assert.equal(load({ env: { CREDENTIALS_DIRECTORY: credentials } }).config.storage.influx.token, TOKEN);
    const inline = load({
      env: { CREDENTIALS_DIRECTORY: credentials, KASA_MONITOR_STORAGE_INFLUX_TOKEN: 'other' },
    });
    assert.equal(inline.config.storage.influx.token, 'other');
  });

  test('the token never appears in a ConfigError, whatever else is wrong', () => {
    const file = writeFile(`storage:
  influx:
    token: ${TOKEN}
    tokne: ${TOKEN}
    url: ${TOKEN}
polling: { interval: ${TOKEN} }
`);
    const error = configErrorOf(() => load({ file, env: { KASA_MONITOR_STORAGE_INFLUX_TOKEN: TOKEN } }));
    assert.ok(error.problems.length >= 3);
    assert.ok(!error.message.includes(TOKEN), error.message);
    assert.ok(!JSON.stringify(error.problems).includes(TOKEN));
    const notText = configErrorOf(() =>
      load({ file: writeFile(`storage: { influx: { token: [${TOKEN}] } }\n`) }),
    );
    assert.ok(!notText.message.includes(TOKEN), notText.message);
  });

  test('a YAML syntax error on the token line does not quote the token', () => {
    const file = writeFile(`storage:\n  influx:\n    token: "${TOKEN}\n    org: x\n`);
    const error = configErrorOf(() => load({ file }));
    assert.match(error.problems[0]?.message ?? '', /YAML syntax error/);
    assert.ok(!error.message.includes(TOKEN), error.message);
  });

  test('redactConfig hides the token and a URL password but leaves the original alone', () => {
    const { config } = load({ env: { KASA_MONITOR_STORAGE_INFLUX_TOKEN: TOKEN } });
    // Loading refuses a URL with a password (test/input-validation.test.ts); redaction is the second line.
    config.storage.influx.url = 'https://kasa:pw-secret@influx.lan:8086';
    const safe = redactConfig(config);
    assert.equal(safe.storage.influx.token, REDACTED);
    assert.equal(safe.storage.influx.url, `https://kasa:${REDACTED}@influx.lan:8086/`);
    const text = JSON.stringify(safe);
    assert.ok(!text.includes(TOKEN) && !text.includes('pw-secret'));
    assert.equal(config.storage.influx.token, TOKEN, 'the original keeps its token');
    assert.equal(redactConfig(load().config).storage.influx.token, null, 'an unset token stays null');
    assert.ok(CONFIG_KEYS.some((key) => key.path === 'storage.influx.token' && key.secret));
  });
});

describe('diffConfig', () => {
  test('lists changed leaf keys split into hot-reloadable and restart-needed', () => {
    const old = load().config;
    const next = load({
      env: {
        KASA_MONITOR_POLLING_INTERVAL: '20s',
        KASA_MONITOR_LOG_LEVEL: 'debug',
        KASA_MONITOR_QUEUE_CAPACITY: '10',
        KASA_MONITOR_STORAGE_SQLITE_PATH: '/elsewhere.db',
        KASA_MONITOR_HTTP_LISTEN: '127.0.0.1:9470',
        KASA_MONITOR_STORAGE_INFLUX_TAGS: 'site=home',
      },
    }).config;
    const diff = diffConfig(old, next);
    assert.deepEqual(diff.changed, [
      'polling.interval',
      'queue.capacity',
      'storage.sqlite.path',
      'storage.influx.tags',
      'http.listen',
      'log.level',
    ]);
    assert.deepEqual(diff.hot, ['polling.interval', 'queue.capacity', 'storage.influx.tags', 'log.level']);
    assert.deepEqual(diff.restart, ['storage.sqlite.path', 'http.listen']);
  });

  test('identical configurations, and maps differing only in key order, have no changes', () => {
    const a = load({ env: { KASA_MONITOR_STORAGE_INFLUX_TAGS: 'a=1,b=2' } }).config;
    const b = load({ env: { KASA_MONITOR_STORAGE_INFLUX_TAGS: 'b=2,a=1' } }).config;
    assert.deepEqual(diffConfig(a, b), { changed: [], hot: [], restart: [] });
  });

  test('every leaf key carries a reload tag', () => {
    for (const key of CONFIG_KEYS) assert.ok(key.reload === 'hot' || key.reload === 'restart', key.path);
  });
});

const repoFile = (name: string) => new URL(`../../config/${name}`, import.meta.url);

describe('JSON Schema and example', () => {
  test('config/kasa-monitor.schema.json is what configJsonSchema() produces now', () => {
    const committed = readFileSync(repoFile('kasa-monitor.schema.json'), 'utf8');
    assert.equal(
      committed,
      configJsonSchemaText(),
      'stale: regenerate with node -e "import(\'./dist/src/config/json-schema.js\').then(m => process.stdout.write(m.configJsonSchemaText()))" > config/kasa-monitor.schema.json',
    );
  });

  test('the JSON Schema describes the input side: durations as text or seconds, defaults, reload notes', () => {
    const schema = configJsonSchema() as {
      additionalProperties: boolean;
      properties: Record<string, { properties: Record<string, Record<string, unknown>> }>;
    };
    assert.equal(schema.additionalProperties, false);
    const interval = schema.properties['polling']?.properties['interval'];
    assert.equal(interval?.['default'], '10s');
    assert.match(String(interval?.['description']), /Reload: applies on SIGHUP/);
    assert.match(JSON.stringify(interval?.['anyOf']), /"string".*"number"/);
    const sqlite = schema.properties['storage']?.properties['sqlite'] as unknown as {
      properties: Record<string, Record<string, unknown>>;
    };
    assert.match(String(sqlite.properties['path']?.['description']), /Reload: restart needed/);
    assert.equal(sqlite.properties['synchronous']?.['default'], 'FULL');
  });

  test('the example mentions every leaf key of the schema', () => {
    const example = parse(readFileSync(repoFile('kasa-monitor.example.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    for (const key of CONFIG_KEYS) {
      let node: unknown = example;
      for (const segment of key.segments) {
        assert.ok(
          typeof node === 'object' && node !== null && segment in node,
          `${key.path} missing from the example`,
        );
        node = (node as Record<string, unknown>)[segment];
      }
    }
  });

  test('the example documents each key and loads with exactly the defaults', () => {
    const text = readFileSync(repoFile('kasa-monitor.example.yaml'), 'utf8');
    assert.ok(text.startsWith('# yaml-language-server: $schema=./kasa-monitor.schema.json\n'));
    const reloadNotes = text.match(/Reload: applies on SIGHUP|Restart needed/g) ?? [];
    assert.equal(reloadNotes.length, CONFIG_KEYS.length, 'one reload note per key');
    const fromExample = load({ file: repoFile('kasa-monitor.example.yaml').pathname }).config;
    const defaults = load({ env: { STATE_DIRECTORY: '/var/lib/kasa-monitor' } }).config;
    assert.deepEqual(fromExample, defaults);
    for (const key of CONFIG_KEYS) {
      const line = text.split('\n').findIndex((l) => new RegExp(`^\\s*${key.segments.at(-1)}:`).test(l));
      assert.ok(line > 0, key.path);
    }
  });

  test('the reload note in the example matches each key tag', () => {
    const lines = readFileSync(repoFile('kasa-monitor.example.yaml'), 'utf8').split('\n');
    const sections: string[] = [];
    let note: string | undefined;
    let visited = 0;
    for (const line of lines) {
      const comment = /^\s*#/.test(line);
      if (comment) {
        if (/Reload: applies on SIGHUP/.test(line)) note = 'hot';
        else if (/Restart needed/.test(line)) note = 'restart';
        continue;
      }
      const match = /^(\s*)([a-z_]+):(.*)$/.exec(line);
      if (!match) continue;
      const depth = (match[1] ?? '').length / 2;
      sections.length = depth;
      const path = [...sections, match[2]].join('.');
      const key = CONFIG_KEYS.find((entry) => entry.path === path);
      if (key) {
        assert.equal(note, key.reload, path);
        note = undefined;
        visited++;
      } else {
        sections.push(match[2] ?? '');
      }
    }
    assert.equal(visited, CONFIG_KEYS.length);
  });
});

describe('file permissions', () => {
  test('an unreadable config file is reported, not thrown as a raw error', {
    skip: process.getuid?.() === 0,
  }, () => {
    const file = writeFile('queue: { capacity: 5 }\n');
    chmodSync(file, 0o000);
    const error = configErrorOf(() => load({ file }));
    assert.match(error.problems[0]?.message ?? '', /permission denied/);
  });
});
