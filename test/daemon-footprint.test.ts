/**
 * What the running daemon holds: `kasa-monitor run` reads its configuration in a short-lived child
 * process, so the YAML parser, the schema validator (zod) and the config loader never enter the
 * daemon's own process, neither at start nor on a SIGHUP reload (together about 25 MiB resident
 * for the daemon's whole life). A preload hook (test/helpers/module-probe) records every module the
 * daemon process resolves; the config child is spawned without it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from './helpers/wait.js';

const CLI = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
const PROBE = fileURLToPath(new URL('./helpers/module-probe.js', import.meta.url));

/** Modules the daemon must not load: the YAML parser, zod, and the config code that uses them. */
const CONFIG_READING =
  /\/node_modules\/(yaml|zod)\/|\/src\/config\/(load|schema|keys|yaml-errors|issues)\.js$/;

const dir = mkdtempSync(join(tmpdir(), 'kasa-footprint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(pollInterval: string): string {
  return `discovery:
  broadcast: [127.255.255.255]
  port: 21591
polling:
  interval: ${pollInterval}
http:
  listen: 127.0.0.1:0
storage:
  sqlite:
    path: ${join(dir, 'kasa.db')}
log:
  format: json
`;
}

describe('the running daemon', () => {
  it('never loads yaml, zod or the config loader, at start or on reload', async () => {
    const file = join(dir, 'config.yaml');
    const modules = join(dir, 'modules.txt');
    writeFileSync(file, config('10s'));
    writeFileSync(modules, '');
    const daemon = spawn(process.execPath, ['--import', PROBE, CLI, 'run', '-c', file], {
      env: { PATH: process.env['PATH'], MODULE_PROBE_FILE: modules },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(daemon, 'exit');
    const log: Record<string, unknown>[] = [];
    createInterface({ input: daemon.stdout }).on('line', (line) => {
      log.push(JSON.parse(line) as Record<string, unknown>);
    });
    const logged = (msg: string) => log.some((l) => l['msg'] === msg);
    try {
      await waitFor(() => log.some((l) => String(l['msg']).startsWith('HTTP endpoint on')), 'the daemon up');

      writeFileSync(file, config('2s'));
      daemon.kill('SIGHUP');
      await waitFor(() => logged('configuration reloaded'), 'the reload applied');
      const reloaded = log.find((l) => l['msg'] === 'configuration reloaded');
      assert.ok(
        ((reloaded?.['applied'] ?? []) as string[]).includes('polling.interval'),
        'the new interval applied',
      );

      writeFileSync(file, config('banana'));
      daemon.kill('SIGHUP');
      await waitFor(
        () => logged('reload rejected: keeping the running configuration'),
        'the reload rejected',
      );
      assert.ok(
        log.some((l) => String(l['msg']).startsWith('config rejected: polling.interval')),
        'the bad key is named',
      );

      daemon.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0);
    } finally {
      if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    }

    const resolved = readFileSync(modules, 'utf8').split('\n');
    // The probe saw the daemon itself: without this the test could pass on an empty list.
    assert.ok(
      resolved.some((url) => url.endsWith('/src/main.js')),
      'the module probe recorded the daemon',
    );
    assert.deepEqual(
      resolved.filter((url) => CONFIG_READING.test(url)),
      [],
      'modules the daemon process loaded',
    );
  });
});
