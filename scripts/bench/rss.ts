/**
 * Memory of the daemon as a separate process: `node dist/src/cli/bin.js run -c <temp config>` against
 * simulated plugs on loopback, VmRSS read from /proc/PID/status; plus an idle node process measured
 * the same way as the baseline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round, startChildFleet } from './fleet.js';

const MIB = 1024 * 1024;

export interface ProcMemory {
  /** Resident set size now, MiB. */
  readonly rssMiB: number;
  /** Peak resident set size (VmHWM), MiB. */
  readonly hwmMiB: number;
  /** Threads of the process now (what systemd's TasksMax= counts, with any child processes). */
  readonly threads: number;
}

/** VmRSS and VmHWM of a process, or null when it is gone. */
export function readProcMemory(pid: number): ProcMemory | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return match === null ? Number.NaN : Number(match[1]);
  };
  const threads = /^Threads:\s+(\d+)/m.exec(text);
  return {
    rssMiB: round((kib('VmRSS') * 1024) / MIB, 1),
    hwmMiB: round((kib('VmHWM') * 1024) / MIB, 1),
    threads: threads === null ? Number.NaN : Number(threads[1]),
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Ends a process this module started (by its own handle): SIGTERM, then SIGKILL after `graceMs`. */
async function terminate(child: ChildProcess, graceMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await exited(child);
  } finally {
    clearTimeout(timer);
  }
}

/** RSS of a node process that only keeps a timer alive: what node itself costs. */
export async function idleNodeRss(settleMs = 2_000): Promise<ProcMemory> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await sleep(settleMs);
    const pid = child.pid;
    const memory = pid === undefined ? null : readProcMemory(pid);
    if (memory === null) throw new Error('idle node process is gone');
    return memory;
  } finally {
    await terminate(child, 2_000);
  }
}

/** The environment for the daemon: nothing that would override the config file or reach systemd. */
function cleanEnv(): NodeJS.ProcessEnv {
  const legacy = new Set([
    'DATABASE_PATH',
    'DATABASE_URL',
    'POOL_SIZE',
    'POOL_MAX_OVERFLOW',
    'POOL_TIMEOUT',
    'POOL_RECYCLE',
    'RETRY_MAX_ATTEMPTS',
    'RETRY_BASE_DELAY',
    'RETRY_MAX_DELAY',
    'NOTIFY_SOCKET',
    'WATCHDOG_USEC',
    'JOURNAL_STREAM',
    'STATE_DIRECTORY',
    'CREDENTIALS_DIRECTORY',
  ]);
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('KASA_MONITOR_') || legacy.has(name)) continue;
    env[name] = value;
  }
  return env;
}

/** The config file of a benchmark daemon: loopback broadcast only, 1 Hz, a temp database. */
export function benchConfigYaml(port: number, databasePath: string): string {
  return `discovery:
  broadcast: 127.255.255.255
  port: ${port}
polling:
  interval: 1s
  timeout: 900ms
storage:
  sqlite:
    path: ${JSON.stringify(databasePath)}
http:
  listen: 127.0.0.1:0
log:
  level: warn
`;
}

export interface DaemonRssOptions {
  /** Simulator port the daemon discovers and polls on. */
  readonly port: number;
  /** How long the daemon runs before the figure is read. */
  readonly durationS: number;
  /** How often VmRSS is sampled (the series is reported). */
  readonly sampleEveryS?: number;
}

export interface DaemonRssResult {
  readonly durationS: number;
  readonly pid: number;
  /** VmRSS when `durationS` had passed, MiB. */
  readonly rssMiB: number;
  /** VmHWM at that time (peak since start), MiB. */
  readonly hwmMiB: number;
  /** VmRSS samples, MiB. */
  readonly samples: readonly number[];
  /** The most threads seen in any sample (TasksMax= in the unit is sized from it). */
  readonly maxThreads: number;
  /** What the daemon stored (read back with `kasa-monitor export` after it stopped; -1: unreadable). */
  readonly channelsStored: number;
  readonly readingsStored: number;
  /** readingsStored / channelsStored / durationS: ~1 at 1 Hz once every plug is found. */
  readonly readingsPerChannelSecond: number;
  readonly exitCode: number | null;
  /** Lines the daemon logged (level warn and above). */
  readonly logLines: readonly string[];
}

/**
 * Counts what the database holds with `kasa-monitor export` (the same build as the daemon, so a schema
 * change made meanwhile cannot make the bench misread it). -1 when it cannot be read.
 */
async function countStored(bin: string, configPath: string, cwd: string) {
  const child = spawn(process.execPath, [bin, 'export', '-c', configPath, '--format', 'csv'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: cleanEnv(),
    cwd,
  });
  const devices = new Set<string>();
  let lines = 0;
  let rest = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      lines++;
      if (lines > 1) devices.add(line.split(',')[1] ?? '');
    }
  });
  const code = await exited(child);
  if (code !== 0) return { channels: -1, readings: -1 };
  return { channels: devices.size, readings: Math.max(0, lines - 1) };
}

/**
 * Starts `kasa-monitor run` as its own process against plugs already listening on `port`, lets it run
 * for `durationS` at 1 Hz, reads its RSS, stops it with SIGTERM and reads back what it stored.
 */
export async function measureDaemonRss(options: DaemonRssOptions): Promise<DaemonRssResult> {
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-rss-'));
  const databasePath = join(dir, 'kasa-monitor.db');
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, benchConfigYaml(options.port, databasePath));
  const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'run', '-c', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: cleanEnv(),
    cwd: dir,
  });
  const logLines: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() !== '' && logLines.length < 50) logLines.push(line);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error('could not start the daemon process');
    const samples: number[] = [];
    let maxThreads = 0;
    const every = (options.sampleEveryS ?? 2) * 1000;
    const started = Date.now();
    const end = started + options.durationS * 1000;
    let last: ProcMemory | null = null;
    while (Date.now() < end) {
      await sleep(Math.min(every, end - Date.now()));
      last = readProcMemory(pid);
      if (last === null || child.exitCode !== null) {
        throw new Error(`the daemon exited early (${child.exitCode}): ${logLines.slice(-5).join(' | ')}`);
      }
      samples.push(last.rssMiB);
      maxThreads = Math.max(maxThreads, last.threads);
    }
    if (last === null) throw new Error('no RSS sample');
    const exitCode = await terminate(child, 20_000);
    const stored = await countStored(bin, configPath, dir);
    const readingsStored = stored.readings;
    const channelsStored = stored.channels;
    return {
      durationS: options.durationS,
      pid,
      rssMiB: last.rssMiB,
      hwmMiB: last.hwmMiB,
      samples,
      maxThreads,
      channelsStored,
      readingsStored,
      readingsPerChannelSecond:
        channelsStored <= 0 ? 0 : round(readingsStored / channelsStored / options.durationS, 3),
      exitCode,
      logLines,
    };
  } finally {
    await terminate(child, 5_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface SmallFleetRssOptions {
  /** Plain plugs (no strips), default 20. */
  readonly plugs?: number;
  readonly port?: number;
  readonly firstAddress?: string;
  readonly durationS: number;
}

/** The daemon process with a small fleet (its own simulator child), after `durationS`. */
export async function benchSmallFleetRss(options: SmallFleetRssOptions): Promise<DaemonRssResult> {
  const fleet = await startChildFleet({
    port: options.port ?? 23200,
    count: options.plugs ?? 20,
    stripEvery: 0,
    firstAddress: options.firstAddress ?? '127.0.55.1',
  });
  try {
    return await measureDaemonRss({ port: options.port ?? 23200, durationS: options.durationS });
  } finally {
    await fleet.stop();
  }
}
