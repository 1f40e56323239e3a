import { Writable } from 'node:stream';
import { createRootLogger, type Logger } from '../../src/log/logger.js';

export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** A real pino logger whose JSON lines are kept in memory, so tests can assert on what was logged. */
export function captureLogger(level: 'debug' | 'info' | 'warn' = 'debug'): {
  logger: Logger;
  lines: () => LogLine[];
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  // pino writes synchronously to a plain stream, so lines are visible right after the call.
  const logger = createRootLogger({ level, format: 'json', destination });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as LogLine),
  };
}
