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
  /** CPU seconds (user + system) the process used so far. */
  readonly cpuSeconds: number;
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
  let cpuSeconds = Number.NaN;
  try {
    // Fields 14 and 15 of /proc/PID/stat (after the parenthesised name): utime, stime in clock ticks.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    // gone meanwhile: NaN
  }
  return {
    rssMiB: round((kib('VmRSS') * 1024) / MIB, 1),
    hwmMiB: round((kib('VmHWM') * 1024) / MIB, 1),
    threads: threads === null ? Number.NaN : Number(threads[1]),
    cpuSeconds,
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

/** The variables of the unit's Environment= lines that change how Node and glibc use memory. */
const MEMORY_VARIABLES = /^(NODE_OPTIONS|NODE_ENV|MALLOC_[A-Z_]+|UV_THREADPOOL_SIZE)$/;

/**
 * What systemd/kasa-monitor.service sets in the daemon's environment that changes its memory, read
 * from the unit file itself, so the daemon is measured as it is deployed (e.g. MALLOC_ARENA_MAX=2:
 * glibc keeps two malloc arenas instead of up to eight per core).
 */
export function unitEnvironment(
  unitPath: string = fileURLToPath(new URL('../../../systemd/kasa-monitor.service', import.meta.url)),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(unitPath, 'utf8').split('\n')) {
    const match = /^Environment=("?)([A-Z_][A-Z0-9_]*)=(.*)\1\s*$/.exec(line.trim());
    if (match !== null && MEMORY_VARIABLES.test(match[2] ?? '')) env[match[2] ?? ''] = match[3] ?? '';
  }
  return env;
}

export const UNIT_ENV: Readonly<Record<string, string>> = unitEnvironment();

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
  /** Extra node options before the script (V8 flags), as an experiment; default none. */
  readonly nodeArgs?: readonly string[];
  /** Extra environment, as an experiment; default none. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface DaemonRssResult {
  readonly durationS: number;
  readonly pid: number;
  /** VmRSS when `durationS` had passed, MiB. */
  readonly rssMiB: number;
  /** VmHWM at that time (peak since start), MiB. */
  readonly hwmMiB: number;
  /** CPU seconds the daemon used until then (start-up included). */
  readonly cpuSeconds: number;
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
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), bin, 'run', '-c', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...cleanEnv(), ...options.env },
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
      cpuSeconds: last.cpuSeconds,
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
  readonly nodeArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
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
    return await measureDaemonRss({
      port: options.port ?? 23200,
      durationS: options.durationS,
      ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
      env: options.env ?? UNIT_ENV,
    });
  } finally {
    await fleet.stop();
  }
}

/** VmRSS of a process sampled every `everyS` for `durationS`; throws when it exits meanwhile. */
async function sampleProcess(
  child: ChildProcess,
  durationS: number,
  everyS: number,
): Promise<{ last: ProcMemory; samples: number[] }> {
  const pid = child.pid;
  if (pid === undefined) throw new Error('process did not start');
  const samples: number[] = [];
  const end = Date.now() + durationS * 1000;
  let last: ProcMemory | null = null;
  while (Date.now() < end) {
    await sleep(Math.min(everyS * 1000, end - Date.now()));
    last = readProcMemory(pid);
    if (last === null || child.exitCode !== null)
      throw new Error(`process ${pid} exited early (${child.exitCode})`);
    samples.push(last.rssMiB);
  }
  if (last === null) throw new Error('no RSS sample');
  return { last, samples };
}

export interface SideBySideRssResult {
  readonly channels: number;
  readonly devices: number;
  readonly durationS: number;
  readonly daemon: DaemonRssResult;
  /** The bare tplink-smarthome-api loop over the same channels, measured at the same time. */
  readonly bare: {
    readonly rssMiB: number;
    readonly hwmMiB: number;
    readonly cpuSeconds: number;
    readonly samples: readonly number[];
  };
  /** daemon RSS / bare loop RSS. */
  readonly ratio: number;
}

/**
 * The daemon process and a bare tplink-smarthome-api polling loop (bare-loop-child.ts), both at 1 Hz
 * over the same simulated channels and at the same time (so a loaded machine weighs on both alike),
 * each VmRSS read after `durationS`. 320 channels: 80 plugs and 40 six-outlet strips.
 */
export async function benchSideBySideRss(options: {
  readonly durationS: number;
  readonly port?: number;
  readonly firstAddress?: string;
  readonly count?: number;
  readonly stripEvery?: number;
  /** The daemon's environment (default: the unit's, UNIT_ENV), for experiments. */
  readonly env?: Readonly<Record<string, string>>;
}): Promise<SideBySideRssResult> {
  const port = options.port ?? 23300;
  const fleet = await startChildFleet({
    port,
    count: options.count ?? 120,
    stripEvery: options.stripEvery ?? 3,
    firstAddress: options.firstAddress ?? '127.0.57.1',
  });
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-bare-'));
  const targetsPath = join(dir, 'targets.json');
  writeFileSync(targetsPath, JSON.stringify(fleet.targets));
  const script = fileURLToPath(new URL('./bare-loop-child.js', import.meta.url));
  const bare = spawn(process.execPath, [script, targetsPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      bare.once('exit', (code) => reject(new Error(`bare loop exited early (${code})`)));
      bare.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
    });
    const [daemon, bareMemory] = await Promise.all([
      measureDaemonRss({ port, durationS: options.durationS, env: options.env ?? UNIT_ENV }),
      sampleProcess(bare, options.durationS, 2),
    ]);
    return {
      channels: fleet.channels,
      devices: fleet.devices,
      durationS: options.durationS,
      daemon,
      bare: {
        rssMiB: bareMemory.last.rssMiB,
        hwmMiB: bareMemory.last.hwmMiB,
        cpuSeconds: bareMemory.last.cpuSeconds,
        samples: bareMemory.samples,
      },
      ratio: round(daemon.rssMiB / bareMemory.last.rssMiB, 3),
    };
  } finally {
    await terminate(bare, 5_000);
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Least-squares slope of evenly spaced samples, in units per sample. */
export function slopePerSample(samples: readonly number[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = samples.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  samples.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

export interface SoakResult {
  readonly channels: number;
  readonly minutes: number;
  readonly daemon: DaemonRssResult;
  /** RSS after the first tenth of the run (start-up over), MiB. */
  readonly afterWarmupMiB: number;
  /**
   * Trend over the second half of the run, MiB per 10 minutes (flat: close to 0): the slope of the
   * per-minute medians, so a short spike (a reader worker started for a health check, a WAL
   * checkpoint) does not read as growth.
   */
  readonly slopeMiBPer10Min: number;
  readonly sampleEveryS: number;
}

/**
 * `npm run bench -- --soak`: the daemon process against 1,000 channels (500 devices, every fifth a
 * six-outlet strip) at 1 Hz for `minutes` (default 30), VmRSS sampled every 10 s; reports the end
 * figure and the trend over the second half. Not part of CI.
 */
export async function benchSoak(options: {
  readonly minutes: number;
  readonly port?: number;
  readonly firstAddress?: string;
  /** The daemon's environment (default: the unit's, UNIT_ENV), for experiments. */
  readonly env?: Readonly<Record<string, string>>;
}): Promise<SoakResult> {
  const port = options.port ?? 23400;
  const sampleEveryS = options.minutes >= 10 ? 10 : 2;
  const fleet = await startChildFleet({
    port,
    count: 500,
    stripEvery: 5,
    firstAddress: options.firstAddress ?? '127.0.60.1',
  });
  try {
    const daemon = await measureDaemonRss({
      port,
      durationS: Math.round(options.minutes * 60),
      sampleEveryS,
      env: options.env ?? UNIT_ENV,
    });
    const s = daemon.samples;
    const perWindow = Math.max(1, Math.round(60 / sampleEveryS));
    const medians: number[] = [];
    for (let i = 0; i + perWindow <= s.length; i += perWindow) {
      const window = s.slice(i, i + perWindow).sort((a, b) => a - b);
      medians.push(window[Math.floor(window.length / 2)] ?? 0);
    }
    const secondHalf = medians.slice(Math.floor(medians.length / 2));
    return {
      channels: fleet.channels,
      minutes: options.minutes,
      daemon,
      afterWarmupMiB: s[Math.floor(s.length / 10)] ?? daemon.rssMiB,
      slopeMiBPer10Min: round(slopePerSample(secondHalf) * (600 / (perWindow * sampleEveryS)), 2),
      sampleEveryS,
    };
  } finally {
    await fleet.stop();
  }
}
