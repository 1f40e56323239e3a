import { Writable } from 'node:stream';
import { createRootLogger, type Logger } from '../../src/log/logger.js';

export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** A real pino logger whose JSON lines are kept in memory, so tests can assert on what was logged. */
export function captureLogger(level: 'debug' | 'info' | 'warn' = 'debug'): {
  logger: Logger;
  lines: () => LogLine[];
} {
  const sink = textSink();
  // pino writes synchronously to a plain stream, so lines are visible right after the call.
  const logger = createRootLogger({ level, format: 'json', destination: sink.stream });
  return {
    logger,
    lines: () =>
      sink
        .text()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as LogLine),
  };
}

/** A stream that keeps everything written to it, for a logger's destination or a command's output. */
export function textSink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}
