/**
 * A preload for tests that need a hung daemon: `node --import=<dist>/test/helpers/wedge.js`, or
 * NODE_OPTIONS=--import=… in a unit's environment. On SIGUSR2 it blocks the main thread's event loop
 * for good, so no timer, signal handler or I/O callback runs again: the real-systemd test watches
 * the watchdog kill and restart such a daemon. A signal rather than a delay, so the test wedges the
 * daemon exactly when it is up (READY=1 sent), whatever the machine's speed.
 *
 * Node built-ins only: the file is loaded from the repository's build inside the test container.
 */
import { isMainThread } from 'node:worker_threads';

export const WEDGE_SIGNAL = 'SIGUSR2';

/** The line it writes to stderr (the journal, under systemd) just before wedging. */
export const WEDGE_MESSAGE = 'test preload: wedging the event loop now (only the systemd watchdog ends this)';

if (isMainThread) {
  process.on(WEDGE_SIGNAL, () => {
    process.stderr.write(`${WEDGE_MESSAGE}\n`);
    // Blocks this thread without spinning.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  });
}
