import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { type Config, loadConfig } from '../src/config/index.js';
import { type Reloaded, runUntilStopped, type ServedDaemon } from '../src/daemon/signals.js';
import { createSilentLogger } from '../src/log/logger.js';
import type { ReloadOutcome } from '../src/systemd/service.js';

/** Resolves after pending callbacks (the process loop's awaits) have run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A daemon that records what the process loop asks of it. */
function fakeDaemon(config: Config): ServedDaemon & { readonly reloaded: Config[]; stops: number } {
  const reloaded: Config[] = [];
  return {
    config,
    reloaded,
    stops: 0,
    status: () => null,
    start: async () => {},
    async stop() {
      this.stops++;
    },
    reload: async (next) => {
      reloaded.push(next);
      return { applied: ['polling.interval'], needRestart: [] };
    },
  };
}

/** The systemd notices, as a list of words. */
function fakeSystemd() {
  const notices: string[] = [];
  return {
    notices,
    ready: () => notices.push('ready'),
    reloading: () => notices.push('reloading'),
    reloaded: (outcome: ReloadOutcome) =>
      notices.push('rejected' in outcome ? `rejected ${outcome.rejected.join('; ')}` : 'reloaded'),
    stopping: (reason: string) => notices.push(`stopping ${reason}`),
    finalStatus: (text: string) => notices.push(`final ${text}`),
    close: async () => {},
  };
}

describe('the daemon process', () => {
  const config = loadConfig({ env: {}, systemConfig: false }).config;

  it('coalesces SIGHUPs that arrive while a config is loading into one more reload, read after them', async () => {
    const daemon = fakeDaemon(config);
    const systemd = fakeSystemd();
    const loads: ReturnType<typeof deferred<Reloaded>>[] = [];
    const started = deferred<void>();
    const run = runUntilStopped({
      daemon,
      systemd,
      logger: createSilentLogger(),
      loadConfig: () => {
        const load = deferred<Reloaded>();
        loads.push(load);
        return load.promise;
      },
      onStarted: () => started.resolve(),
    });
    await started.promise;
    process.emit('SIGHUP', 'SIGHUP');
    process.emit('SIGHUP', 'SIGHUP');
    process.emit('SIGHUP', 'SIGHUP');
    await settle();
    assert.equal(loads.length, 1, 'one load at a time');
    const first = { ...config, time_zone: 'Europe/Berlin' };
    loads[0]?.resolve({ config: first, warnings: [] });
    await settle();
    assert.equal(loads.length, 2, 'the signals that came during the load ask for one more');
    const second = { ...config, time_zone: 'Europe/Paris' };
    loads[1]?.resolve({ config: second, warnings: [] });
    await settle();
    process.emit('SIGTERM', 'SIGTERM');
    assert.equal(await run, 0);
    assert.deepEqual(daemon.reloaded, [first, second]);
    assert.equal(loads.length, 2);
    assert.deepEqual(systemd.notices, [
      'ready',
      'reloading',
      'reloaded',
      'reloading',
      'reloaded',
      'stopping SIGTERM',
    ]);
    assert.equal(daemon.stops, 1);
  });

  it('keeps the running configuration when the new one is rejected, and tells systemd why', async () => {
    const daemon = fakeDaemon(config);
    const systemd = fakeSystemd();
    const started = deferred<void>();
    const run = runUntilStopped({
      daemon,
      systemd,
      logger: createSilentLogger(),
      loadConfig: () =>
        Promise.reject(new ConfigError([{ path: 'polling.interval', message: 'must be at least 100ms' }])),
      onStarted: () => started.resolve(),
    });
    await started.promise;
    process.emit('SIGHUP', 'SIGHUP');
    await settle();
    await settle();
    process.emit('SIGTERM', 'SIGTERM');
    assert.equal(await run, 0);
    assert.deepEqual(daemon.reloaded, []);
    assert.deepEqual(systemd.notices, [
      'ready',
      'reloading',
      'rejected polling.interval: must be at least 100ms',
      'stopping SIGTERM',
    ]);
  });

  it('removes its signal handlers when it returns', async () => {
    const before = process.listenerCount('SIGHUP');
    const daemon = fakeDaemon(config);
    const started = deferred<void>();
    const run = runUntilStopped({
      daemon,
      systemd: fakeSystemd(),
      logger: createSilentLogger(),
      loadConfig: () => ({ config, warnings: [] }),
      onStarted: () => started.resolve(),
    });
    await started.promise;
    assert.equal(process.listenerCount('SIGHUP'), before + 1);
    process.emit('SIGTERM', 'SIGTERM');
    await run;
    assert.equal(process.listenerCount('SIGHUP'), before);
  });
});
