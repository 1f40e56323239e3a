/**
 * The message layer every SQLite worker speaks (src/storage/sqlite/rpc): results typed per handler,
 * errors back as StorageErrors with SQLite's code, buffers moved rather than copied, a long handler
 * not holding up the calls after it, and a dead worker failing every pending call with one typed
 * error instead of leaving it hanging.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { isStorageError, KasaStorageCode, type StorageError } from '../src/storage/errors.js';
import { WorkerClient } from '../src/storage/sqlite/rpc/client.js';
import type { RpcTestHandlers } from './helpers/rpc-test-worker.js';

function startClient(onDeath?: (error: StorageError) => void): WorkerClient<RpcTestHandlers> {
  return new WorkerClient<RpcTestHandlers>(
    new Worker(new URL('./helpers/rpc-test-worker.js', import.meta.url)),
    {
      name: 'test',
      deathIsTransient: true,
      ...(onDeath === undefined ? {} : { onDeath }),
    },
  );
}

async function rejection(promise: Promise<unknown>): Promise<StorageError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isStorageError(error), `expected a StorageError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('worker message layer', () => {
  test("a call resolves with the handler's result; a thrown SQLite error comes back as a StorageError with its code", async () => {
    const client = startClient();
    try {
      assert.equal(await client.call('add', { a: 2, b: 3 }), 5);
      const error = await rejection(client.call('busy'));
      assert.equal(error.code, 'SQLITE_BUSY');
      assert.equal(error.transient, true, 'a held lock is transient');
      assert.match(error.message, /^busy: database is locked/);
    } finally {
      await client.terminate();
    }
  });

  test('buffers in the transfer list are moved both ways, not copied', async () => {
    const client = startClient();
    try {
      const values = new Float64Array([1, 2, 3.5]);
      const result = await client.call('sumAndReturn', { values }, [values.buffer]);
      assert.equal(values.buffer.byteLength, 0, 'the sent buffer left this thread');
      assert.equal(result.sum, 6.5);
      assert.deepEqual([...result.values], [1, 2, 3.5], 'and came back');
    } finally {
      await client.terminate();
    }
  });

  test('a handler answering later does not hold up the calls after it', async () => {
    const client = startClient();
    try {
      const held = client.call('held');
      assert.equal(await client.call('add', { a: 1, b: 1 }), 2);
      await client.call('release');
      assert.equal(await held, 'released');
    } finally {
      await client.terminate();
    }
  });

  test('a worker that dies fails its pending calls and every later one with a typed error, and says so once', async () => {
    const deaths: StorageError[] = [];
    const client = startClient((error) => deaths.push(error));
    const pending = client.call('held');
    const exit = client.call('exit', { code: 3 });
    const error = await rejection(pending);
    assert.equal(error.code, KasaStorageCode.workerExited);
    assert.equal(error.transient, true);
    assert.equal(error.message, 'test worker exited with code 3');
    assert.equal((await rejection(exit)).code, KasaStorageCode.workerExited);
    assert.equal(client.gone, true);
    const later = await rejection(client.call('add', { a: 1, b: 2 }));
    assert.equal(later.code, KasaStorageCode.workerExited);
    await client.exited;
    assert.deepEqual(
      deaths.map((d) => d.message),
      ['test worker exited with code 3'],
    );
  });
});
