import { createRequire } from 'node:module';

/**
 * `require` for the CommonJS packages the daemon loads (better-sqlite3, pino, cockatiel, prom-client,
 * tplink-smarthome-crypto, systemd-notify); their types still come from `import type`. An ES
 * `import` of a CommonJS package makes Node parse it with its CommonJS export lexer, and that costs
 * memory for as long as the process runs: importing these six took 18.5 MiB of RSS, requiring them
 * 12.1 MiB (node 20, `process.memoryUsage().rss` in a fresh process, each way twice). It is the same
 * module instance an `import` would give (Node loads a package's `main` either way), so classes and
 * `instanceof` agree with code that imports the package.
 */
export const requireCommonJs = createRequire(import.meta.url);
