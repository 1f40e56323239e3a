import type { Logger } from '../log/logger.js';

/**
 * TEST ONLY. `KASA_MONITOR_TEST_WEDGE_AFTER_MS=N` blocks the event loop for good N ms after start-up,
 * so the real-systemd test can watch the watchdog kill and restart a hung daemon. It is not a config
 * key and has no use outside that test.
 */
export const TEST_WEDGE_ENV = 'KASA_MONITOR_TEST_WEDGE_AFTER_MS';

/** Arms the wedge when the switch is set; returns a function that disarms it (or null). */
export function armTestWedge(env: NodeJS.ProcessEnv, logger: Logger): (() => void) | null {
  const value = env[TEST_WEDGE_ENV];
  if (value === undefined || value === '') return null;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 0) {
    logger.warn({ [TEST_WEDGE_ENV]: value }, 'test switch ignored: expected a whole number of milliseconds');
    return null;
  }
  logger.warn({ afterMs: ms }, `test switch ${TEST_WEDGE_ENV} set: the event loop will be wedged`);
  const timer = setTimeout(() => {
    logger.error('test switch: wedging the event loop now (only the systemd watchdog ends this)');
    // Blocks this thread without spinning: no timer, signal handler or I/O callback runs again.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }, ms);
  timer.unref();
  return () => clearTimeout(timer);
}
