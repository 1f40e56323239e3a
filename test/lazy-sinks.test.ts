/**
 * The optional sinks cost memory only when configured: MQTT.js (about 20 MiB RSS at import) and the
 * InfluxDB client are loaded by the daemon only when mqtt.url or storage.influx.url is set. Checked
 * in a child process whose module loader reports every package it resolves.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

const dir = mkdtempSync(join(tmpdir(), 'kasa-lazy-'));
const hooks = join(dir, 'hooks.mjs');
writeFileSync(
  hooks,
  `export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const match = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url);
  if (match) process.stderr.write('package ' + match[1] + '\\n');
  return result;
}
`,
);
const register = join(dir, 'register.mjs');
writeFileSync(
  register,
  `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
);

/** The packages resolved while importing `modules` (paths relative to dist/). */
function packagesLoadedBy(...modules: string[]): Promise<Set<string>> {
  const urls = modules.map((m) => new URL(`../${m}`, import.meta.url).href);
  const script = `for (const url of ${JSON.stringify(urls)}) await import(url);`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', pathToFileURL(register).href, '--input-type=module', '-e', script],
      (error, _stdout, stderr) => {
        if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(new Set([...String(stderr).matchAll(/^package (\S+)$/gm)].map((m) => m[1] ?? '')));
      },
    );
  });
}

describe('the optional sinks', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('are not loaded with the daemon and the command line', async () => {
    const loaded = await packagesLoadedBy('src/main.js', 'src/cli/index.js', 'src/cli/commands/run.js');
    // node-cron is imported as an ES module (CommonJS libraries are loaded with require, unseen here).
    assert.ok(loaded.has('node-cron'), 'the loader reports packages');
    assert.ok(!loaded.has('mqtt'), 'MQTT.js was loaded');
    assert.ok(!loaded.has('@influxdata/influxdb-client'), 'the InfluxDB client was loaded');
  });

  it('are loaded by their own modules, which the daemon imports when they are configured', async () => {
    const loaded = await packagesLoadedBy('src/storage/mqtt/index.js', 'src/storage/influx/index.js');
    assert.ok(loaded.has('mqtt'));
    assert.ok(loaded.has('@influxdata/influxdb-client'));
  });
});
