/**
 * Entry point of the short-lived process that reads the configuration for the running daemon
 * (`kasa-monitor run`, and its reloads): YAML parsing, validation and the time-zone lookup load
 * yaml, zod and ICU data that would otherwise stay resident in the daemon for its whole life.
 *
 * Reads one v8-serialised LoadOptions from stdin, writes one v8-serialised ChildOutcome to stdout.
 * Started only by child-loader.ts; not a command.
 */
import { deserialize, serialize } from 'node:v8';
import type { ChildOutcome } from './child-protocol.js';
import { ConfigError } from './errors.js';
import { type LoadOptions, loadConfig } from './load.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function outcome(options: LoadOptions): ChildOutcome {
  try {
    return { kind: 'loaded', loaded: loadConfig(options) };
  } catch (error) {
    if (error instanceof ConfigError)
      return { kind: 'invalid', problems: error.problems, source: error.source };
    // The parent loads in its own process then, so an unexpected error surfaces exactly as it did.
    return { kind: 'failed' };
  }
}

const options = deserialize(await readAll(process.stdin)) as LoadOptions;
process.stdout.write(serialize(outcome(options)));
