/**
 * Newer plugs: (a) CPU per reading of this process polling over KLAP and over AES, next to the legacy
 * UDP poll measured in the same run against simulated plugs of the same number (target: KLAP ≤ 2x
 * legacy); (b) one port-20002 discovery round with 200 simulated newer plugs (target < 1 s to the
 * last reply), and the first identification of all of them (handshakes included), for information.
 * The plugs run in a child process; only this process's CPU is counted.
 *
 * Run on its own: `node dist/scripts/bench/smart.js [--quick]`; prints the figures as JSON.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KasaClient, parseSysinfo } from '../../src/discovery/kasa.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { canonicalReading, normaliseRealtime } from '../../src/poller/normalise.js';
import { SmartDevice } from '../../src/smart/device.js';
import { probeSmart } from '../../src/smart/discovery.js';
import { SmartFleet } from '../../src/smart/fleet.js';
import { chooseTransport } from '../../src/smart/tdp.js';
import { round } from './fleet.js';
import { BENCH_ACCOUNT } from './smart-account.js';

export interface SmartBenchOptions {
  readonly plugs?: number;
  readonly rounds?: number;
  readonly discoveryPlugs?: number;
  readonly progress?: (message: string) => void;
}

export interface CpuPerReading {
  readonly readings: number;
  readonly failures: number;
  readonly cpuUsPerReading: number;
}

export interface SmartBenchResult {
  readonly plugs: number;
  readonly rounds: number;
  readonly legacy: CpuPerReading;
  readonly klap: CpuPerReading;
  readonly aes: CpuPerReading;
  readonly discovery: {
    readonly plugs: number;
    readonly found: number;
    readonly msToLastReply: number;
    readonly identifyMs: number;
    readonly identified: number;
  };
}

interface Ready {
  legacy: { deviceId: string; address: string }[];
  smart: { deviceId: string; address: string; kind: string }[];
}

const LEGACY_PORT = 23300;
const SMART_PORT = 23302;
const HTTP_PORT = 23380;

function startChild(
  options: Record<string, unknown>,
): Promise<{ child: ChildProcess; ready: Ready; stop: () => Promise<void> }> {
  const child = fork(fileURLToPath(new URL('./smart-child.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`smart fleet child exited early (${code})`)));
    child.on('message', (message: { type: string; message?: string } & Ready) => {
      if (message.type === 'error') {
        child.kill();
        reject(new Error(message.message));
      } else if (message.type === 'ready') {
        resolve({
          child,
          ready: message,
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.removeAllListeners('exit');
              child.once('exit', () => done());
              child.send({ type: 'stop' });
              setTimeout(() => child.kill(), 10_000).unref();
            }),
        });
      }
    });
    child.send({
      type: 'start',
      legacyPort: LEGACY_PORT,
      smartPort: SMART_PORT,
      httpPort: HTTP_PORT,
      ...options,
    });
  });
}

/** CPU of this process (user + system, µs) per reading over `rounds` sequential rounds. */
async function measure(rounds: number, poll: () => Promise<boolean>[]): Promise<CpuPerReading> {
  // Warm-up rounds: sessions, JIT. A path's first thousand requests cost several times a warm one
  // (measured: KLAP 160 µs per reading over 50 rounds of 20 plugs, 45 µs over 1000), and the daemon
  // runs warm: every path gets the same warm-up, then enough rounds to be past it.
  for (let i = 0; i < Math.max(10, Math.floor(rounds / 2)); i++) await Promise.all(poll());
  let readings = 0;
  let failures = 0;
  const before = process.cpuUsage();
  for (let i = 0; i < rounds; i++) {
    for (const ok of await Promise.all(poll())) {
      if (ok) readings++;
      else failures++;
    }
  }
  const cpu = process.cpuUsage(before);
  return { readings, failures, cpuUsPerReading: round((cpu.user + cpu.system) / Math.max(1, readings), 1) };
}

export async function benchSmart(options: SmartBenchOptions = {}): Promise<SmartBenchResult> {
  const plugs = options.plugs ?? 20;
  const rounds = options.rounds ?? 400;
  const discoveryPlugs = options.discoveryPlugs ?? 200;
  const progress = options.progress ?? (() => {});
  const logger = createSilentLogger();

  progress(
    `smart: CPU per reading, ${plugs} legacy / ${plugs} KLAP / ${plugs} AES simulated plugs, ${rounds} rounds`,
  );
  const fleet = await startChild({ legacy: plugs, klap: plugs, aes: plugs, firstAddress: '127.0.56.1' });
  let legacy: CpuPerReading;
  let klap: CpuPerReading;
  let aes: CpuPerReading;
  try {
    const client = new KasaClient();
    const connections = await Promise.all(
      fleet.ready.legacy.map(async (d) => {
        const sysinfo = parseSysinfo({
          deviceId: d.deviceId,
          alias: 'x',
          model: 'HS110(EU)',
          type: 'IOT.SMARTPLUGSWITCH',
          mac: '00:00:00:00:00:00',
          sw_ver: '1',
          hw_ver: '2.0',
          feature: 'TIM:ENE',
          relay_state: 1,
        });
        if (sysinfo === null) throw new Error('bad sysinfo');
        return client.connect(sysinfo, { host: d.address, port: LEGACY_PORT });
      }),
    );
    legacy = await measure(rounds, () =>
      connections.map(async (c) => {
        const answer = await c.getEnergy(null, { transport: 'udp', timeoutMs: 2_000 });
        return answer.ok && normaliseRealtime(answer.reply, 'x', 0).ok;
      }),
    );
    for (const c of connections) c.close();

    const devicesOf = (kind: 'klap' | 'aes'): SmartDevice[] =>
      fleet.ready.smart
        .filter((d) => d.kind === kind)
        .map(
          (d) =>
            new SmartDevice({
              host: d.address,
              httpPort: HTTP_PORT,
              choice: kind === 'klap' ? { kind: 'klap', payload: 'smart' } : { kind: 'aes', loginVersion: 2 },
              account: BENCH_ACCOUNT,
            }),
        );
    const smartPoll = (devices: SmartDevice[]) => () =>
      devices.map(async (device) => {
        try {
          const answer = await device.readChannel(null, 2_000);
          return answer.ok && answer.kind === 'smart' && canonicalReading(answer.energy, 'x', 0).ok;
        } catch {
          return false;
        }
      });
    const klapDevices = devicesOf('klap');
    klap = await measure(rounds, smartPoll(klapDevices));
    for (const d of klapDevices) d.close();
    const aesDevices = devicesOf('aes');
    aes = await measure(rounds, smartPoll(aesDevices));
    for (const d of aesDevices) d.close();
  } finally {
    await fleet.stop();
  }

  progress(`smart: one port-20002 round with ${discoveryPlugs} simulated newer plugs`);
  const big = await startChild({ legacy: 0, klap: discoveryPlugs, aes: 0, firstAddress: '127.0.57.1' });
  try {
    const result = await probeSmart({
      broadcast: ['127.255.255.255'],
      hosts: [],
      port: SMART_PORT,
      timeoutMs: 1_500,
      receiveBufferBytes: 4 * 1024 * 1024,
    });
    const smartFleet = new SmartFleet({ account: BENCH_ACCOUNT, timeoutMs: 5_000 }, logger, new KasaClient());
    const t0 = performance.now();
    const observed = await smartFleet.round(result.replies, new Set(), new Set());
    const identifyMs = performance.now() - t0;
    smartFleet.close();
    const usable = result.replies.filter((r) => chooseTransport(r.reply).kind === 'klap').length;
    return {
      plugs,
      rounds,
      legacy,
      klap,
      aes,
      discovery: {
        plugs: discoveryPlugs,
        found: usable,
        msToLastReply: round(Math.max(0, ...result.replies.map((r) => r.elapsedMs)), 1),
        identifyMs: round(identifyMs, 1),
        identified: observed.length,
      },
    };
  } finally {
    await big.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  benchSmart({ rounds: quick ? 50 : 400, progress: (m) => process.stderr.write(`${m}\n`) }).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
