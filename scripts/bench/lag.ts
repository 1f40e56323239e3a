/**
 * Event-loop lag of a running Daemon (20 simulated plugs in a child process, polled every second)
 * while (a) a client exports a year of readings of 20 channels through GET /api/readings (read and
 * formatted by the reader pool's workers), and (b) another process holds the database's write lock
 * for 10 s. Target: p99 < 50 ms for both. Also the export's throughput (rows/s, as the client
 * received them) against a raw better-sqlite3 read of the same rows, in the same run.
 *
 * Run on its own: `node dist/scripts/bench/lag.js [--quick]`; prints the figures as JSON.
 * Holding a lock (used by the benchmark itself): `node dist/scripts/bench/lag.js --hold-lock DB MS`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { Daemon } from '../../src/main.js';
import { EventLoopLag, type LagSample } from '../../src/supervisor/index.js';
import { createSyntheticDatabase, holdWriteLock } from '../../test/helpers/sqlite-files.js';
import { round, startChildFleet } from './fleet.js';
import { rawReadAll } from './sqlite-baselines.js';

export interface LagBenchOptions {
  /** Days of readings per channel (default 365). */
  readonly days?: number;
  /** Channels exported (default 20). */
  readonly channels?: number;
  /** Time between two stored readings of a channel (default 60 s). */
  readonly intervalMs?: number;
  /** How long the other process holds the write lock (default 10 s). */
  readonly lockMs?: number;
  /** Live simulated plugs the daemon polls meanwhile (default 20). */
  readonly plugs?: number;
  readonly progress?: (message: string) => void;
}

export interface LagFigures {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
}

export interface LagBenchResult {
  readonly rows: number;
  readonly databaseBytes: number;
  readonly generateMs: number;
  /** Lag with the daemon just polling, for comparison. */
  readonly idle: LagFigures;
  readonly export: LagFigures & {
    readonly rows: number;
    readonly bytes: number;
    readonly seconds: number;
    readonly rowsPerSec: number;
  };
  readonly raw: { readonly rowsPerSec: number; readonly seconds: number };
  /** export rows/s / raw rows/s. */
  readonly exportRatio: number;
  readonly lock: LagFigures & {
    readonly seconds: number;
    /** Batch writes that failed while the lock was held (proof that it was). */
    readonly failedWrites: number;
    /** Readings written in the lock window + 5 s after: the writer caught up. */
    readonly writtenAfter: number;
  };
  readonly poolMode: string;
}

const LAG_RESOLUTION_MS = 10;
const PORT = 24900;
const FIRST_ADDRESS = '127.0.69.1';

function figures(sample: LagSample): LagFigures {
  return { p50Ms: sample.p50Ms, p99Ms: sample.p99Ms, maxMs: sample.maxMs, samples: sample.samples };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A client in its own process: streams the URL, counts bytes and lines, reports when done. */
const CLIENT = `
const started = performance.now();
const response = await fetch(process.argv[1]);
if (!response.ok) { console.log(JSON.stringify({ error: response.status + ' ' + (await response.text()) })); process.exit(1); }
let bytes = 0, lines = 0;
for await (const chunk of response.body) {
  bytes += chunk.byteLength;
  for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
}
console.log(JSON.stringify({ bytes, lines, ms: performance.now() - started }));
`;

async function runClient(url: string): Promise<{ bytes: number; lines: number; ms: number }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const result = JSON.parse(out.trim() || '{}') as {
    bytes: number;
    lines: number;
    ms: number;
    error?: string;
  };
  if (code !== 0 || result.error !== undefined)
    throw new Error(`export client failed: ${result.error ?? code}`);
  return result;
}

async function holdLockElsewhere(path: string, ms: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--hold-lock', path, String(ms)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const first = await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, 'data').then(([data]) => String(data)),
    once(child, 'exit').then(([code]) => `exited with code ${code}`),
  ]);
  if (!first.startsWith('locked')) throw new Error(`lock holder: ${first}`);
  return child;
}

export async function benchLag(options: LagBenchOptions = {}): Promise<LagBenchResult> {
  const days = options.days ?? 365;
  const channels = options.channels ?? 20;
  const intervalMs = options.intervalMs ?? 60_000;
  const lockMs = options.lockMs ?? 10_000;
  const plugs = options.plugs ?? 20;
  const progress = options.progress ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-lag-'));
  const path = join(dir, 'kasa.db');
  const startMs = Date.UTC(2025, 0, 1);
  const perChannel = Math.floor((days * 86_400_000) / intervalMs);
  try {
    progress(`lag: generating ${channels} channels x ${perChannel.toLocaleString('en')} readings`);
    const t0 = performance.now();
    const rows = createSyntheticDatabase(
      {
        path,
        journalMode: 'WAL',
        synchronous: 'NORMAL',
        cacheSize: -64_000,
        tempStore: 'MEMORY',
        busyTimeoutMs: 100,
      },
      {
        channels: Array.from({ length: channels }, (_, i) => ({
          id: `BE4C${i.toString(16).toUpperCase().padStart(36, '0')}`,
          alias: `bench ${i + 1}`,
        })),
        startMs,
        perChannel,
        intervalMs,
      },
    );
    const generateMs = performance.now() - t0;
    const databaseBytes = statSync(path).size;

    progress('lag: raw better-sqlite3 read of every row (baseline)');
    const raw = rawReadAll(path);
    if (raw.rows !== rows) throw new Error(`raw read saw ${raw.rows} of ${rows} rows`);

    progress(`lag: starting the daemon with ${plugs} simulated plugs`);
    const fleet = await startChildFleet({
      port: PORT,
      count: plugs,
      stripEvery: 0,
      firstAddress: FIRST_ADDRESS,
    });
    const { config } = loadConfig({
      env: {},
      defaultFile: join(dir, 'absent.yaml'),
      overrides: {
        'discovery.broadcast': ['127.255.255.255'],
        'discovery.port': String(PORT),
        'discovery.interval': '30s',
        'polling.interval': '1s',
        'polling.timeout': '500ms',
        'storage.sqlite.path': path,
        'http.listen': '127.0.0.1:0',
        'health.interval': '5s',
      },
    });
    const daemon = new Daemon(config, createSilentLogger(), { onFatal: () => undefined });
    const lag = new EventLoopLag(LAG_RESOLUTION_MS);
    try {
      await daemon.start();
      const base = `http://127.0.0.1:${daemon.httpAddress?.port}`;
      const deadline = Date.now() + 30_000;
      while ((daemon.status()?.writer.written ?? 0) < plugs * 3) {
        if (Date.now() > deadline) throw new Error('the daemon did not start writing');
        await sleep(100);
      }
      // Let start-up work (quick_check of the big file in the workers) settle.
      await (await fetch(`${base}/health`)).arrayBuffer();
      lag.sample();
      await sleep(3000);
      const idle = figures(lag.sample());

      progress(`lag: exporting ${rows.toLocaleString('en')} readings through GET /api/readings`);
      const from = new Date(startMs).toISOString();
      const to = new Date(startMs + perChannel * intervalMs).toISOString();
      lag.sample();
      const client = await runClient(`${base}/api/readings?format=csv&from=${from}&to=${to}`);
      const exportLag = figures(lag.sample());
      const exported = client.lines - 1;
      if (exported !== rows) throw new Error(`the export sent ${exported} of ${rows} rows`);

      progress(`lag: another process holds the write lock for ${lockMs / 1000} s`);
      const failedBefore = daemon.status()?.writer.failedBatches ?? 0;
      lag.sample();
      const lockStarted = performance.now();
      const holder = await holdLockElsewhere(path, lockMs);
      await once(holder, 'exit');
      const lockSeconds = (performance.now() - lockStarted) / 1000;
      const lockLag = figures(lag.sample());
      const failedWrites = (daemon.status()?.writer.failedBatches ?? 0) - failedBefore;
      const writtenAtRelease = daemon.status()?.writer.written ?? 0;
      await sleep(5000);
      const writtenAfter = (daemon.status()?.writer.written ?? 0) - writtenAtRelease;
      const poolMode = daemon.health()?.database.readers ?? 'unknown';

      const exportSeconds = client.ms / 1000;
      const exportRowsPerSec = Math.round(exported / exportSeconds);
      const rawRowsPerSec = Math.round((raw.rows * 1000) / raw.elapsedMs);
      return {
        rows,
        databaseBytes,
        generateMs: Math.round(generateMs),
        idle,
        export: {
          ...exportLag,
          rows: exported,
          bytes: client.bytes,
          seconds: round(exportSeconds, 1),
          rowsPerSec: exportRowsPerSec,
        },
        raw: { rowsPerSec: rawRowsPerSec, seconds: round(raw.elapsedMs / 1000, 1) },
        exportRatio: round(exportRowsPerSec / rawRowsPerSec, 3),
        lock: { ...lockLag, seconds: round(lockSeconds, 1), failedWrites, writtenAfter },
        poolMode,
      };
    } finally {
      lag.stop();
      await daemon.stop();
      await fleet.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function holdLockMain(path: string, ms: number): Promise<void> {
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
  process.stdout.write('locked\n');
  const held = lock;
  setTimeout(() => {
    held.release();
    process.exit(0);
  }, ms);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  if (args[0] === '--hold-lock') {
    void holdLockMain(args[1] ?? '', Number(args[2] ?? 10_000));
  } else {
    const quick = args.includes('--quick');
    benchLag({ ...(quick ? { days: 30 } : {}), progress: (m) => process.stderr.write(`${m}\n`) }).then(
      (result) => console.log(JSON.stringify(result, null, 2)),
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
  }
}
