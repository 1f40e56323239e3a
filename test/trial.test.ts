/**
 * Rough edges found by trying the merged daemon as a person would (README from the top). The built
 * CLI, real simulated plugs and real sockets. Ports 29000-29999 and 127.29.0.x belong to this file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSilentLogger } from '../src/log/logger.js';
import { SqliteStore } from '../src/storage/sqlite/index.js';
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

/** A database with one plug's readings over the last few minutes (no daemon needed). */
async function databaseWithReadings(): Promise<string> {
  const path = join(tempDir(), 'kasa.db');
  const store = new SqliteStore(
    {
      path,
      journalMode: 'WAL',
      synchronous: 'FULL',
      cacheSize: -2000,
      tempStore: 'MEMORY',
      busyTimeoutMs: 5000,
    },
    createSilentLogger(),
  );
  await store.start();
  try {
    await store.upsertChannels([
      { id: 'TRIAL1', alias: 'Kettle', model: 'HS110(EU)', parentId: null, parentAlias: null },
    ]);
    const now = Date.now();
    await store.writeBatch(
      [0, 1, 2, 3].map((i) => ({
        channel: 'TRIAL1',
        tsMs: now - (4 - i) * 10_000,
        powerMw: 1_000_000,
        voltageMv: 230_000,
        currentMa: 4_300,
        totalWh: 1_000 + i,
      })),
    );
  } finally {
    await store.stop();
  }
  return path;
}

describe('energy', () => {
  it('says nothing about unpriced energy when no tariff is configured', async () => {
    const db = await databaseWithReadings();
    const config = join(tempDir(), 'config.yaml');
    writeFileSync(config, `storage:\n  sqlite:\n    path: ${db}\n`);
    const result = await runCliProcess(['energy', '-c', config]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Kettle/);
    assert.doesNotMatch(result.stdout, /unpriced/);
  });
});
