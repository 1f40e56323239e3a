import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Config, defaultConfig } from '../src/config/index.js';
import type { DaemonStatus } from '../src/main.js';
import { startIntervalTicks, startTicks } from '../src/poller/scheduler.js';
import { journalPrefixed, plainLinePriority } from '../src/systemd/journal.js';
import {
  binaryTransport,
  type NotifyMessage,
  notifyArguments,
  oneLine,
  SystemdNotifier,
} from '../src/systemd/notify.js';
import { type ProgressClock, ProgressGate, type ProgressSample } from '../src/systemd/progress.js';
import { progressLimits, SystemdService } from '../src/systemd/service.js';
import { formatStatus, sqliteSink, statusFacts } from '../src/systemd/status.js';
import { Watchdog, watchdogSettings } from '../src/systemd/watchdog.js';
import { captureLogger } from './helpers/capture-logger.js';
import { NotifySocket } from './helpers/notify-socket.js';
import { settle } from './helpers/wait.js';

const NOTIFY_ENV = { NOTIFY_SOCKET: '/run/systemd/notify' };

/** A transport that records messages; each send settles when the test says so (or at once). */
function recordingTransport(
  options: { manual?: boolean; fail?: (m: NotifyMessage, n: number) => boolean } = {},
) {
  const sent: NotifyMessage[] = [];
  const pending: (() => void)[] = [];
  let active = 0;
  let maxActive = 0;
  const transport = (message: NotifyMessage): Promise<void> => {
    sent.push(message);
    active++;
    maxActive = Math.max(maxActive, active);
    const n = sent.length;
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        active--;
        if (options.fail?.(message, n) === true) reject(new Error('send failed'));
        else resolve();
      };
      if (options.manual === true) pending.push(settle);
      else queueMicrotask(settle);
    });
  };
  return {
    transport,
    sent,
    maxActive: () => maxActive,
    /** Settles the oldest unsettled send. */
    release: () => pending.shift()?.(),
    waiting: () => pending.length,
  };
}

/** A readable summary of what was sent: assignments plus READY/STATUS flags. */
function lines(sent: readonly NotifyMessage[]): string[] {
  return sent.map((m) =>
    [
      ...(m.ready === true ? ['READY=1'] : []),
      ...(m.assignments ?? []).map((a) => a.replace(/^MONOTONIC_USEC=\d+$/, 'MONOTONIC_USEC=<t>')),
      ...(m.status === undefined ? [] : [`STATUS=${m.status}`]),
    ].join(' '),
  );
}

describe('systemd notifications', () => {
  it('do nothing and never fail without NOTIFY_SOCKET', async () => {
    const t = recordingTransport();
    const notifier = new SystemdNotifier({ logger: captureLogger().logger, env: {}, transport: t.transport });
    notifier.ready('up');
    notifier.reloading();
    notifier.watchdog();
    notifier.stopping();
    await notifier.flush();
    assert.equal(notifier.enabled, false);
    assert.equal(t.sent.length, 0);
  });

  it('go out one at a time and in the order they were made', async () => {
    const t = recordingTransport({ manual: true });
    const notifier = new SystemdNotifier({
      logger: captureLogger().logger,
      env: NOTIFY_ENV,
      transport: t.transport,
      monotonicUsec: () => 123_456_789n,
    });
    notifier.ready('up');
    notifier.reloading('reloading');
    notifier.ready('reloaded');
    notifier.stopping('bye');
    while (t.waiting() > 0 || notifier.stats().pending > 0) {
      await settle();
      t.release();
    }
    await notifier.flush();
    assert.equal(t.maxActive(), 1);
    assert.deepEqual(lines(t.sent), [
      'READY=1 STATUS=up',
      'RELOADING=1 MONOTONIC_USEC=<t> STATUS=reloading',
      'READY=1 STATUS=reloaded',
      'STOPPING=1 STATUS=bye',
    ]);
    assert.deepEqual(t.sent[1]?.assignments, ['RELOADING=1', 'MONOTONIC_USEC=123456789']);
  });

  it('time a reload start with CLOCK_MONOTONIC in microseconds', async () => {
    const t = recordingTransport();
    const notifier = new SystemdNotifier({
      logger: captureLogger().logger,
      env: NOTIFY_ENV,
      transport: t.transport,
    });
    const before = process.hrtime.bigint() / 1000n;
    notifier.reloading();
    await notifier.flush();
    const after = process.hrtime.bigint() / 1000n;
    const stamp = BigInt((t.sent[0]?.assignments?.[1] ?? '').replace('MONOTONIC_USEC=', ''));
    assert.ok(stamp >= before && stamp <= after, `${stamp} within [${before}, ${after}]`);
  });

  it('never let a newline in STATUS forge another assignment', () => {
    assert.deepEqual(notifyArguments({ status: 'fine\nREADY=1\r\nMAINPID=1' }), [
      '--status=fine READY=1 MAINPID=1',
    ]);
    assert.deepEqual(notifyArguments({ ready: true, assignments: ['WATCHDOG=1'] }), [
      '--ready',
      'WATCHDOG=1',
    ]);
    assert.equal(oneLine('x'.repeat(500)).length, 300);
  });

  it('merge watchdog pings and STATUS updates that pile up behind a slow send', async () => {
    const t = recordingTransport({ manual: true });
    const notifier = new SystemdNotifier({
      logger: captureLogger().logger,
      env: NOTIFY_ENV,
      transport: t.transport,
    });
    notifier.ready('up');
    for (let i = 0; i < 50; i++) notifier.watchdog(`ping ${i}`);
    notifier.status('a');
    notifier.status('b');
    notifier.status('b');
    while (t.waiting() > 0 || notifier.stats().pending > 0) {
      await settle();
      t.release();
    }
    assert.deepEqual(lines(t.sent), ['READY=1 STATUS=up', 'WATCHDOG=1 STATUS=ping 49', 'STATUS=b']);
  });

  it('keep going after a failed send, logging the failure once and the recovery', async () => {
    const t = recordingTransport({ fail: (_m, n) => n <= 3 });
    const log = captureLogger();
    const notifier = new SystemdNotifier({ logger: log.logger, env: NOTIFY_ENV, transport: t.transport });
    notifier.ready('1');
    notifier.status('2');
    notifier.watchdog();
    notifier.status('4');
    await notifier.flush();
    assert.equal(t.sent.length, 4);
    assert.deepEqual(notifier.stats(), { sent: 1, failed: 3, dropped: 0, pending: 0 });
    const messages = log.lines().map((l) => `${l.level} ${l.msg}`);
    assert.deepEqual(
      messages.filter((m) => !m.startsWith('20 ')),
      ['50 could not notify systemd; will keep trying', '30 notifications to systemd work again'],
    );
  });

  it('give up on a send that hangs and go on with the next', async () => {
    const sent: string[] = [];
    const notifier = new SystemdNotifier({
      logger: captureLogger().logger,
      env: NOTIFY_ENV,
      sendTimeoutMs: 20,
      transport: (m) => {
        sent.push(lines([m])[0] ?? '');
        return m.ready === true ? new Promise<void>(() => {}) : Promise.resolve();
      },
    });
    // The notifier's timers never keep a process alive on their own; this test has nothing else.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      notifier.ready('stuck');
      notifier.stopping('next');
      await notifier.flush(5000);
    } finally {
      clearInterval(keepAlive);
    }
    assert.deepEqual(sent, ['READY=1 STATUS=stuck', 'STOPPING=1 STATUS=next']);
    assert.equal(notifier.stats().failed, 1);
  });
});

describe('the systemd-notify binary, through the package and directly', () => {
  let socket: NotifySocket;
  before(async () => {
    socket = await NotifySocket.start();
  });
  after(async () => {
    await socket.close();
  });

  it('delivers each message to NOTIFY_SOCKET as one datagram, in order', async () => {
    const previous = process.env['NOTIFY_SOCKET'];
    process.env['NOTIFY_SOCKET'] = socket.path;
    try {
      const notifier = new SystemdNotifier({ logger: captureLogger().logger, monotonicUsec: () => 42n });
      notifier.ready('3/3 plugs online');
      notifier.watchdog('still fine');
      notifier.reloading('reloading');
      notifier.ready('reloaded');
      notifier.stopping('stopping');
      await notifier.flush();
      assert.deepEqual(notifier.stats(), { sent: 5, failed: 0, dropped: 0, pending: 0 });
    } finally {
      if (previous === undefined) delete process.env['NOTIFY_SOCKET'];
      else process.env['NOTIFY_SOCKET'] = previous;
    }
    const received = socket.messages.map((m) =>
      m.assignments.filter((a) => !a.startsWith('MAINPID=')).sort(),
    );
    assert.deepEqual(received, [
      ['READY=1', 'STATUS=3/3 plugs online'],
      ['STATUS=still fine', 'WATCHDOG=1'],
      ['MONOTONIC_USEC=42', 'RELOADING=1', 'STATUS=reloading'],
      ['READY=1', 'STATUS=reloaded'],
      ['STATUS=stopping', 'STOPPING=1'],
    ]);
  });

  it('rejects rather than throws when the binary cannot be run', async () => {
    const previous = process.env['PATH'];
    process.env['PATH'] = '/nonexistent';
    try {
      await assert.rejects(binaryTransport({ ready: true }));
      await assert.rejects(binaryTransport({ assignments: ['WATCHDOG=1'] }));
    } finally {
      process.env['PATH'] = previous;
    }
  });
});

describe('the watchdog', () => {
  it('is asked for by WATCHDOG_USEC and pinged every half period', () => {
    assert.deepEqual(watchdogSettings({ ...NOTIFY_ENV, WATCHDOG_USEC: '30000000' }, 7), {
      periodMs: 30_000,
      pingEveryMs: 15_000,
    });
    assert.deepEqual(watchdogSettings({ ...NOTIFY_ENV, WATCHDOG_USEC: '4000000', WATCHDOG_PID: '7' }, 7), {
      periodMs: 4000,
      pingEveryMs: 2000,
    });
  });

  it('is not armed for another process, without a socket, or without a period', () => {
    assert.equal(watchdogSettings({ ...NOTIFY_ENV, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, 7), null);
    assert.equal(watchdogSettings({ WATCHDOG_USEC: '30000000' }, 7), null);
    assert.equal(watchdogSettings({ ...NOTIFY_ENV }, 7), null);
    assert.equal(watchdogSettings({ ...NOTIFY_ENV, WATCHDOG_USEC: 'soon' }, 7), null);
  });

  it('pings while the daemon makes progress and withholds the ping, saying why once, while it does not', () => {
    const log = captureLogger();
    let verdict: { ok: true } | { ok: false; reason: string } = { ok: true };
    let pings = 0;
    const dog = new Watchdog(
      { periodMs: 1000, pingEveryMs: 500 },
      { logger: log.logger, ping: () => pings++, check: () => verdict, now: () => 0 },
    );
    dog.tick();
    verdict = { ok: false, reason: 'the writer stalled: 5 readings waiting' };
    dog.tick();
    verdict = { ok: false, reason: 'the writer stalled: 6 readings waiting' };
    dog.tick();
    assert.equal(dog.withheld, 'the writer stalled: 6 readings waiting');
    verdict = { ok: true };
    dog.tick();
    assert.equal(pings, 2);
    assert.equal(dog.withheld, null);
    const said = log.lines().map((l) => `${l.level} ${l.msg}`);
    assert.deepEqual(said, [
      '50 withholding the watchdog ping: the writer stalled: 5 readings waiting; systemd restarts the service if this lasts',
      '30 progress resumed: watchdog pings resumed',
    ]);
  });

  it('still pings when the progress check itself fails', () => {
    let pings = 0;
    const dog = new Watchdog(
      { periodMs: 1000, pingEveryMs: 500 },
      {
        logger: captureLogger().logger,
        ping: () => pings++,
        check: () => {
          throw new Error('bug');
        },
      },
    );
    dog.tick();
    assert.equal(pings, 1);
  });

  it('says so when the event loop was blocked long enough to make a ping late', () => {
    const log = captureLogger();
    let now = 0;
    const dog = new Watchdog(
      { periodMs: 1000, pingEveryMs: 500 },
      { logger: log.logger, ping: () => {}, check: () => ({ ok: true }), now: () => now },
    );
    dog.tick();
    now = 500;
    dog.tick();
    now = 1400;
    dog.tick();
    assert.deepEqual(
      log.lines().map((l) => l.msg),
      ['the event loop was blocked: a watchdog ping went out late'],
    );
  });
});

describe('the scheduler as a progress signal', () => {
  it('tells when its next tick is due, and nothing once stopped', () => {
    const ticks = startIntervalTicks(60_000, { onTick: () => {}, onMissed: () => {} });
    const due = ticks.nextTickMs();
    ticks.stop();
    assert.ok(due !== null && due % 60_000 === 0 && due > Date.now() - 1 && due <= Date.now() + 60_000);
    assert.equal(ticks.nextTickMs(), null);
  });

  it('tells the next slot of a cron schedule', () => {
    const ticks = startTicks(
      { intervalMs: 1000, schedule: '0 0 * * *' },
      { onTick: () => {}, onMissed: () => {} },
      captureLogger().logger,
    );
    const due = ticks.nextTickMs();
    ticks.stop();
    assert.ok(due !== null && due > Date.now() && due <= Date.now() + 86_400_000);
    assert.equal(ticks.nextTickMs(), null);
  });
});

describe('the progress gate', () => {
  function clock(): ProgressClock & { advance(ms: number, wallJump?: number): void } {
    let mono = 1000;
    let wall = 1_700_000_000_000;
    return {
      monotonicMs: () => mono,
      wallMs: () => wall,
      advance(ms, wallJump = 0) {
        mono += ms;
        wall += ms + wallJump;
      },
    };
  }
  const limits = { schedulerGraceMs: 30_000, writerStallMs: 120_000 };
  const sample = (over: Partial<ProgressSample>, c: ProgressClock): ProgressSample => ({
    ticks: 0,
    nextTickMs: c.wallMs() + 10_000,
    writesSettled: 0,
    writesPending: 0,
    ...over,
  });

  it('sees a stopped scheduler once a due tick is later than the grace', () => {
    const c = clock();
    const gate = new ProgressGate(limits, c);
    const due = c.wallMs() + 10_000;
    assert.deepEqual(gate.check(sample({ ticks: 5, nextTickMs: due }, c)), { ok: true });
    c.advance(39_000);
    assert.deepEqual(gate.check(sample({ ticks: 5, nextTickMs: due }, c)), { ok: true });
    c.advance(2000);
    const verdict = gate.check(sample({ ticks: 5, nextTickMs: due }, c));
    assert.equal(verdict.ok, false);
    assert.match(verdict.ok ? '' : verdict.reason, /poll scheduler stopped: a tick due 31s ago has not run/);
    // The tick comes after all: fine again.
    assert.deepEqual(gate.check(sample({ ticks: 6 }, c)), { ok: true });
  });

  it('does not mistake a quiet schedule for a stall', () => {
    const c = clock();
    const gate = new ProgressGate(limits, c);
    const hourly = c.wallMs() + 3_600_000;
    gate.check(sample({ ticks: 1, nextTickMs: hourly }, c));
    c.advance(3_000_000);
    assert.deepEqual(gate.check(sample({ ticks: 1, nextTickMs: hourly }, c)), { ok: true });
  });

  it('is fooled neither way by a wall-clock jump', () => {
    const c = clock();
    const gate = new ProgressGate(limits, c);
    gate.check(sample({ ticks: 1, nextTickMs: c.wallMs() + 10_000 }, c));
    // NTP moves the clock a day ahead: the scheduler's due time is now far in the past on the wall
    // clock, but only 5 s passed. No stall.
    c.advance(5000, 86_400_000);
    assert.deepEqual(gate.check(sample({ ticks: 1, nextTickMs: c.wallMs() - 86_395_000 }, c)), { ok: true });
    // The clock goes back a day: the scheduler now claims its tick is a day away, yet it was due
    // long ago. A stall.
    const gate2 = new ProgressGate(limits, c);
    gate2.check(sample({ ticks: 1, nextTickMs: c.wallMs() + 10_000 }, c));
    c.advance(60_000, -86_400_000);
    const verdict = gate2.check(sample({ ticks: 1, nextTickMs: c.wallMs() + 86_400_000 }, c));
    assert.equal(verdict.ok, false);
  });

  it('counts failed writes as progress and a write that never finishes as a stall', () => {
    const c = clock();
    const gate = new ProgressGate(limits, c);
    // Disk full: every attempt fails, yet attempts finish. Not a stall (a restart would not help).
    for (let attempt = 1; attempt <= 20; attempt++) {
      assert.deepEqual(
        gate.check(sample({ ticks: attempt, writesSettled: attempt, writesPending: 500 }, c)),
        {
          ok: true,
        },
      );
      c.advance(60_000);
    }
    // Now the write in flight never returns.
    gate.check(sample({ ticks: 21, writesSettled: 20, writesPending: 500 }, c));
    c.advance(121_000);
    const verdict = gate.check(sample({ ticks: 22, writesSettled: 20, writesPending: 500 }, c));
    assert.equal(verdict.ok, false);
    assert.match(verdict.ok ? '' : verdict.reason, /writer stalled: 500 readings waiting/);
  });

  it('never calls an idle writer stalled', () => {
    const c = clock();
    const gate = new ProgressGate(limits, c);
    gate.check(sample({ ticks: 1, writesSettled: 3 }, c));
    c.advance(3_600_000);
    assert.deepEqual(gate.check(sample({ ticks: 2, writesSettled: 3, writesPending: 0 }, c)), { ok: true });
  });

  it('gives the writer at least as long as its retry settings make it wait', () => {
    const config = defaultConfig({});
    assert.ok(progressLimits(config).writerStallMs >= 180_000);
    const slow = structuredClone(config) as Config & { retry: Record<string, unknown> };
    slow.retry = { ...slow.retry, max_delay: 600_000 };
    assert.ok(progressLimits(slow).writerStallMs >= 1_200_000);
  });
});

function daemonStatus(over: { online?: number; devices?: number; queue?: number; written?: number } = {}) {
  return {
    devices: {
      devices: over.devices ?? 3,
      online: over.online ?? 3,
      offline: (over.devices ?? 3) - (over.online ?? 3),
      polled: 3,
      channels: 3,
      onlineChannels: 3,
    },
    discovery: {},
    poller: { ticks: 10, lastTickMs: 1_000_000, nextTickMs: 1_002_000 },
    queue: { size: over.queue ?? 12, capacity: 100_000 },
    writer: {
      written: over.written ?? 1234,
      duplicates: 0,
      invalid: 0,
      failedBatches: 0,
      inFlight: 0,
      lastCommitAtMs: 999_000,
      lastError: null,
    },
  } as unknown as DaemonStatus;
}

describe('the STATUS line', () => {
  it('names plugs online, the last poll, the queue fill and each sink', () => {
    const line = formatStatus(statusFacts(daemonStatus({ online: 2, queue: 25_000 })), [], 1_004_000);
    assert.equal(
      line,
      '2/3 plugs online; last poll 4s ago; queue 25000/100000 (25% full); sqlite ok (1234 written)',
    );
  });

  it('puts what needs attention first', () => {
    const line = formatStatus(statusFacts(daemonStatus()), ['reload rejected: x'], 1_000_000);
    assert.match(line, /^reload rejected: x; 3\/3 plugs online; last poll 0s ago/);
  });

  it('adds InfluxDB when it is configured, with what it still has to send', () => {
    const ok = { queued: 0, lagMs: 0, lastWriteAtMs: 998_000, lastError: null };
    const base = daemonStatus() as unknown as Record<string, unknown>;
    const line = formatStatus(
      statusFacts({ ...base, influx: ok } as unknown as DaemonStatus, 1_000_000),
      [],
      1_000_000,
    );
    assert.match(line, /; sqlite ok \(1234 written\); influx ok \(sent 2s ago\)$/);
    const down = {
      queued: 420,
      lagMs: 300_000,
      lastWriteAtMs: 1000,
      lastError: { message: 'x', code: 'ECONNREFUSED', atMs: 2000 },
    };
    const failing = formatStatus(
      statusFacts({ ...base, influx: down } as unknown as DaemonStatus, 1_000_000),
      [],
      1_000_000,
    );
    assert.match(failing, /influx failing \(ECONNREFUSED, 420 waiting in SQLite, behind 5m\)$/);
  });

  it('shows a failing sink with its error code', () => {
    const writer = {
      ...daemonStatus().writer,
      lastError: { message: 'disk full', code: 'SQLITE_FULL', transient: true, atMs: 999_500 },
    };
    assert.deepEqual(sqliteSink(writer), {
      name: 'sqlite',
      state: 'failing',
      detail: 'SQLITE_FULL, retrying',
    });
  });
});

describe('the systemd service', () => {
  function service() {
    const t = recordingTransport();
    const log = captureLogger();
    const svc = new SystemdService({
      logger: log.logger,
      env: NOTIFY_ENV,
      transport: t.transport,
      watchdog: null,
      now: () => 1_002_000,
    });
    const daemon = { config: defaultConfig({}), status: () => daemonStatus() };
    return { svc, t, daemon };
  }

  it('says READY=1 once, with the summary as STATUS', async () => {
    const { svc, t, daemon } = service();
    svc.ready(daemon);
    svc.ready(daemon);
    await svc.close();
    assert.deepEqual(lines(t.sent), [
      'READY=1 STATUS=3/3 plugs online; last poll 2s ago; queue 12/100000; sqlite ok (1234 written)',
    ]);
  });

  it('brackets a reload with RELOADING=1 and READY=1, also when the new config is rejected', async () => {
    const { svc, t, daemon } = service();
    svc.ready(daemon);
    svc.reloading();
    svc.reloaded({
      rejected: ['polling.interval: must be a duration', 'queue.capacity: must be at least 1'],
    });
    svc.reloading();
    svc.reloaded({ applied: ['polling.interval'], needRestart: ['storage.sqlite.path'] });
    svc.stopping('SIGTERM');
    await svc.close();
    assert.deepEqual(lines(t.sent).slice(1), [
      'RELOADING=1 MONOTONIC_USEC=<t> STATUS=reloading the configuration',
      'READY=1 STATUS=reload rejected, running on the previous configuration: polling.interval: must be a duration (+1 more, see journalctl -p err); 3/3 plugs online; last poll 2s ago; queue 12/100000; sqlite ok (1234 written)',
      'RELOADING=1 MONOTONIC_USEC=<t> STATUS=reloading the configuration',
      'READY=1 STATUS=restart needed for storage.sqlite.path; 3/3 plugs online; last poll 2s ago; queue 12/100000; sqlite ok (1234 written)',
      'STOPPING=1 STATUS=stopping (SIGTERM): draining the queue into the database',
    ]);
  });
});

describe('plain stderr lines under journald', () => {
  it('get error priority, or warning priority when they say so', () => {
    assert.equal(plainLinePriority('/etc/kasa-monitor/config.yaml: 2 problem(s):'), '<3>');
    assert.equal(plainLinePriority('  polling.interval: must be a duration'), '<3>');
    assert.equal(plainLinePriority('warning: KASA_MONITOR_POLING_INTERVAL is not a key'), '<4>');
  });

  it('are prefixed only when stderr is the journal stream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kasa-journal-'));
    const file = join(dir, 'stderr');
    const fd = openSync(file, 'w');
    try {
      const stat = fstatSync(fd, { bigint: true });
      const chunks: string[] = [];
      const out = { write: (text: string) => chunks.push(text) } as unknown as NodeJS.WritableStream;
      assert.equal(journalPrefixed(out, {}, fd), out);
      const stream = journalPrefixed(out, { JOURNAL_STREAM: `${stat.dev}:${stat.ino}` }, fd);
      assert.notEqual(stream, out);
      stream.write('config.yaml: 1 problem(s):\n  polling.int');
      stream.write('erval: bad\nwarning: x\n');
      await new Promise<void>((resolve) => stream.end(resolve));
      assert.equal(
        chunks.join(''),
        '<3>config.yaml: 1 problem(s):\n<3>  polling.interval: bad\n<4>warning: x\n',
      );
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
