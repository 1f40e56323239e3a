import type { Command } from '../command.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { loadForCommand } from '../load-config.js';
import { healthUrl } from './status.js';

interface AckAnswer {
  readonly acknowledged?: readonly { readonly kind?: string; readonly file?: string }[];
  readonly status?: string;
  readonly error?: string;
}

export const ackCommand: Command = {
  name: 'ack',
  summary: 'acknowledge database incidents (a corrupt database moved aside, a removed file)',
  usage: `[-c FILE]

Tells the running daemon (POST /api/ack at http.listen) that you have seen its database incidents:
a corrupt database it moved aside, or a database file removed while it ran. Until then /health is
degraded, the check \`database\` names the files and its alert stays open; a restart clears them too.

  -c, --config FILE  finds the daemon (http.listen)

Exit code 0 when the daemon answered, 1 when it cannot be reached.
`,
  options: {
    config: { type: 'string', short: 'c' },
  },
  async run(context) {
    const { config } = loadForCommand(context);
    const url = new URL('/api/ack', healthUrl(config.http.listen)).toString();
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: unknown } }).cause;
      const why =
        typeof cause?.code === 'string' ? cause.code : error instanceof Error ? error.message : String(error);
      context.stderr.write(`kasa-monitor ack: cannot reach the daemon at ${url}: ${why} (is it running?)\n`);
      return EXIT_FAILURE;
    }
    let answer: AckAnswer;
    try {
      answer = (await response.json()) as AckAnswer;
    } catch {
      context.stderr.write(`kasa-monitor ack: ${url} answered HTTP ${response.status} without JSON\n`);
      return EXIT_FAILURE;
    }
    if (!response.ok) {
      context.stderr.write(`kasa-monitor ack: HTTP ${response.status}: ${answer.error ?? 'refused'}\n`);
      return EXIT_FAILURE;
    }
    const files = (answer.acknowledged ?? []).map((i) => `${i.kind ?? 'incident'}: ${i.file ?? '?'}`);
    context.stdout.write(
      files.length === 0
        ? `nothing to acknowledge; health is ${answer.status ?? 'unknown'}\n`
        : `acknowledged ${files.join(', ')}; health is now ${answer.status ?? 'unknown'}\n`,
    );
    return EXIT_OK;
  },
};
