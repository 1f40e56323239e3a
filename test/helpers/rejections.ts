/** Assertions that a promise rejects with one of the project's typed errors. */
import assert from 'node:assert/strict';
import { isSmartError, type SmartErrorCode } from '../../src/smart/errors.js';
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

/** Awaits `promise` and returns the code of the SmartError it rejects with; any other outcome fails. */
export async function smartErrorCode(promise: Promise<unknown>): Promise<SmartErrorCode> {
  try {
    await promise;
  } catch (err) {
    if (isSmartError(err)) return err.code;
    throw err;
  }
  assert.fail('expected a SmartError');
}
