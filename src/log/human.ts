/**
 * Log lines for a person: on a terminal (`log.format: auto` with a TTY, or `human`) each record is
 * `14:03:05.120 WARN  discovery: message key=value ...`, short and on one line. And for every text
 * format (human, journal) an error's stack trace leaves the line it would make 3 kB long: the line
 * keeps the error's message, the stack follows as a record of its own at debug level, which
 * `journalctl -p info` and a terminal at `log.level: info` leave out. `json` keeps everything as it is.
 */
import { Writable } from 'node:stream';

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const DEBUG = 20;
/** Fields every record has; the human line shows them in its own way or not at all. */
const FRAME = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);
const MAX_FIELD = 80;

type LogRecord = Record<string, unknown>;

function isErrorLike(value: unknown): value is { message?: unknown; stack?: unknown; code?: unknown } {
  return (
    typeof value === 'object' && value !== null && typeof (value as { stack?: unknown }).stack === 'string'
  );
}

/**
 * Splits a record into the record with each error reduced to its message (and code), and a debug
 * record with the stack traces. Records without a stack come back unchanged with no second record.
 */
export function splitStacks(record: LogRecord): { record: LogRecord; stack: LogRecord | null } {
  const stacks: string[] = [];
  let changed = false;
  const out: LogRecord = {};
  for (const [name, value] of Object.entries(record)) {
    if (isErrorLike(value)) {
      changed = true;
      stacks.push(String(value.stack));
      const message = typeof value.message === 'string' ? value.message : String(value.stack).split('\n')[0];
      out[name] = typeof value.code === 'string' ? `${message} (${value.code})` : message;
    } else {
      out[name] = value;
    }
  }
  if (!changed) return { record, stack: null };
  const stack: LogRecord = {
    level: DEBUG,
    time: record['time'],
    pid: record['pid'],
    ...(record['component'] === undefined ? {} : { component: record['component'] }),
    msg: 'stack trace of the error above',
    stack: stacks.join('\n--\n'),
  };
  return { record: out, stack };
}

function clock(time: unknown): string {
  const date = typeof time === 'string' || typeof time === 'number' ? new Date(time) : new Date();
  if (Number.isNaN(date.getTime())) return '--:--:--.---';
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Lists as a,b; mappings as {key:value,...}: readable without JSON's quotes. */
function compact(value: unknown): string {
  if (Array.isArray(value)) return value.map(compact).join(',');
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([key, inner]) => `${key}:${compact(inner)}`)
      .join(',')}}`;
  }
  return String(value);
}

function fieldText(value: unknown): string {
  const text = compact(value);
  const short = text.length > MAX_FIELD ? `${text.slice(0, MAX_FIELD - 1)}…` : text;
  const quoted = /[\s"=]/.test(short) || short === '' ? JSON.stringify(short) : short;
  // Control characters (a device's alias) never reach the terminal as themselves.
  return quoted.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** One pino record as a human line: local time, level, component, message, the other fields. */
export function formatHumanRecord(record: LogRecord): string {
  const level = typeof record['level'] === 'number' ? record['level'] : 30;
  const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
  const component = typeof record['component'] === 'string' ? `${record['component']}: ` : '';
  const message = typeof record['msg'] === 'string' ? record['msg'] : '';
  const fields = Object.entries(record)
    .filter(([key, value]) => !FRAME.has(key) && value !== undefined)
    .map(([key, value]) =>
      key === 'stack' && typeof value === 'string'
        ? `\n    ${value.replace(/\n/g, '\n    ')}`
        : ` ${key}=${fieldText(value)}`,
    )
    .join('');
  const text = `${clock(record['time'])} ${name} ${component}${message.replace(/\r?\n/g, '\\n')}${fields}`;
  return text.replace(/[\p{Cc}]/gu, (c) =>
    c === '\n' ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

function parse(line: string): LogRecord | null {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null ? (value as LogRecord) : null;
  } catch {
    return null;
  }
}

/**
 * A stream for pino that turns each JSON line into text lines through `format`; error stacks become
 * a separate debug record, written only when `showDebug` (else left out: the line has the message).
 */
export function textStream(
  out: NodeJS.WritableStream,
  format: (record: LogRecord, raw: string) => string,
  options: { showDebug: () => boolean },
): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const lines: string[] = [];
      for (const raw of chunk.toString().split('\n')) {
        if (raw.length === 0) continue;
        const parsed = parse(raw);
        if (parsed === null) {
          lines.push(format({ level: 30, msg: raw }, JSON.stringify({ level: 30, msg: raw })));
          continue;
        }
        const { record, stack } = splitStacks(parsed);
        lines.push(format(record, record === parsed ? raw : JSON.stringify(record)));
        if (stack !== null && options.showDebug()) lines.push(format(stack, JSON.stringify(stack)));
      }
      if (lines.length > 0) out.write(`${lines.join('\n')}\n`);
      callback();
    },
  });
}

/** `human`, or `auto` on a terminal a person reads (the journal was ruled out before). */
export function wantsHuman(format: string, out: NodeJS.WritableStream): boolean {
  return format === 'human' || (format === 'auto' && (out as { isTTY?: boolean }).isTTY === true);
}
