import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createRootLogger, formatJournalLine, wantsJournal } from '../src/log/logger.js';
import { textSink } from './helpers/capture-logger.js';

describe('journald log format', () => {
  it('prefixes each line with the syslog priority of its level', () => {
    const out = textSink();
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

  it('is chosen when stdout is the stream JOURNAL_STREAM names, or when asked for', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kasa-journal-'));
    const fd = openSync(join(dir, 'stream'), 'w');
    try {
      const stat = fstatSync(fd, { bigint: true });
      const journal = { JOURNAL_STREAM: `${stat.dev}:${stat.ino}` };
      assert.equal(wantsJournal('auto', journal, fd), true);
      assert.equal(wantsJournal('auto', { JOURNAL_STREAM: `${stat.dev}:${stat.ino + 1n}` }, fd), false);
      assert.equal(wantsJournal('auto', {}, fd), false);
      assert.equal(wantsJournal('journal', {}, fd), true);
      assert.equal(wantsJournal('json', journal, fd), false);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps JSON when JOURNAL_STREAM was inherited but stdout goes elsewhere', () => {
    assert.equal(wantsJournal('auto', { JOURNAL_STREAM: '8:123' }), false);
  });

  it('never splits a record across lines, whatever its fields hold', () => {
    const line = formatJournalLine(
      JSON.stringify({ level: 50, msg: 'write\nfailed', err: { stack: 'Error: x\n    at y' }, path: 'a b' }),
    );
    assert.equal(line.includes('\n'), false);
    assert.match(line, /^<3>write\\nfailed err=/);
    assert.match(line, / path="a b"$/);
  });

  it('escapes every control character and bidi override, quoted or not, so a name cannot start a record', () => {
    const line = formatJournalLine(
      JSON.stringify({
        level: 30,
        msg: 'device found',
        alias: 'a\u0000<0>b\u001b[2Jc\u202ed\u2066\u007f\u0085',
        quoted: 'x y\u202e\u2028\r<1>z',
      }),
    );
    assert.equal(
      line,
      '<6>device found alias=a\\u0000<0>b\\u001b[2Jc\\u202ed\\u2066\\u007f\\u0085 quoted="x y\\u202e\\u2028\\r<1>z"',
    );
    assert.equal(formatJournalLine('not json\u0000<0>x'), '<6>not json\\u0000<0>x');
  });

  it('never writes an Influx token that a caller passes in a log object', () => {
    const out = textSink();
    const log = createRootLogger({ level: 'info', format: 'json', destination: out.stream });
    log.info({ influx: { url: 'http://x', token: 's3cret' } }, 'config');
    assert.doesNotMatch(out.text(), /s3cret/);
  });
});
