/**
 * The operator's path around the daemon, through the built CLI: which database a command finds,
 * what backup and restore leave behind for the service user, the messages and exit codes of
 * mistakes, a port that is taken, the no-plugs hint, and the log a person reads on a terminal
 * (a real pseudo-terminal made by util-linux `script`). Ports 34000-34099 and 127.34.0.x belong to
 * this file. The ownership tests need root (as `npm test` does): chown to the service user is
 * exactly what is tested.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { createRootLogger } from '../src/log/logger.js';
import { textSink } from './helpers/capture-logger.js';
import { CLI, type CliResult, DaemonProcess, runCliProcess } from './helpers/cli.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { tempDirs } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const SERVICE_UID = 34_567;
const tempDir = tempDirs('kasa-operator-');

/** The built CLI in `cwd`, with only PATH (and `env`) in its environment. */
function cli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return runCliProcess(args, options.env, { cwd: options.cwd ?? tempDir() });
}

/** A database with a few stored readings: a daemon run against one simulated plug, stopped. */
async function databaseWithReadings(dir: string, port: number, address: string): Promise<string> {
  const fleet: SimulatorFleet = await startSimulators({
    port,
    devices: [{ model: 'hs110', address, deviceId: `OPR${String(port).padStart(37, '0')}`, alias: 'Kettle' }],
  });
  const db = join(dir, 'state', 'kasa-monitor.db');
  const daemon = new DaemonProcess(
    [
      '--database',
      db,
      '--set',
      `discovery.hosts=${address}:${port}`,
      '--set',
      'discovery.enabled=false',
      '--set',
      'polling.interval=200ms',
      '--set',
      'polling.timeout=150ms',
      '--set',
      'writer.flush_interval=100ms',
      '--set',
      'http.listen=127.34.0.1:0',
    ],
    {},
  );
  try {
    await waitFor(
      async () => daemon.lines.some((l) => l['msg'] === 'plug found') && (await countRows(db)) >= 3,
      () => `readings stored: ${daemon.stderr}`,
      30_000,
      100,
    );
    daemon.signal('SIGTERM');
    assert.equal(await daemon.exited, 0);
  } finally {
    await daemon.kill();
    await fleet.stop();
  }
  return db;
}

async function countRows(db: string): Promise<number> {
  const result = await cli(['export', '--format', 'csv'], { env: { DATABASE_PATH: db } });
  return result.code === 0 ? result.stdout.trim().split('\n').length - 1 : 0;
}

describe('commands find the database the service uses', () => {
  it('with the system config and no storage.sqlite.path, the database is in the state directory, whatever the cwd', () => {
    const dir = tempDir();
    const system = join(dir, 'etc-config.yaml');
    writeFileSync(system, 'polling:\n  interval: 10s\n');
    const stateDirectory = join(dir, 'var-lib-kasa-monitor');
    for (const cwd of ['/', dir]) {
      const previous = process.cwd();
      process.chdir(cwd);
      try {
        const loaded = loadConfig({ env: {}, defaultFile: system, systemStateDirectory: stateDirectory });
        assert.equal(loaded.config.storage.sqlite.path, join(stateDirectory, 'kasa-monitor.db'));
        assert.match(
          loaded.databaseOrigin,
          /sets no storage\.sqlite\.path, so it is in the unit's state directory/,
        );
        // Named explicitly with -c, the same file means the same database.
        const named = loadConfig({
          file: system,
          env: {},
          defaultFile: system,
          systemStateDirectory: stateDirectory,
        });
        assert.equal(named.config.storage.sqlite.path, join(stateDirectory, 'kasa-monitor.db'));
      } finally {
        process.chdir(previous);
      }
    }
  });

  it('uses ./data only without any configuration file, and says so when the database is missing', async () => {
    const cwd = tempDir();
    const result = await cli(['export'], { cwd });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`no database at ${cwd}/data/kasa-monitor\\.db`));
    assert.match(
      result.stderr,
      /the default without a configuration file .*: \.\/data in the working directory/,
    );
    for (const command of ['energy', 'backup']) {
      const other = await cli([command], { cwd });
      assert.equal(other.code, 1, command);
      assert.match(other.stderr, /no database at .*\(the default without a configuration file/, command);
    }
  });

  it('names the setting that chose a missing database', async () => {
    const dir = tempDir();
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `storage:\n  sqlite:\n    path: ${join(dir, 'nowhere.db')}\n`);
    const result = await cli(['export', '-c', config]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`no database at ${dir}/nowhere\\.db \\(storage\\.sqlite\\.path in ${config}\\)`),
    );
    const byEnv = await cli(['export'], { env: { DATABASE_PATH: join(dir, 'env.db') } });
    assert.match(byEnv.stderr, /no database at .*env\.db \(set by DATABASE_PATH\)/);
  });
});

describe('backup and restore run as root leave files the service user can use', () => {
  it('hands the backup folder and file to the database owner; restore gives the restored database its owner and mode', async () => {
    assert.equal(process.getuid?.(), 0, 'this test runs as root (npm test does): it checks chown');
    const dir = tempDir();
    const db = await databaseWithReadings(dir, 34_010, '127.34.0.10');
    // The service user's state directory, as StateDirectory= with UMask=0077 makes it.
    const state = join(dir, 'state');
    for (const entry of readdirSync(state)) chownSync(join(state, entry), SERVICE_UID, SERVICE_UID);
    chownSync(state, SERVICE_UID, SERVICE_UID);
    chmodSync(state, 0o700);
    chmodSync(db, 0o600);

    const backup = await cli(['backup'], { env: { DATABASE_PATH: db } });
    assert.equal(backup.code, 0, backup.stderr);
    const backups = join(state, 'backups');
    assert.equal(statSync(backups).uid, SERVICE_UID, 'the backups folder belongs to the service user');
    const [file] = readdirSync(backups);
    if (file === undefined) assert.fail('a backup file was written');
    assert.ok(file.endsWith('-manual.db'));
    const copy = statSync(join(backups, file));
    assert.equal(copy.uid, SERVICE_UID);
    assert.equal(copy.mode & 0o777, 0o600);

    const restored = await cli(['restore', join(backups, file)], { env: { DATABASE_PATH: db } });
    assert.equal(restored.code, 0, restored.stderr);
    const now = statSync(db);
    assert.equal(now.uid, SERVICE_UID, 'the restored database belongs to the service user');
    assert.equal(now.gid, SERVICE_UID);
    assert.equal(now.mode & 0o777, 0o600);
  });

  it('rejects an empty or directory argument to restore with a clear message (exit 64)', async () => {
    const empty = await cli(['restore', '']);
    assert.equal(empty.code, 64);
    assert.match(empty.stderr, /restore needs the backup FILE to put back, got an empty argument/);
    const dir = tempDir();
    writeFileSync(join(dir, 'kasa-monitor-20261126T030000Z.db'), '');
    const folder = await cli(['restore', dir]);
    assert.equal(folder.code, 64);
    assert.match(
      folder.stderr,
      new RegExp(
        `${dir} is a directory; name one backup file in it, such as ${dir}/kasa-monitor-20261126T030000Z\\.db`,
      ),
    );
  });
});

describe('mistakes get messages a person understands', () => {
  async function checkConfig(text: string): Promise<CliResult> {
    const dir = tempDir();
    const file = join(dir, 'config.yaml');
    writeFileSync(file, text);
    return cli(['check-config', '-c', file]);
  }

  it('says to quote an unquoted cron schedule', async () => {
    const result = await checkConfig('polling:\n  schedule: */15 * * * * *\n');
    assert.equal(result.code, 78);
    assert.match(result.stderr, /1 problem\(s\)/, 'one problem, not one per star');
    assert.match(
      result.stderr,
      /line 2, column 13\): .*put it in quotes, as in schedule: '\*\/15 \* \* \* \* \*'/,
    );
  });

  it('points indentation errors at the line that is wrong', async () => {
    const over = await checkConfig('polling:\n  interval: 10s\n   timeout: 2s\n');
    assert.match(over.stderr, /\(line 3, column 4\): YAML syntax error: line 3 is indented more than line 2/);
    const under = await checkConfig('polling:\n  interval: 10s\n timeout: 2s\n');
    assert.match(under.stderr, /\(line 3, column 2\): YAML syntax error: line 3 starts in column 2/);
    const quote = await checkConfig("polling:\n  interval: '10s\n\n");
    assert.match(
      quote.stderr,
      /\(line 2, column 13\): YAML syntax error: the quote \('\) opened on line 2 is never closed/,
    );
  });

  it('locates an unknown key on its own line, not the line below', async () => {
    const result = await checkConfig('pollling:\n  interval: 1s\n');
    assert.match(result.stderr, /pollling \(line 1, column 1\): unknown key.*did you mean 'polling'/);
    const nested = await checkConfig('polling:\n  intervall: 1s\n');
    assert.match(nested.stderr, /polling\.intervall \(line 2, column 3\): unknown key/);
  });

  it('says http.listen needs an address and a port', async () => {
    const result = await checkConfig('http:\n  listen: 9469\n');
    assert.equal(result.code, 78);
    assert.match(
      result.stderr,
      /http\.listen \(line 2, column 11\): needs an address and a port, such as '127\.0\.0\.1:9469'/,
    );
  });

  it('suggests the nearest option and command', async () => {
    const option = await cli(['export', '--form', 'csv']);
    assert.equal(option.code, 64);
    assert.match(
      option.stderr,
      /^kasa-monitor export: unknown option '--form' \(did you mean '--format'\?\)/,
    );
    const command = await cli(['exprot']);
    assert.equal(command.code, 64);
    assert.match(command.stderr, /unknown command 'exprot' \(did you mean 'export'\?\)/);
  });
});

describe('discover', () => {
  it('takes --timeout as a duration (5s, 500ms) and finds a plug', async () => {
    const fleet = await startSimulators({
      port: 34_020,
      devices: [{ model: 'hs110', address: '127.34.0.20', deviceId: `OPR${'2'.repeat(37)}`, alias: 'Lamp' }],
    });
    try {
      const result = await cli([
        'discover',
        '--broadcast',
        '127.255.255.255',
        '--port',
        '34020',
        '--timeout',
        '1s',
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Lamp/);
    } finally {
      await fleet.stop();
    }
  });

  it('exits 1 with what to try when nothing answers', async () => {
    const result = await cli([
      'discover',
      '--broadcast',
      '127.255.255.255',
      '--port',
      '34021',
      '--timeout',
      '300ms',
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no plug answered discovery on 127\.255\.255\.255:34021 within 300ms/);
    assert.match(result.stderr, /subnet's broadcast address/);
    assert.match(result.stderr, /discovery\.hosts/);
    assert.match(result.stderr, /newer plugs \(Tapo, KLAP firmware\).*credentials\.username\/password/);
  });
});

describe('the daemon', () => {
  let holder: Server | undefined;
  after(() => holder?.close());

  it('does not start when http.listen is taken: exit 1, an error naming the address and "in use"', async () => {
    holder = createServer();
    holder.listen(34_030, '127.34.0.30');
    await once(holder, 'listening');
    const dir = tempDir();
    const daemon = new DaemonProcess([
      '--database',
      join(dir, 'kasa.db'),
      '--set',
      'discovery.enabled=false',
      '--set',
      'http.listen=127.34.0.30:34030',
    ]);
    try {
      // A deadline only to turn "it kept running" (the old behaviour) into a clear failure.
      const exited = await Promise.race([
        daemon.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 30_000).unref()),
      ]);
      assert.equal(exited, 1);
      const fatal = daemon.lines.find((l) => String(l['msg']).startsWith('could not start'));
      assert.ok(fatal, daemon.stderr);
      assert.equal(fatal['level'], 60);
      assert.match(
        String(fatal['msg']),
        /cannot listen on 127\.34\.0\.30:34030 \(http\.listen\): the address is already in use/,
      );
    } finally {
      await daemon.kill();
    }
  });

  it('hints once, not every round, when no plug is found', async () => {
    const dir = tempDir();
    const daemon = new DaemonProcess([
      '--database',
      join(dir, 'kasa.db'),
      '--broadcast',
      '127.255.255.255',
      '--set',
      'discovery.port=34040',
      '--set',
      'discovery.interval=300ms',
      '--set',
      'discovery.timeout=100ms',
      '--set',
      'http.listen=127.34.0.1:0',
      '--log-level',
      'debug',
    ]);
    try {
      await waitFor(
        () => daemon.lines.filter((l) => l['msg'] === 'discovery round done').length >= 4,
        () => `four discovery rounds: ${daemon.stderr}`,
        30_000,
        100,
      );
      const hints = daemon.lines.filter((l) => String(l['msg']).startsWith('no plug answered discovery'));
      assert.equal(hints.length, 1, 'once');
      const text = String(hints[0]?.['msg']);
      assert.equal(hints[0]?.['level'], 40);
      for (const part of [
        '127.255.255.255:34040',
        '`kasa-monitor discover`',
        'subnet',
        'discovery.hosts',
        'credentials.username/password',
      ]) {
        assert.ok(text.includes(part), `the hint mentions ${part}: ${text}`);
      }
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0);
    } finally {
      await daemon.kill();
    }
  });
});

/** Runs `command` in a real pseudo-terminal (util-linux `script`); resolves with everything shown. */
class Terminal {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(command: readonly string[]) {
    const line = command.map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(' ');
    // `exec`: the command itself is the terminal's foreground process, not a shell around it.
    this.child = spawn('script', ['-qfec', `exec ${line}`, '/dev/null'], {
      env: { PATH: process.env['PATH'], TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    this.exited = once(this.child, 'exit').then(([code]) => code as number | null);
  }

  async waitFor(text: string): Promise<void> {
    await waitFor(
      () => this.output.includes(text),
      () => `the terminal to show '${text}':\n${this.output}`,
      30_000,
      100,
    );
  }

  /** Ctrl-C typed at the terminal: SIGINT from the line discipline, as a person stops it. */
  interrupt(): void {
    this.child.stdin?.write('\x03');
  }

  lines(): string[] {
    // The terminal echoes the Ctrl-C as '^C' in front of the next line.
    return this.output
      .split(/\r?\n/)
      .map((l) => l.replace(/^\^C/, ''))
      .filter((l) => l.trim() !== '');
  }
}

describe('logs on a terminal', () => {
  const HUMAN = /^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /;

  it('are short human lines: time, level, component, message, fields; the config is one line', async () => {
    const dir = tempDir();
    const terminal = new Terminal([
      process.execPath,
      CLI,
      'run',
      '--database',
      join(dir, 'kasa.db'),
      '--broadcast',
      '127.255.255.255',
      '--set',
      'discovery.port=34050',
      '--set',
      'http.listen=127.34.0.1:0',
    ]);
    try {
      await terminal.waitFor('started: discovering plugs and polling');
      terminal.interrupt();
      await terminal.waitFor('stopped');
      assert.equal(await terminal.exited, 0);
      const lines = terminal.lines();
      for (const line of lines) {
        assert.match(line, HUMAN, `a human line: ${line}`);
        assert.doesNotMatch(line, /"level":/, 'not JSON');
      }
      const starting = lines.find((l) => l.includes('INFO  starting: '));
      assert.ok(starting);
      assert.match(
        starting,
        /starting: database \S+kasa\.db; discovery 127\.255\.255\.255:34050; polling every 10s/,
      );
      assert.ok(starting.length < 300, `one short summary line (${starting.length} characters)`);
      assert.ok(
        !lines.some((l) => l.includes('"retry"') || l.includes('configuration ')),
        'the full config is at debug',
      );
      assert.ok(lines.some((l) => /INFO {2}sqlite: SQLite store open path=\S+kasa\.db/.test(l)));
    } finally {
      terminal.child.kill('SIGKILL');
    }
  });

  it('shows a start failure as one line, without the stack trace at info', async () => {
    const holder = createServer();
    holder.listen(34_051, '127.34.0.51');
    await once(holder, 'listening');
    try {
      const dir = tempDir();
      const terminal = new Terminal([
        process.execPath,
        CLI,
        'run',
        '--database',
        join(dir, 'kasa.db'),
        '--set',
        'discovery.enabled=false',
        '--set',
        'http.listen=127.34.0.51:34051',
      ]);
      assert.equal(await terminal.exited, 1);
      const fatal = terminal.lines().find((l) => l.includes('FATAL could not start'));
      assert.ok(fatal, terminal.output);
      assert.match(
        fatal,
        /cannot listen on 127\.34\.0\.51:34051 \(http\.listen\): the address is already in use/,
      );
      assert.doesNotMatch(terminal.output, /^\s+at /m, 'no stack trace lines');
    } finally {
      holder.close();
    }
  });
});

describe('logs under journald', () => {
  it('keep the priority prefix and put a stack trace on its own debug line', () => {
    const sink = textSink();
    const log = createRootLogger({ level: 'info', format: 'journal', destination: sink.stream });
    log.error({ err: new Error('disk on fire') }, 'write failed');
    const lines = sink.text().trim().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[0], '<3>write failed err="disk on fire"');
    assert.match(lines[1] ?? '', /^<7>stack trace of the error above stack="Error: disk on fire\\n {4}at /);
  });

  it('stays JSON with every field, stack included, with log.format: json', () => {
    const sink = textSink();
    const log = createRootLogger({ level: 'info', format: 'json', destination: sink.stream });
    log.error({ err: new Error('disk on fire') }, 'write failed');
    const record = JSON.parse(sink.text()) as { err: { stack: string }; msg: string };
    assert.equal(record.msg, 'write failed');
    assert.match(record.err.stack, /^Error: disk on fire\n {4}at /);
  });
});
