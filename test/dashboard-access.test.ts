/**
 * Who may open the dashboard: loopback by default; a LAN address only with `http.auth` or an explicit
 * `http.allow_unauthenticated: true` (the daemon refuses to start otherwise, before it binds
 * anything); basic authentication guards the pages and the API, with /metrics and /health open when
 * `http.public_metrics` says so. And the health banner, in a real browser, while the daemon is
 * degraded (an InfluxDB URL where nothing listens). Loopback only: 127.38.1.x, discovery port 38002.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { launchBrowser, screenshot, type TestBrowser } from './helpers/browser.js';
import { runCliProcess } from './helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'kasa-access-'));
const passwordFile = join(root, 'http-password');
writeFileSync(passwordFile, 'correct horse battery\n');

function configFile(name: string, http: string): string {
  const path = join(root, `${name}.yaml`);
  writeFileSync(
    path,
    `discovery:\n  broadcast: 127.255.255.255\n  port: 38002\nstorage:\n  sqlite:\n    path: ${join(root, `${name}.db`)}\nhttp:\n${http}`,
  );
  return path;
}

after(() => rmSync(root, { recursive: true, force: true }));

describe('listening beyond loopback', () => {
  for (const listen of ['0.0.0.0:38990', '[::]:38990', '192.168.1.20:38990']) {
    test(`run refuses to start on ${listen} without http.auth or allow_unauthenticated, saying so`, async () => {
      const result = await runCliProcess(['run', '-c', configFile('open', `  listen: "${listen}"\n`)]);
      assert.notEqual(result.code, 0);
      assert.equal(result.code, 78, 'a configuration error');
      assert.match(result.stderr, /http\.listen/);
      assert.match(result.stderr, /not loopback/);
      assert.match(result.stderr, /http\.auth/);
      assert.match(result.stderr, /allow_unauthenticated/);
    });
  }

  test('a LAN address is accepted with http.auth and a password file, or with allow_unauthenticated', async () => {
    const withAuth = configFile(
      'auth',
      `  listen: "0.0.0.0:38990"\n  auth:\n    username: admin\n    password_file: ${passwordFile}\n`,
    );
    assert.equal((await runCliProcess(['check-config', '-c', withAuth])).code, 0);
    const open = configFile('allowed', '  listen: "0.0.0.0:38990"\n  allow_unauthenticated: true\n');
    assert.equal((await runCliProcess(['check-config', '-c', open])).code, 0);
  });

  test('http.auth.username without any password is refused at its key', async () => {
    const result = await runCliProcess([
      'check-config',
      '-c',
      configFile('nopass', '  listen: "0.0.0.0:38990"\n  auth:\n    username: admin\n'),
    ]);
    assert.equal(result.code, 78);
    assert.match(result.stderr + result.stdout, /http\.auth\.username.*no password/);
  });

  test('the password can come from the systemd credential http-password', async () => {
    const credentials = join(root, 'credentials');
    rmSync(credentials, { recursive: true, force: true });
    mkdirSync(credentials);
    writeFileSync(join(credentials, 'http-password'), 'from systemd\n');
    const { config } = loadConfig({
      env: { CREDENTIALS_DIRECTORY: credentials },
      defaultFile: join(root, 'absent.yaml'),
      overrides: { 'http.listen': '0.0.0.0:38990', 'http.auth.username': 'admin' },
    });
    assert.equal(config.http.auth.password, 'from systemd');
  });
});

describe('basic authentication and the health banner', () => {
  let daemon: Daemon;
  let origin: string;
  let browser: TestBrowser;
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  before(async () => {
    const { config } = loadConfig({
      env: {},
      defaultFile: join(root, 'absent.yaml'),
      overrides: {
        'discovery.broadcast': ['127.255.255.255'],
        'discovery.port': '38002',
        'discovery.interval': '2s',
        'storage.sqlite.path': join(root, 'auth.db'),
        // Nothing listens there: the influx check is degraded, which the banner must show.
        'storage.influx.url': 'http://127.38.1.2:38997',
        'storage.influx.token': 'unused',
        'http.listen': '127.38.1.1:0',
        'http.auth.username': 'admin',
        'http.auth.password_file': passwordFile,
        'http.public_metrics': 'true',
        'health.interval': '500ms',
        'health.min_free_disk_mb': '0',
      },
    });
    daemon = new Daemon(config, createSilentLogger());
    await daemon.start();
    const address = daemon.httpAddress;
    assert.ok(address !== null);
    origin = `http://127.38.1.1:${address.port}`;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  test('the dashboard and the API answer 401 without the password and 200 with it', async () => {
    for (const path of [
      '/',
      '/device?id=x',
      '/api/devices',
      '/api/series',
      '/api/daily-energy',
      '/assets/style.css',
    ]) {
      const anonymous = await fetch(`${origin}${path}`);
      assert.equal(anonymous.status, 401, path);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm="kasa-monitor"/);
      const wrong = await fetch(`${origin}${path}`, { headers: { authorization: basic('admin', 'wrong') } });
      assert.equal(wrong.status, 401, path);
      const right = await fetch(`${origin}${path}`, {
        headers: { authorization: basic('admin', 'correct horse battery') },
      });
      assert.equal(right.status, 200, `${path}: ${await right.text()}`);
    }
  });

  test('with http.public_metrics, /metrics and /health need no password', async () => {
    assert.equal((await fetch(`${origin}/metrics`)).status, 200);
    const health = await fetch(`${origin}/health`);
    assert.ok(health.status === 200 || health.status === 503);
  });

  test('the page shows a banner with the reasons while /health is degraded', async () => {
    const { page } = await browser.open(origin);
    await page.authenticate({ username: 'admin', password: 'correct horse battery' });
    await page.goto(`${origin}/`);
    // The page asks /health at once and every 10 s; the influx check turns degraded within seconds.
    await page.waitForSelector('#health:not([hidden]) li', { timeout: 30_000 });
    const text = await page.$eval('#health', (el) => el.textContent ?? '');
    assert.match(text, /Monitoring (is degraded|has failed)/);
    assert.match(text, /influx: /);
    console.log(`health banner screenshot: ${await screenshot(page, 'dashboard-health-banner')}`);
    await page.close();
  });
});
