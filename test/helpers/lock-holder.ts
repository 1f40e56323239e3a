/**
 * Holds the write lock of a SQLite database from another process: `node lock-holder.js DB [MS]`.
 * Prints `locked` once it holds it; releases after MS milliseconds (or on SIGTERM / when stdin
 * closes when MS is absent) and prints `released`.
 */
import { holdWriteLock } from './sqlite-files.js';
import { sleep } from './wait.js';

const [path, ms] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: lock-holder.js DB [MS]');
// The daemon's writer may be committing at this very moment: try until the lock is ours.
let lock: ReturnType<typeof holdWriteLock> | null = null;
for (let attempt = 0; lock === null; attempt++) {
  try {
    lock = holdWriteLock(path);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || attempt > 1000) throw error;
    await sleep(2);
  }
}
const held = lock;
process.stdout.write('locked\n');
const release = () => {
  held.release();
  process.stdout.write('released\n');
  process.exit(0);
};
process.on('SIGTERM', release);
if (ms === undefined) {
  process.stdin.resume();
  process.stdin.on('end', release);
} else {
  setTimeout(release, Number(ms));
}
