import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import type { ChildOutcome } from './child-protocol.js';
import { ConfigError } from './errors.js';
import type { LoadedConfig, LoadOptions } from './load.js';

const CHILD_ENTRY = fileURLToPath(new URL('./load-child.js', import.meta.url));

/**
 * loadConfig in a short-lived child process: the same result, the same ConfigError (problems,
 * source, message), but yaml, zod, the schema and the ICU time-zone data never enter the calling
 * process. The long-running daemon loads its configuration this way at start and on every SIGHUP,
 * which keeps about 25 MiB out of its resident memory.
 *
 * When no child can be started or it gives no answer (no process slots, a missing file, a crash),
 * or loading failed with anything but a ConfigError, the configuration is loaded in this process,
 * so the outcome is the same, only the memory saving is lost.
 */
export async function loadConfigInChild(options: LoadOptions = {}): Promise<LoadedConfig> {
  const outcome = await askChild(options).catch(() => null);
  if (outcome?.kind === 'loaded') return outcome.loaded;
  if (outcome?.kind === 'invalid') throw new ConfigError(outcome.problems, outcome.source);
  const { loadConfig } = await import('./load.js');
  return loadConfig(options);
}

function askChild(options: LoadOptions): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    // No execArgv: the child needs none of the daemon's flags. It inherits the environment (TZ
    // decides the default time zone) and the working directory (relative paths), as loading here would.
    const child = spawn(process.execPath, [CHILD_ENTRY], { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // EPIPE when the child died early: 'close' reports it.
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('close', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`config loader exited with ${signal ?? code}`));
        return;
      }
      try {
        resolve(deserialize(Buffer.concat(chunks)) as ChildOutcome);
      } catch (error) {
        reject(error);
      }
    });
    // A plain copy: process.env itself cannot be serialised.
    child.stdin.end(serialize({ ...options, env: { ...(options.env ?? process.env) } }));
  });
}
