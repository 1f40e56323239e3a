import assert from 'node:assert/strict';
import { isStorageError, type StorageError } from '../../src/storage/errors.js';

/** Awaits `promise` and asserts it rejects with a StorageError of `code` and `transient`; returns it. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  transient: boolean,
): Promise<StorageError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isStorageError(error), `expected a StorageError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.transient, transient);
    return error;
  }
  assert.fail(`expected a StorageError ${code}`);
}
