import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { ConfigError, type ConfigProblem, type LoadOptions, loadConfig } from '../../src/config/index.js';

/**
 * Config-file fixtures in a temporary folder removed after the test file, and a loader with an empty
 * environment and no default file, so the host's /etc and environment cannot leak into a test.
 */
export function configFixtures(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let counter = 0;
  return {
    dir,
    writeConfig(text: string): string {
      const file = join(dir, `config-${++counter}.yaml`);
      writeFileSync(file, text);
      return file;
    },
    load(options: LoadOptions = {}) {
      return loadConfig({ env: {}, defaultFile: join(dir, 'absent.yaml'), ...options });
    },
  };
}

/** The ConfigError that `run` throws; fails the test when it throws none or another error. */
export function configErrorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

/** The problems of the ConfigError that `run` throws; fails the test when it throws none. */
export function problemsOf(run: () => unknown): readonly ConfigProblem[] {
  return configErrorOf(run).problems;
}
