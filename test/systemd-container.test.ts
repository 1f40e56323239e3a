/**
 * The real unit under a real systemd 252 (a Debian bookworm container, see helpers/container.ts),
 * installed by scripts/install.sh, running as a DynamicUser against simulated plugs on the
 * container's loopback. Needs root, systemd-nspawn and debootstrap (.ci/run installs them); when the
 * container cannot start, every test here fails with the reason. It never skips.
 *
 * The steps build on each other, in order: install, start, readings, STATUS, reload, rejected reload,
 * journald priorities, watchdog, stop, uninstall. Timings seen are printed as test diagnostics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Container, checkPrerequisites, ensureRootfs } from './helpers/container.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SRC = '/opt/src/kasa-monitor';
const PREFIX = '/opt/kasa-monitor';
const UNIT = 'kasa-monitor.service';
const CONFIG = '/etc/kasa-monitor/config.yaml';
const DB = '/var/lib/private/kasa-monitor/kasa-monitor.db';
const WEDGE_DROP_IN = '/run/systemd/system/kasa-monitor.service.d/50-test-wedge.conf';
/** The wedge preload (test/helpers/wedge.ts), from the build bound into the container. */
const WEDGE_PRELOAD = `${SRC}/dist/test/helpers/wedge.js`;
const COMMAND = '/usr/local/bin/kasa-monitor';
const STATE = '/var/lib/private/kasa-monitor';
const PLUGS = 3;

/** The config the tests run with: the simulated plugs, quick polls. `extra` is appended. */
function testConfig(polling: string, extra = ''): string {
  return `discovery:
  broadcast: 127.255.255.255
  port: 9999
  interval: 5s
  timeout: 1s
polling:
${polling}
${extra}`;
}
const POLL_2S = '  interval: 2s\n  timeout: 1s';
const POLL_1S = '  interval: 1s\n  timeout: 500ms';

interface JournalEntry {
  readonly message: string;
  readonly priority: number;
  /** Microseconds, CLOCK_MONOTONIC of the journal's receipt. */
  readonly mono: number;
  readonly identifier: string;
  readonly pid: number;
}

const timings: Record<string, number | string> = {};

describe('the systemd unit under a real systemd 252', () => {
  let container: Container | null = null;
  /** Where the journal stood before the second install restarted the service. */
  let restartCursor: bigint | undefined;
  const started = performance.now();

  function guest(): Container {
    if (container === null) throw new Error('the test container is not running (see the first failure)');
    return container;
  }

  /** The position of a journal entry: its sequence number, from the `i=` part of its cursor. */
  function seqnum(cursor: string): bigint {
    const hex = /(?:^|;)i=([0-9a-f]+)/.exec(cursor)?.[1];
    if (hex === undefined) throw new Error(`no sequence number in the journal cursor ${cursor}`);
    return BigInt(`0x${hex}`);
  }

  async function journal(args: readonly string[], after?: bigint): Promise<JournalEntry[]> {
    const out = await guest().run(['journalctl', '--no-pager', '-o', 'json', ...args]);
    return out
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((e) => after === undefined || seqnum(String(e['__CURSOR'])) > after)
      .map((e) => {
        const raw = e['MESSAGE'];
        const message = Array.isArray(raw) ? Buffer.from(raw as number[]).toString() : String(raw ?? '');
        return {
          message,
          priority: Number(e['PRIORITY'] ?? 6),
          mono: Number(e['__MONOTONIC_TIMESTAMP'] ?? 0),
          identifier: String(e['SYSLOG_IDENTIFIER'] ?? ''),
          pid: Number(e['_PID'] ?? 0),
        };
      });
  }

  /**
   * The unit's journal (the daemon's lines and systemd's about it), after position `after` if given.
   * (Not --after-cursor: with a match such as -u or -p, journalctl 252 skips the first matching
   * entry after the cursor.)
   */
  function unitJournal(after?: bigint, extra: readonly string[] = []): Promise<JournalEntry[]> {
    return journal(['-u', UNIT, ...extra], after);
  }

  /** The position of the newest journal entry now. */
  async function cursor(): Promise<bigint> {
    const out = await guest().run(['journalctl', '--no-pager', '-n', '0', '--show-cursor']);
    const match = /-- cursor: (\S+)/.exec(out);
    if (match?.[1] === undefined) throw new Error(`no journal cursor in: ${out}`);
    return seqnum(match[1]);
  }

  async function show(...properties: string[]): Promise<Record<string, string>> {
    const out = await guest().run(['systemctl', 'show', UNIT, ...properties.map((p) => `--property=${p}`)]);
    return Object.fromEntries(
      out
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  /** Polls `probe` until it returns a value; on timeout throws with the unit's recent journal. */
  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 45_000): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (performance.now() > deadline) {
        const tail = await guest()
          .exec(['journalctl', '--no-pager', '-u', UNIT, '-n', '60', '-o', 'short-monotonic'])
          .catch(() => ({ stdout: '(journal unavailable)' }));
        throw new Error(`timed out waiting for ${what}\n--- journal ---\n${tail.stdout}`);
      }
      await sleep(150);
    }
  }

  /** Readings in the service's database, read from a copy (the files belong to the dynamic user). */
  async function readingCount(): Promise<number> {
    const out = await guest().run([
      'sh',
      '-c',
      `d=$(mktemp -d) && cp ${DB}* "$d"/ && DATABASE_PATH="$d/kasa-monitor.db" /usr/bin/node ${PREFIX}/dist/src/cli/bin.js export --format csv; rc=$?; rm -rf "$d"; exit $rc`,
    ]);
    return out.split('\n').filter((l) => l !== '').length - 1;
  }

  async function readings(device: string): Promise<{ tsMs: number }[]> {
    const out = await guest().run([
      'sh',
      '-c',
      `d=$(mktemp -d) && cp ${DB}* "$d"/ && DATABASE_PATH="$d/kasa-monitor.db" /usr/bin/node ${PREFIX}/dist/src/cli/bin.js export --format csv --device ${device}; rc=$?; rm -rf "$d"; exit $rc`,
    ]);
    return out
      .split('\n')
      .slice(1)
      .filter((l) => l !== '')
      .map((l) => ({ tsMs: Date.parse(l.split(',')[0] ?? '') }));
  }

  /**
   * A command as root types it: a login shell (Debian's root PATH from /etc/profile), a clean
   * environment, in `/`. Resolves to the whole result; the exit code is the caller's to check.
   */
  function rootShell(command: string, timeoutMs = 60_000) {
    return guest().exec(['env', '-i', 'HOME=/root', 'TERM=dumb', 'bash', '-lc', `cd / && ${command}`], {
      timeoutMs,
    });
  }

  /** The uid the service runs as now. */
  async function serviceUid(): Promise<string> {
    const { MainPID: pid } = await show('MainPID');
    const status = await guest().run(['cat', `/proc/${pid}/status`]);
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    if (uid === undefined) throw new Error(`no Uid in /proc/${pid}/status`);
    return uid;
  }

  /** Files in the state directory that root owns: each would lock the service out of it. */
  async function rootOwnedState(): Promise<string[]> {
    const out = await guest().run(['find', STATE, '-uid', '0']);
    return out.split('\n').filter((line) => line !== '');
  }

  /** PID 1's debug line for each notification it got from the unit, in order. */
  async function notifications(since: bigint): Promise<JournalEntry[]> {
    const entries = await unitJournal(since);
    return entries.filter(
      (e) => e.identifier === 'systemd' && e.message.includes('Got notification message'),
    );
  }

  before(async () => {
    checkPrerequisites();
    const rootfs = await ensureRootfs((line) => console.log(line));
    timings['rootfs'] = rootfs.built ? `built in ${Math.round(rootfs.ms)} ms` : 'cached';
    container = await Container.boot({
      rootfs: rootfs.dir,
      bindReadOnly: { '/usr/bin/node': '/usr/bin/node', [REPO]: SRC },
    });
    timings['bootMs'] = Math.round(container.bootMs);
    // PID 1 logs every notification it receives at debug level: that is how the tests see them.
    await guest().run(['systemd-analyze', 'log-level', 'debug']);
    await guest().run([
      'systemd-run',
      '--unit=kasa-sim',
      '--property=Type=notify',
      '--property=NotifyAccess=all',
      '--property=DynamicUser=yes',
      '/usr/bin/node',
      `${SRC}/dist/scripts/sim-fleet.js`,
      '--port',
      '9999',
      '--devices',
      String(PLUGS),
    ]);
  });

  after(async () => {
    timings['totalMs'] = Math.round(performance.now() - started);
    console.log(`systemd container timings: ${JSON.stringify(timings)}`);
    await container?.shutdown();
  });

  it('is installed by scripts/install.sh: program, config from the example, unit; enabled and started', async () => {
    const out = await guest().run(['bash', `${SRC}/scripts/install.sh`, '--skip-build'], {
      timeoutMs: 180_000,
    });
    assert.match(out, /creating \/etc\/kasa-monitor\/config\.yaml from the example/);
    const config = await guest().run(['cat', CONFIG]);
    assert.equal(config, readFileSync(`${REPO}/config/kasa-monitor.example.yaml`, 'utf8'));
    assert.equal((await guest().run(['systemctl', 'is-enabled', UNIT])).trim(), 'enabled');
    assert.equal((await guest().run(['systemctl', 'is-active', UNIT])).trim(), 'active');
    assert.match(out, /installing the command \/usr\/local\/bin\/kasa-monitor/);
    const verify = await guest().exec(['systemd-analyze', 'verify', `/etc/systemd/system/${UNIT}`]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.doesNotMatch(
      verify.stderr,
      /kasa-monitor/,
      'systemd-analyze verify has nothing to say about the unit',
    );
  });

  it('keeps an edited config on a second install, and restarts the service with the new program', async () => {
    await guest().writeFile(CONFIG, testConfig(POLL_2S));
    const { MainPID: before } = await show('MainPID');
    restartCursor = await cursor();
    const out = await guest().run(['bash', `${SRC}/scripts/install.sh`, '--skip-build'], {
      timeoutMs: 180_000,
    });
    assert.match(out, /keeping the existing \/etc\/kasa-monitor\/config\.yaml/);
    assert.equal(await guest().run(['cat', CONFIG]), testConfig(POLL_2S));
    const now = await show('MainPID', 'ActiveState');
    assert.equal(now['ActiveState'], 'active');
    assert.notEqual(now['MainPID'], before);
  });

  it('becomes active only after READY=1, sent once the database is open and polling is armed', async () => {
    const all = await unitJournal(restartCursor);
    const begin = all.findLastIndex((e) => e.message.includes('Changed dead -> start'));
    assert.ok(begin >= 0, 'the restart is in the journal');
    const entries = all.slice(begin);
    const at = (what: string, test: (e: JournalEntry) => boolean): number => {
      const found = entries.find(test);
      assert.ok(found, `${what} is in the journal of this start`);
      return found.mono;
    };
    const starting = at('the start job', (e) => e.message.includes('Changed dead -> start'));
    const dbOpen = at('the database opened', (e) => e.message.startsWith('SQLite store open'));
    const armed = at('polling armed', (e) => e.message.startsWith('started: discovering plugs and polling'));
    const ready = at('READY=1', (e) => /Got notification message.*READY=1/.test(e.message));
    const running = at('the unit running', (e) => e.message.includes('Changed start -> running'));
    assert.ok(starting <= dbOpen && dbOpen <= armed, 'the daemon opened the database, then armed polling');
    assert.ok(armed <= ready, 'READY=1 came after polling was armed');
    assert.ok(
      entries.findIndex((e) => /Got notification message.*READY=1/.test(e.message)) <
        entries.findIndex((e) => e.message.includes('Changed start -> running')),
      'the unit became active only after READY=1',
    );
    assert.ok(ready <= running);
    timings['startToReadyMs'] = Math.round((ready - starting) / 1000);
  });

  it('runs as a non-root dynamic user and stores readings in $STATE_DIRECTORY/kasa-monitor.db', async () => {
    const { MainPID: pid } = await show('MainPID');
    const status = await guest().run(['cat', `/proc/${pid}/status`]);
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    assert.ok(uid !== undefined && uid !== '0', `the daemon runs as uid ${uid}, not root`);
    const owner = (await guest().run(['stat', '-c', '%u', DB])).trim();
    assert.equal(owner, uid);
    await until('readings in the database', async () => ((await readingCount()) >= PLUGS ? true : undefined));
  });

  it("puts kasa-monitor on root's PATH: --version works in a login shell", async () => {
    const pkg = JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')) as { version: string };
    const which = await rootShell('command -v kasa-monitor');
    assert.equal(which.stdout.trim(), COMMAND, which.stderr);
    const version = await rootShell('kasa-monitor --version');
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), pkg.version);
  });

  it("finds the service's database from / with a config that names none: export prints its readings", async () => {
    assert.doesNotMatch(await guest().run(['cat', CONFIG]), /path:/, 'the config names no database');
    const result = await rootShell('kasa-monitor export --format csv');
    assert.equal(result.code, 0, result.stderr);
    const rows = result.stdout.split('\n').filter((l) => l.startsWith('20'));
    assert.ok(rows.length >= PLUGS, `the service's readings (${rows.length} rows)`);
    assert.ok(rows.every((row) => row.split(',')[1]?.startsWith('SIM')));
    assert.deepEqual(
      await rootOwnedState(),
      [],
      'export as root left nothing root-owned in the state directory',
    );
  });

  it('keeps STATUS current: plugs online, last poll, queue fill and the SQLite sink', async () => {
    const pattern = new RegExp(
      `^${PLUGS}/${PLUGS} plugs online; last poll \\d+s ago; queue \\d+/100000; sqlite ok \\(\\d+ written\\)$`,
    );
    const first = await until('a full STATUS', async () => {
      const { StatusText: text = '' } = await show('StatusText');
      return pattern.test(text) ? text : undefined;
    });
    await until('STATUS to be refreshed', async () => {
      const { StatusText: text = '' } = await show('StatusText');
      return pattern.test(text) && text !== first ? true : undefined;
    });
  });

  it('applies a changed poll interval on systemctl reload, in the same process', async () => {
    const before = await show('MainPID', 'NRestarts');
    const since = await cursor();
    // polling.interval applies on reload; storage.sqlite.cache_size needs a restart (a warning).
    await guest().writeFile(CONFIG, testConfig(POLL_1S, 'storage:\n  sqlite:\n    cache_size: 5000\n'));
    const t0 = performance.now();
    await guest().run(['systemctl', 'reload', UNIT]);
    timings['systemctlReloadReturnedMs'] = Math.round(performance.now() - t0);
    const reloadedAt = Date.now();

    const sent = await until('RELOADING=1 then READY=1', async () => {
      const list = await notifications(since);
      const reloading = list.findIndex(
        (e) => /RELOADING=1/.test(e.message) && /MONOTONIC_USEC=\d+/.test(e.message),
      );
      const ready = list.findIndex((e, i) => i > reloading && /READY=1/.test(e.message));
      return reloading >= 0 && ready > reloading
        ? { reloading: list[reloading], ready: list[ready] }
        : undefined;
    });
    const entries = await unitJournal(since);
    const reloadJob = entries.find(
      (e) => e.identifier === 'systemd' && e.message.startsWith('Reloading kasa-monitor'),
    );
    if (reloadJob !== undefined && sent.ready !== undefined) {
      timings['reloadMs'] = Math.round((sent.ready.mono - reloadJob.mono) / 100) / 10;
    }
    const applied = entries.find((e) => e.message.startsWith('configuration reloaded'));
    assert.ok(applied, 'the daemon logged the reload');
    assert.match(applied.message, /applied="\[\\?"polling.interval\\?",\\?"polling.timeout\\?"\]"/);
    assert.match(applied.message, /needRestart="\[\\?"storage.sqlite.cache_size\\?"\]"/);
    const warning = entries.find((e) =>
      e.message.startsWith('some changed keys take effect only after a restart'),
    );
    assert.equal(warning?.priority, 4, 'the restart-only keys are named at warning priority');
    assert.match(warning?.message ?? '', /storage\.sqlite\.cache_size/);

    const now = await show('MainPID', 'NRestarts', 'ActiveState', 'StatusText');
    assert.equal(now['MainPID'], before['MainPID']);
    assert.equal(now['NRestarts'], before['NRestarts']);
    assert.equal(now['ActiveState'], 'active');
    assert.match(now['StatusText'] ?? '', /^restart needed for storage\.sqlite\.cache_size; /);

    // The plug is now polled every second.
    const device = 'SIM0000000000000000000000000000000000001';
    const after = await until('readings at the new interval', async () => {
      const list = (await readings(device)).filter((r) => r.tsMs > reloadedAt + 1000);
      return list.length >= 5 ? list : undefined;
    });
    const gaps = after.slice(1).map((r, i) => Math.round((r.tsMs - (after[i]?.tsMs ?? 0)) / 1000));
    const ones = gaps.filter((g) => g === 1).length;
    assert.ok(
      ones >= gaps.length - 1,
      `readings one second apart after the reload: gaps ${gaps.join(',')} s`,
    );
  });

  it('keeps running on the old config when a reload brings a broken one, and journalctl -p err says why', async () => {
    const before = await show('MainPID');
    const since = await cursor();
    await guest().writeFile(CONFIG, testConfig('  interval: banana', 'queue:\n  capacity: -1\n'));
    await guest().run(['systemctl', 'reload', UNIT]);
    await until('READY=1 after the rejected reload', async () => {
      const list = await notifications(since);
      const reloading = list.findIndex((e) => /RELOADING=1/.test(e.message));
      return reloading >= 0 && list.slice(reloading + 1).some((e) => /READY=1/.test(e.message))
        ? true
        : undefined;
    });
    const errors = await unitJournal(since, ['-p', 'err']);
    const messages = errors.map((e) => e.message);
    assert.ok(
      messages.some((m) => m.startsWith('config rejected: polling.interval')),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => m.startsWith('config rejected: queue.capacity')),
      messages.join('\n'),
    );
    assert.ok(messages.includes('reload rejected: keeping the running configuration'));
    const now = await show('MainPID', 'ActiveState', 'StatusText');
    assert.equal(now['MainPID'], before['MainPID']);
    assert.equal(now['ActiveState'], 'active');
    assert.match(
      now['StatusText'] ?? '',
      /^reload rejected, running on the previous configuration: polling\.interval/,
    );

    // A good config again: the note goes away.
    await guest().writeFile(CONFIG, testConfig(POLL_1S, 'storage:\n  sqlite:\n    cache_size: 5000\n'));
    await guest().run(['systemctl', 'reload', UNIT]);
    await until('STATUS without the rejection', async () => {
      const { StatusText: text = '' } = await show('StatusText');
      return text.includes('plugs online') && !text.includes('rejected') ? true : undefined;
    });
  });

  it('writes every line with its priority: journalctl -p warning shows only warnings and errors', async () => {
    const all = await unitJournal();
    const daemon = all.filter((e) => e.identifier === 'kasa-monitor');
    assert.ok(daemon.length > 10, 'the daemon logged through the journal as kasa-monitor');
    for (const e of daemon) {
      assert.doesNotMatch(e.message, /^(<\d>|\{)/, `prefix consumed by journald, not JSON: ${e.message}`);
      assert.doesNotMatch(e.message, /\n/, 'one record, one line');
    }
    const priorityOf = (start: string) => daemon.find((e) => e.message.startsWith(start))?.priority;
    assert.equal(priorityOf('started: discovering plugs and polling'), 6);
    assert.equal(priorityOf('some changed keys take effect only after a restart'), 4);
    assert.equal(priorityOf('config rejected: polling.interval'), 3);

    const warnings = await unitJournal(undefined, ['-p', 'warning']);
    assert.ok(warnings.length > 0);
    assert.ok(
      warnings.every((e) => e.priority <= 4),
      warnings.map((e) => `${e.priority} ${e.message}`).join('\n'),
    );
    assert.ok(!warnings.some((e) => e.message.startsWith('started: discovering plugs and polling')));
    const shown = new Set(warnings.map((e) => e.message));
    for (const e of daemon.filter((d) => d.priority <= 4)) assert.ok(shown.has(e.message));
  });

  it('reads the TP-Link account from systemd credentials (/etc/credstore), and never logs or shows it', async () => {
    const user = 'Credential.User@Example.COM';
    const password = 'cred store pw 7';
    await guest().run(['mkdir', '-p', '-m', '0700', '/etc/credstore']);
    await guest().writeFile('/etc/credstore/tplink-username', `${user}\n`);
    await guest().run(['chmod', '0600', '/etc/credstore/tplink-username']);
    const since = await cursor();
    // A user name without a password: the daemon refuses to start and names the credential.
    await guest().exec(['systemctl', 'restart', UNIT]);
    const refused = await until('the start refused for the half account', async () => {
      const entries = await unitJournal(since);
      return entries.find((e) => /tplink-username.*no password/.test(e.message));
    });
    assert.ok(refused.message.includes('CREDENTIALS_DIRECTORY/tplink-username'), refused.message);

    await guest().writeFile('/etc/credstore/tplink-password', `${password}\n`);
    await guest().run(['chmod', '0600', '/etc/credstore/tplink-password']);
    const again = await cursor();
    await guest().run(['systemctl', 'reset-failed', UNIT]);
    await guest().run(['systemctl', 'restart', UNIT]);
    await until('the daemon started with the account', async () => {
      const entries = await unitJournal(again);
      return entries.some((e) => e.message.startsWith('started: discovering plugs and polling'))
        ? true
        : undefined;
    });
    assert.equal((await show('ActiveState'))['ActiveState'], 'active');
    const health = await guest().run([
      '/usr/bin/node',
      '-e',
      "fetch('http://127.0.0.1:9469/health').then((r) => r.text()).then((t) => process.stdout.write(t))",
    ]);
    assert.match(health, /"status"/);
    const logged = (await unitJournal(since)).map((e) => e.message).join('\n');
    for (const text of [logged, health]) {
      assert.ok(!text.includes(user) && !text.includes(password), 'the account leaked');
    }
  });

  it('is killed by the watchdog and restarted when its event loop is wedged', async () => {
    // Test-only: the wedge preload from the repository's build (bound into the container like the
    // simulator), with a short watchdog. It wedges the daemon on SIGUSR2, once the daemon is up.
    await guest().writeFile(
      WEDGE_DROP_IN,
      `[Service]\nEnvironment=NODE_OPTIONS=--import=${WEDGE_PRELOAD}\nWatchdogSec=3s\nRestartSec=2s\n`,
    );
    await guest().run(['systemctl', 'daemon-reload']);
    // Type=notify: this returns once the daemon sent READY=1, so the watchdog is armed.
    await guest().run(['systemctl', 'restart', UNIT]);
    const before = await show('MainPID', 'NRestarts');
    const since = await cursor();
    await guest().run(['kill', '-USR2', String(before['MainPID'])]);
    const timeout = await until('the watchdog to fire', async () => {
      const entries = await unitJournal(since);
      return entries.find((e) => e.message.includes('Watchdog timeout'));
    });
    // Take the preload away before the restart comes, so the restarted daemon runs as installed.
    await guest().run(['rm', '-f', WEDGE_DROP_IN]);
    await guest().run(['systemctl', 'daemon-reload']);
    const entries = await unitJournal(since);
    const wedged = entries.find((e) => e.message.includes('wedging the event loop'));
    assert.ok(wedged !== undefined, 'the preload wedged the daemon');
    timings['wedgeToWatchdogKillMs'] = Math.round((timeout.mono - wedged.mono) / 1000);
    assert.ok(
      entries.some((e) =>
        e.message.includes(`Killing process ${before['MainPID']} (node) with signal SIGABRT`),
      ),
    );
    assert.ok(entries.some((e) => e.message.includes("Failed with result 'watchdog'")));

    const restarted = await until('the automatic restart', async () => {
      const now = await show('MainPID', 'NRestarts', 'ActiveState');
      return now['ActiveState'] === 'active' && now['MainPID'] !== before['MainPID'] && now['MainPID'] !== '0'
        ? now
        : undefined;
    });
    assert.equal(Number(restarted['NRestarts']), Number(before['NRestarts']) + 1);
    const environ = await guest().run(['cat', `/proc/${restarted['MainPID']}/environ`]);
    if (environ.includes(WEDGE_PRELOAD)) {
      // The restart beat the drop-in's removal (3 s watchdog, preload): start clean for what follows.
      await guest().run(['systemctl', 'restart', UNIT]);
    }
  });

  it('backup, stop, restore, start: the service comes back active and goes on recording', async () => {
    const backup = await rootShell('kasa-monitor backup');
    assert.equal(backup.code, 0, backup.stderr);
    const file = /^backup written: (\S+) \(/m.exec(backup.stdout)?.[1];
    assert.ok(file?.startsWith('/var/lib/kasa-monitor/backups/'), backup.stdout);
    const uid = await serviceUid();
    assert.deepEqual(await rootOwnedState(), [], 'the backup folder and file belong to the service user');

    const recipe = await rootShell(
      `systemctl stop kasa-monitor && kasa-monitor restore ${file} && systemctl start kasa-monitor`,
      120_000,
    );
    assert.equal(recipe.code, 0, `${recipe.stdout}\n${recipe.stderr}`);
    assert.match(recipe.stdout, /^restored \S+ to \/var\/lib\/kasa-monitor\/kasa-monitor\.db/m);
    const restoredAt = Date.now();
    assert.equal((await show('ActiveState'))['ActiveState'], 'active');
    assert.equal((await guest().run(['stat', '-c', '%u %a', DB])).trim(), `${await serviceUid()} 600`);
    assert.ok(uid !== '0');
    const device = 'SIM0000000000000000000000000000000000001';
    await until('new readings after the restore', async () => {
      const list = (await readings(device)).filter((r) => r.tsMs > restoredAt + 1000);
      return list.length >= 2 ? true : undefined;
    });
    assert.equal((await show('ActiveState'))['ActiveState'], 'active');
  });

  it('takes a scheduled backup after the manual one, with no error in the journal', async () => {
    const since = await cursor();
    await guest().writeFile(
      CONFIG,
      testConfig(POLL_1S, "storage:\n  backup:\n    schedule: '*/2 * * * * *'\n"),
    );
    await guest().run(['systemctl', 'reload', UNIT]);
    const scheduled = await until('a scheduled backup file', async () => {
      const list = await guest().run(['ls', `${STATE}/backups`]);
      return list.split('\n').find((name) => /^kasa-monitor-\d{8}T\d{6}Z\.db$/.test(name));
    });
    assert.ok(scheduled);
    const errors = (await unitJournal(since, ['-p', 'err'])).filter((e) => e.identifier === 'kasa-monitor');
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
    await guest().writeFile(CONFIG, testConfig(POLL_1S));
    await guest().run(['systemctl', 'reload', UNIT]);
  });

  it('fails to start while another process holds the HTTP port: journalctl -p err names the address', async () => {
    await guest().run(['systemctl', 'stop', UNIT]);
    await guest().run([
      'systemd-run',
      '--unit=port-holder',
      '--property=DynamicUser=yes',
      '/usr/bin/node',
      '-e',
      "require('node:net').createServer().listen(9469, '127.0.0.1')",
    ]);
    await until('the port to be held', async () => {
      const probe = await guest().exec([
        '/usr/bin/node',
        '-e',
        "require('node:net').connect(9469, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))",
      ]);
      return probe.code === 0 ? true : undefined;
    });
    const since = await cursor();
    const restart = await guest().exec(['systemctl', 'restart', UNIT], { timeoutMs: 120_000 });
    assert.notEqual(restart.code, 0, 'systemctl restart reports the failed start');
    const state = await show('ActiveState', 'Result');
    assert.notEqual(state['ActiveState'], 'active');
    assert.equal(state['Result'], 'exit-code');
    const errors = await unitJournal(since, ['-p', 'err']);
    assert.ok(
      errors.some((e) =>
        /cannot listen on 127\.0\.0\.1:9469 \(http\.listen\): the address is already in use/.test(e.message),
      ),
      errors.map((e) => `${e.priority} ${e.message}`).join('\n'),
    );
    assert.ok(
      errors.every((e) => e.message.length < 1000),
      'no stack trace on an error line',
    );

    await guest().run(['systemctl', 'stop', 'port-holder']);
    await guest().run(['systemctl', 'reset-failed', UNIT]);
    await guest().run(['systemctl', 'start', UNIT], { timeoutMs: 120_000 });
    assert.equal((await show('ActiveState'))['ActiveState'], 'active');
  });

  it('exits cleanly on systemctl stop after STOPPING=1, with every queued reading committed', async () => {
    // Hold readings in the queue (no time- or size-triggered writes) so that stop has to drain it.
    await guest().writeFile(
      CONFIG,
      testConfig(POLL_1S, 'writer:\n  flush_interval: 1h\n  batch_size: 100000\n'),
    );
    await guest().run(['systemctl', 'reload', UNIT]);
    const queued = await until('readings waiting in the queue', async () => {
      const { StatusText: text = '' } = await show('StatusText');
      const n = Number(/queue (\d+)\//.exec(text)?.[1] ?? '0');
      return text.includes(`${PLUGS}/${PLUGS} plugs online`) && n >= 2 * PLUGS ? n : undefined;
    });
    const { MainPID: pid } = await show('MainPID');
    const before = await readingCount();
    const since = await cursor();
    const t0 = performance.now();
    await guest().run(['systemctl', 'stop', UNIT]);
    timings['systemctlStopMs'] = Math.round(performance.now() - t0);

    const result = await show('Result', 'ExecMainCode', 'ExecMainStatus', 'ActiveState');
    assert.deepEqual(result, {
      Result: 'success',
      ExecMainCode: '1',
      ExecMainStatus: '0',
      ActiveState: 'inactive',
    });
    const entries = await unitJournal(since);
    const index = (test: (e: JournalEntry) => boolean) => entries.findIndex(test);
    const stopJob = entries.find((e) => e.message.startsWith('Stopping kasa-monitor'));
    const stopping = index((e) => /Got notification message.*STOPPING=1/.test(e.message));
    const exited = index((e) => e.message.includes('Main process exited, code=exited, status=0/SUCCESS'));
    assert.ok(stopping >= 0, 'systemd got STOPPING=1');
    assert.ok(exited > stopping, 'STOPPING=1 came before the process exited');
    const stoppedJob = entries.find((e) => e.message.startsWith('Stopped kasa-monitor'));
    if (stopJob !== undefined && stoppedJob !== undefined) {
      timings['stopMs'] = Math.round((stoppedJob.mono - stopJob.mono) / 100) / 10;
    }
    timings['queuedAtStop'] = queued;

    const summary = entries.find((e) => e.pid === Number(pid) && e.message.startsWith('stopped '));
    assert.ok(summary, 'the daemon logged its final counts');
    const field = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(summary.message)?.[1]);
    assert.equal(field('droppedAtShutdown'), 0);
    assert.equal(field('droppedOverflow'), 0);
    assert.equal(field('queued'), 0);
    assert.equal(field('readingsQueued'), field('written') + field('duplicates'));
    const afterStop = await readingCount();
    assert.ok(
      afterStop - before >= queued,
      `the ${queued} queued readings reached the database at stop (${before} → ${afterStop})`,
    );
  });

  it('is removed by scripts/uninstall.sh, which keeps the config and the database', async () => {
    await guest().run(['bash', `${SRC}/scripts/uninstall.sh`]);
    const unit = await guest().exec(['test', '-e', `/etc/systemd/system/${UNIT}`]);
    assert.notEqual(unit.code, 0, 'the unit file is gone');
    const program = await guest().exec(['test', '-e', PREFIX]);
    assert.notEqual(program.code, 0, 'the program is gone');
    const command = await guest().exec(['test', '-e', COMMAND]);
    assert.notEqual(command.code, 0, 'the command is gone');
    await guest().run(['test', '-f', CONFIG]);
    await guest().run(['test', '-f', DB]);
  });
});
