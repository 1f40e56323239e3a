import { Writable } from 'node:stream';
import { isJournalStream } from '../log/logger.js';

/** The priority prefix for a plain text line: `<4>` for "warning: …", else `<3>` (these are problems). */
export function plainLinePriority(line: string): string {
  return /^\s*warning:/i.test(line) ? '<4>' : '<3>';
}

/**
 * Under journald, gives every line written to `out` (the daemon's stderr) a syslog priority prefix, so
 * the problems printed before the logger exists (a bad config at start) show in
 * `journalctl -p err`. Anywhere else `out` is returned unchanged.
 */
export function journalPrefixed(
  out: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv = process.env,
  fd = 2,
): NodeJS.WritableStream {
  if (!isJournalStream(env, fd)) return out;
  let partial = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      const text = lines.map((line) => `${plainLinePriority(line)}${line}\n`).join('');
      if (text !== '') out.write(text);
      callback();
    },
    final(callback) {
      if (partial !== '') out.write(`${plainLinePriority(partial)}${partial}\n`);
      partial = '';
      callback();
    },
  });
}
