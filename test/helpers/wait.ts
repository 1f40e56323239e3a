/**
 * Waiting in tests: on the event loop, never on a wall-clock budget. Where a deadline appears it only
 * turns a hang into a clear failure message; it is not a performance assertion.
 */

/**
 * Waits until `predicate` holds, checking every `everyMs` (10 ms unless given; a predicate that
 * scrapes a server or runs a process wants a slower pace). The predicate may be asynchronous; `what`
 * may be a function, to describe the state at the time of the failure (a child's stderr, say).
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string | (() => string),
  deadlineMs = 20_000,
  everyMs = 10,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/** Resolves after `ms` milliseconds of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lets pending microtasks, promise chains and immediates run for `rounds` turns of the loop (no timers). */
export async function settle(rounds = 1): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}
