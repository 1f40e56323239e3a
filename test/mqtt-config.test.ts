/**
 * The `mqtt` configuration section: the password from password_file (its trailing newline not part
 * of it), inline or from the systemd credential mqtt-password; URLs the daemon can use; defaults;
 * the password never echoed in errors or the redacted configuration; every key applied by a reload.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { diffConfig, redactConfig } from '../src/config/index.js';
import { configFixtures, problemsOf } from './helpers/config.js';

const { dir, writeConfig, load } = configFixtures('kasa-mqtt-config-');
const SECRET = 'mqtt pa ss\twith-spaces ';

describe('mqtt configuration', () => {
  test('absent by default: no MQTT; the documented defaults otherwise', () => {
    const { mqtt } = load().config;
    assert.equal(mqtt.url, null);
    assert.equal(mqtt.topic_prefix, 'kasa-monitor');
    assert.equal(mqtt.homeassistant.discovery, true);
    assert.equal(mqtt.homeassistant.prefix, 'homeassistant');
    assert.equal(mqtt.homeassistant.expire_after, null);
  });

  test('the section as the issue shows it loads; password_file ends with a newline that is not part of the password', () => {
    const passwordFile = join(dir, 'mqtt-password');
    writeFileSync(passwordFile, `${SECRET}\n`);
    const file = writeConfig(
      [
        'mqtt:',
        '  url: mqtt://127.0.0.1:1883',
        '  username: kasa',
        `  password_file: ${passwordFile}`,
        '  topic_prefix: kasa-monitor',
        '  homeassistant:',
        '    discovery: true',
        '    prefix: homeassistant',
        '    expire_after: 7d',
        '',
      ].join('\n'),
    );
    const { mqtt } = load({ file }).config;
    assert.equal(mqtt.url, 'mqtt://127.0.0.1:1883');
    assert.equal(mqtt.username, 'kasa');
    assert.equal(mqtt.password, SECRET);
    assert.equal(mqtt.homeassistant.expire_after, 7 * 24 * 3600 * 1000);
    const redacted = JSON.stringify(redactConfig(load({ file }).config));
    assert.ok(!redacted.includes(SECRET.trim()), 'redacted configuration hides the password');
  });

  test('the systemd credential mqtt-password is used when nothing else sets one', () => {
    const credentials = join(dir, 'credentials');
    mkdirSync(credentials, { recursive: true });
    writeFileSync(join(credentials, 'mqtt-password'), `${SECRET}\n`);
    const { mqtt } = load({
      env: { CREDENTIALS_DIRECTORY: credentials },
      overrides: { 'mqtt.url': 'mqtts://broker.example:8883' },
    }).config;
    assert.equal(mqtt.password, SECRET);
  });

  test('password and password_file together, or an unreadable file, is a clear error that never shows the password', () => {
    const both = writeConfig(
      `mqtt:\n  url: mqtt://127.0.0.1:1883\n  password: "${SECRET}"\n  password_file: ${join(dir, 'x')}\n`,
    );
    const problems = problemsOf(() => load({ file: both }));
    assert.ok(problems.some((p) => /either mqtt.password or mqtt.password_file/.test(p.message)));
    assert.ok(!JSON.stringify(problems).includes(SECRET.trim()));
    const missing = writeConfig(
      `mqtt:\n  url: mqtt://127.0.0.1:1883\n  password_file: ${join(dir, 'nope')}\n`,
    );
    assert.ok(
      problemsOf(() => load({ file: missing })).some((p) => /cannot read the password file/.test(p.message)),
    );
  });

  test('only mqtt:// and mqtts:// URLs without user-info are accepted', () => {
    for (const url of ['http://127.0.0.1:1883', 'mqtt://kasa:secret@127.0.0.1:1883', 'not a url']) {
      const problems = problemsOf(() => load({ overrides: { 'mqtt.url': url } }));
      assert.ok(
        problems.some((p) => p.path === 'mqtt.url'),
        url,
      );
      assert.ok(!JSON.stringify(problems).includes('secret@'), 'a password in a URL is not echoed');
    }
    assert.equal(
      load({ overrides: { 'mqtt.url': 'mqtts://broker:8883' } }).config.mqtt.url,
      'mqtts://broker:8883',
    );
    assert.ok(problemsOf(() => load({ overrides: { 'mqtt.topic_prefix': 'a/#' } })).length > 0);
  });

  test('every mqtt key is applied by a reload, switching MQTT on and off included', () => {
    const off = load().config;
    const on = load({
      overrides: {
        'mqtt.url': 'mqtt://127.0.0.1:1883',
        'mqtt.username': 'kasa',
        'mqtt.topic_prefix': 'home/kasa',
        'mqtt.homeassistant.expire_after': '1h',
      },
    }).config;
    const diff = diffConfig(off, on);
    assert.deepEqual(diff.restart, []);
    assert.deepEqual(diff.hot.sort(), [
      'mqtt.homeassistant.expire_after',
      'mqtt.topic_prefix',
      'mqtt.url',
      'mqtt.username',
    ]);
    assert.deepEqual(diffConfig(on, off).restart, []);
  });
});
