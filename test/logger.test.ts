import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createRootLogger, formatJournalLine, wantsJournal } from '../src/log/logger.js';

function collect(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer | string, _e, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

describe('journald log format', () => {
  it('prefixes each line with the syslog priority of its level', () => {
    const out = collect();
    const log = createRootLogger({ level: 'debug', format: 'journal', destination: out.stream });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    const prefixes = out
      .text()
      .trim()
      .split('\n')
      .map((l) => l.slice(0, 3));
    assert.deepEqual(prefixes, ['<7>', '<6>', '<4>', '<3>']);
  });

  it('puts the message first and structured fields after it, on one line', () => {
    const line = formatJournalLine(
      JSON.stringify({ level: 40, time: 1, pid: 2, msg: 'plug offline', device: 'A1', note: 'two\nlines' }),
    );
    assert.equal(line, '<4>plug offline device=A1 note="two\\nlines"');
  });

  it('is chosen when stdout is connected to the journal, or when asked for', () => {
    assert.equal(wantsJournal('auto', { JOURNAL_STREAM: '8:123' }), true);
    assert.equal(wantsJournal('auto', {}), false);
    assert.equal(wantsJournal('journal', {}), true);
    assert.equal(wantsJournal('json', { JOURNAL_STREAM: '8:123' }), false);
  });

  it('never writes an Influx token that a caller passes in a log object', () => {
    const out = collect();
    const log = createRootLogger({ level: 'info', format: 'json', destination: out.stream });
    log.info({ influx: { url: 'http://x', token: 's3cret' } }, 'config');
    assert.doesNotMatch(out.text(), /s3cret/);
  });
});
