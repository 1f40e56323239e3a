import { fstatSync } from 'node:fs';
import type { pino as Pino } from 'pino';
import { requireCommonJs } from '../shared/commonjs.js';
import { visibleText } from '../shared/text.js';
import { formatHumanRecord, textStream, wantsHuman } from './human.js';

/** Loaded with require, not import: see shared/commonjs.ts. */
const { pino } = requireCommonJs('pino') as { pino: typeof Pino };

/** The logger type every component receives: a pino child made for it by the composition root. */
export type Logger = Pino.Logger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'auto' | 'json' | 'journal' | 'human';

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Where lines go; stdout by default (systemd reads stdout). */
  readonly destination?: NodeJS.WritableStream;
}

/** syslog priorities as sd-daemon(3) expects them in a `<N>` line prefix. */
const SYSLOG_PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

/**
 * True when file descriptor `fd` is the journal stream systemd connected: JOURNAL_STREAM holds its
 * `device:inode`, and it must match (a child whose output was redirected inherits the variable too).
 */
export function isJournalStream(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const match = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (match === null) return false;
  try {
    const stat = fstatSync(fd, { bigint: true });
    return stat.dev === BigInt(match[1] ?? '') && stat.ino === BigInt(match[2] ?? '');
  } catch {
    return false;
  }
}

/**
 * Under journald (stdout is the stream JOURNAL_STREAM names, or `log.format: journal`) every line
 * starts with its syslog priority so `journalctl -p warning` filters exactly; elsewhere lines stay JSON.
 */
export function wantsJournal(format: LogFormat, env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  return format === 'journal' || (format === 'auto' && isJournalStream(env, fd));
}

/**
 * Formats one pino JSON line for the journal: `<prio>message key=value ...` on a single line, with
 * every control character and bidi override escaped (see shared/text.ts), so nothing a field
 * holds can end the record, start another or fake its priority. Exported for its unit test.
 */
export function formatJournalLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `<6>${visibleText(json)}`;
  }
  const level = typeof record['level'] === 'number' ? record['level'] : 30;
  const priority = SYSLOG_PRIORITY[level] ?? 6;
  const { msg, level: _l, time: _t, pid: _p, hostname: _h, ...fields } = record;
  const parts: string[] = [typeof msg === 'string' ? msg : ''];
  for (const [key, value] of Object.entries(fields)) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    parts.push(`${key}=${/[\s"]/.test(text ?? '') ? JSON.stringify(text) : text}`);
  }
  return `<${priority}>${visibleText(parts.join(' '))}`;
}

/** The one pino root of the process. Components get `root.child({ component: 'name' })`. */
export function createRootLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? process.stdout;
  // Text formats keep stack traces off the line: the journal gets them at debug priority, a
  // terminal only when debug is logged (src/log/human.ts).
  let root: Logger | undefined;
  const stream = wantsJournal(options.format)
    ? textStream(out, (_record, raw) => formatJournalLine(raw), { showDebug: () => true })
    : wantsHuman(options.format, out)
      ? textStream(out, formatHumanRecord, { showDebug: () => root?.isLevelEnabled('debug') ?? false })
      : out;
  root = pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // The Influx token and the TP-Link account must never reach a log line, whatever object a
      // caller passes.
      redact: {
        paths: [
          'token',
          '*.token',
          '*.*.token',
          'config.storage.influx.token',
          'password',
          '*.password',
          '*.*.password',
          'username',
          '*.username',
          'config.credentials.username',
          'config.credentials.password',
        ],
        censor: '[redacted]',
      },
    },
    stream,
  );
  return root;
}

/** A logger that discards everything: for tests and one-shot commands that print their own output. */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
