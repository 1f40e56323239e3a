/**
 * A real VictoriaMetrics (Debian package `victoria-metrics`) for tests and the benchmark: started on
 * a free loopback port with its own temporary -storageDataPath, stopped and started again on the same
 * port and data (an outage), and queried through /api/v1/export (series `kasa_energy_<field>`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { sleep } from './wait.js';

export const VICTORIA_BINARY = 'victoria-metrics';

/** Whether the binary is installed (tests skip with a clear reason when it is not). */
export function victoriaAvailable(): boolean {
  try {
    execFileSync(VICTORIA_BINARY, ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The `skip` option of a test that needs VictoriaMetrics: false (run it) unless SKIP_VICTORIA_TESTS=1.
 * A missing binary is not a reason to skip silently: the test fails and says how to install it.
 */
export function victoriaSkip(): string | false {
  return process.env['SKIP_VICTORIA_TESTS'] === '1' ? 'SKIP_VICTORIA_TESTS=1' : false;
}

export interface ExportedSeries {
  readonly metric: Readonly<Record<string, string>>;
  readonly values: readonly number[];
  readonly timestamps: readonly number[];
}

export interface Victoria {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly running: boolean;
  /** Stops it (SIGTERM, as an outage) and waits for the process to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once /health answers OK. */
  start(): Promise<void>;
  /** Every sample of the series matching `match` (default: every kasa_energy_* series). */
  exportSeries(match?: string): Promise<ExportedSeries[]>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

export interface StartVictoriaOptions {
  /** Extra command-line flags, e.g. ['-dedup.minScrapeInterval=1ms']. */
  readonly flags?: readonly string[];
}

const ALL_KASA = '{__name__=~"kasa_energy_.*"}';

export async function startVictoria(options: StartVictoriaOptions = {}): Promise<Victoria> {
  if (!victoriaAvailable()) {
    throw new Error(
      `${VICTORIA_BINARY} is not installed: apt-get install -y victoria-metrics (or set SKIP_VICTORIA_TESTS=1)`,
    );
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'kasa-victoria-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';

  const start = async (): Promise<void> => {
    if (child !== null) return;
    stderr = '';
    const proc = spawn(
      VICTORIA_BINARY,
      [
        `-storageDataPath=${dataDir}`,
        `-httpListenAddr=127.0.0.1:${port}`,
        '-loggerLevel=ERROR',
        // Queries see samples as soon as they are flushed (force_flush), not 30 s later.
        '-search.latencyOffset=0s',
        ...(options.flags ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    void exited.then(() => {
      if (child === proc) child = null;
    });
    for (let i = 0; i < 1000; i++) {
      if (child !== proc) throw new Error(`victoria-metrics exited at start: ${stderr}`);
      try {
        const response = await fetch(`${url}/health`);
        if (response.ok && (await response.text()).trim() === 'OK') return;
      } catch {
        // not listening yet
      }
      await sleep(20);
    }
    throw new Error(`victoria-metrics did not become healthy: ${stderr}`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    proc.kill('SIGTERM');
    await exited;
    child = null;
  };

  await start();
  return {
    url,
    port,
    dataDir,
    get running() {
      return child !== null;
    },
    stop,
    start,
    async exportSeries(match = ALL_KASA) {
      await fetch(`${url}/internal/force_flush`);
      const response = await fetch(`${url}/api/v1/export`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ 'match[]': match }).toString(),
      });
      if (!response.ok) throw new Error(`export failed: ${response.status} ${await response.text()}`);
      const text = await response.text();
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as ExportedSeries);
    },
    async close() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Samples per device (label `device_id`) of one field's series; duplicates counted as VictoriaMetrics keeps them. */
export async function samplesPerDevice(victoria: Victoria, field = 'power_w'): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const series of await victoria.exportSeries(`{__name__="kasa_energy_${field}"}`)) {
    const device = series.metric['device_id'] ?? '';
    out.set(device, (out.get(device) ?? 0) + series.timestamps.length);
  }
  return out;
}

/** Distinct sample timestamps per device of one field's series. */
export async function timestampsPerDevice(
  victoria: Victoria,
  field = 'power_w',
): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>();
  for (const series of await victoria.exportSeries(`{__name__="kasa_energy_${field}"}`)) {
    const device = series.metric['device_id'] ?? '';
    let set = out.get(device);
    if (set === undefined) {
      set = new Set();
      out.set(device, set);
    }
    for (const ts of series.timestamps) set.add(ts);
  }
  return out;
}

/**
 * Polls the export until `done` holds for the samples per device (VictoriaMetrics makes new series
 * searchable a few seconds after ingestion), then returns them. The deadline only turns a hang into
 * a clear failure; callers assert exact counts on the result.
 */
export async function settledSamplesPerDevice(
  victoria: Victoria,
  done: (counts: Map<string, number>) => boolean,
  what: string,
  deadlineMs = 60_000,
): Promise<Map<string, number>> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const counts = await samplesPerDevice(victoria);
    if (done(counts)) return counts;
    if (Date.now() > end) throw new Error(`gave up waiting for VictoriaMetrics: ${what}`);
    await sleep(200);
  }
}
