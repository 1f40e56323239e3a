/**
 * Rough edges found by trying the merged daemon as a person would (README from the top). The built
 * CLI, real simulated plugs and real sockets. Ports 29000-29999 and 127.29.0.x belong to this file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCliProcess } from './helpers/cli.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kasa-trial-'));
  dirs.push(dir);
  return dir;
}

describe('demo', () => {
  it('exits 1 with a hint, instead of hanging, when its HTTP port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(29_101, '127.29.0.1', resolve));
    try {
      const dir = tempDir();
      const result = await runCliProcess([
        'demo',
        '--devices',
        '1',
        '--port',
        '29102',
        '--database',
        join(dir, 'demo.db'),
        '--set',
        'http.listen=127.29.0.1:29101',
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stdout + result.stderr, /already in use/);
      assert.match(result.stderr, /demo --set http\.listen=/);
    } finally {
      holder.close();
    }
  });
});
