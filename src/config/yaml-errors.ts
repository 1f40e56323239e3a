/**
 * YAML syntax errors in words a person can act on, at the line that is wrong. The parser reports
 * where it gave up, which is often not where the mistake is: an over-indented key shows up as an
 * error on the line above it, an unclosed quote at the end of the file, an unquoted cron schedule
 * as one "unexpected alias" per star. Nothing from the file is quoted except key names and the
 * value of a key that cannot be a secret (a cron schedule), since a line may hold a token.
 */
import type { LineCounter, YAMLError } from 'yaml';
import type { ConfigProblem } from './errors.js';

const PREFIX = 'YAML syntax error';
/** Keys whose values may be quoted back in a message. */
const ECHO_VALUE = /^(schedule|interval|timeout|broadcast|listen|level|format)$/;

interface Line {
  readonly number: number;
  readonly text: string;
  readonly indent: number;
}

function linesOf(text: string): Line[] {
  return text.split('\n').map((raw, index) => {
    const line = raw.replace(/\r$/, '');
    return { number: index + 1, text: line, indent: line.length - line.trimStart().length };
  });
}

function isBlank(line: Line | undefined): boolean {
  return line === undefined || line.text.trim() === '' || line.text.trimStart().startsWith('#');
}

/** `key: value` on a line (block style), or undefined. */
function keyValue(line: Line): { key: string; value: string } | undefined {
  const match = /^\s*(?:-\s+)?([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(line.text);
  if (match === null) return undefined;
  return { key: match[1] ?? '', value: (match[2] ?? '').trim() };
}

/** The message for one parser error, and the line it belongs to. */
function explain(
  error: YAMLError,
  lines: readonly Line[],
  counter: LineCounter,
): ConfigProblem & { line: number } {
  const start = counter.linePos(error.pos[0]);
  const end = counter.linePos(Math.max(error.pos[0], error.pos[1] - 1));
  const at = lines[start.line - 1];
  const firstLine = (error.message.split('\n')[0] ?? error.code).trim();
  const plain = (line: number, column: number, message: string) => ({
    path: '',
    line,
    column,
    message: `${PREFIX}: ${message}`,
  });

  // `schedule: */15 * * * * *`: a plain value cannot start with '*' (an alias in YAML).
  const pair = at === undefined ? undefined : keyValue(at);
  if (pair?.value.startsWith('*') && /alias/i.test(error.message)) {
    const example = ECHO_VALUE.test(pair.key) ? `${pair.key}: '${pair.value}'` : `${pair.key}: '*...'`;
    return plain(
      start.line,
      (at?.text.indexOf(pair.value) ?? 0) + 1,
      `the value of ${pair.key} starts with '*', which YAML reads as an alias: put it in quotes, as in ${example} (cron schedules always need quotes)`,
    );
  }

  if (error.code === 'MULTILINE_IMPLICIT_KEY' || error.code === 'BLOCK_AS_IMPLICIT_KEY') {
    // A key whose line has no ':' makes the next lines part of it.
    if (at !== undefined && !at.text.includes(':')) {
      const word = at.text.trim();
      return plain(
        start.line,
        at.indent + 1,
        `${/^[A-Za-z0-9_.-]+$/.test(word) ? `'${word}'` : `line ${start.line}`} needs a ':' after the key (or the line after it is indented too far)`,
      );
    }
    // An over-indented line continues the value of the line above: name the indented line.
    for (let n = start.line + 1; n <= Math.max(end.line, start.line + 1); n++) {
      const line = lines[n - 1];
      if (line === undefined || isBlank(line) || at === undefined) continue;
      if (line.indent > at.indent) {
        return plain(
          n,
          line.indent + 1,
          `line ${n} is indented more than line ${start.line} above it (column ${line.indent + 1}, not ${at.indent + 1}): keys of one section start in the same column`,
        );
      }
      break;
    }
    if (error.code === 'BLOCK_AS_IMPLICIT_KEY') {
      return plain(
        start.line,
        start.col,
        "a second 'key:' on the same line: put it on a line of its own, indented under the first",
      );
    }
  }

  // An unclosed [ or { shows up where the next section starts: point at where it was opened.
  const flow = /^Flow (sequence|mapping)/.exec(firstLine);
  if (flow !== null) {
    const [open, close] = flow[1] === 'sequence' ? ['[', ']'] : ['{', '}'];
    for (let n = start.line; n >= 1; n--) {
      const line = lines[n - 1];
      const column = line?.text.lastIndexOf(open) ?? -1;
      if (line !== undefined && column >= 0 && !line.text.includes(close, column)) {
        return plain(n, column + 1, `the '${open}' on line ${n} is never closed with '${close}'`);
      }
    }
  }
  if (error.code === 'BAD_INDENT' && at !== undefined && /same column/.test(firstLine)) {
    return plain(
      start.line,
      at.indent + 1,
      `line ${start.line} starts in column ${at.indent + 1}, which matches no section above it: indent every key of a section by the same number of spaces`,
    );
  }
  if (error.code === 'TAB_AS_INDENT') {
    return plain(start.line, start.col, 'a tab in the indentation: YAML indents with spaces only');
  }

  // An unclosed quote is reported at the end of the file: point at where it was opened.
  if (error.code === 'MISSING_CHAR' && /quote/i.test(firstLine)) {
    const quote = firstLine.includes('"') ? '"' : "'";
    for (let n = start.line; n >= 1; n--) {
      const line = lines[n - 1];
      const column = line?.text.indexOf(quote) ?? -1;
      if (line !== undefined && column >= 0) {
        return plain(n, column + 1, `the quote (${quote}) opened on line ${n} is never closed`);
      }
    }
  }

  // Errors found at a blank line or the end of the file belong to the last line with content.
  if (isBlank(at)) {
    for (let n = start.line - 1; n >= 1; n--) {
      const line = lines[n - 1];
      if (!isBlank(line) && line !== undefined) {
        return plain(n, line.text.trimEnd().length + 1, firstLine);
      }
    }
  }
  return plain(start.line, start.col, firstLine);
}

/** One problem per line that is wrong (the parser may report several for one mistake). */
export function describeYamlErrors(
  file: string,
  text: string,
  errors: readonly YAMLError[],
  counter: LineCounter,
): ConfigProblem[] {
  const lines = linesOf(text);
  const problems: ConfigProblem[] = [];
  const seen = new Set<number>();
  for (const error of errors) {
    const problem = explain(error, lines, counter);
    if (seen.has(problem.line)) continue;
    seen.add(problem.line);
    problems.push({ ...problem, path: file });
  }
  return problems;
}
