import { createServer } from 'node:net';
import {
  loopbackAddresses,
  type SimDeviceSpec,
  startSimulatorFleet,
} from '../../discovery/simulator-fleet.js';
import { type SmartSimSpec, startSmartSimulators } from '../../discovery/smart-simulator.js';
import { milliToDecimal } from '../../shared/decimal.js';
import { openReadingsReader, type StoredReading } from '../../storage/sqlite/index.js';
import { type Command, stringFlag } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { loadForDaemon } from '../load-daemon-config.js';
import { runDaemon, runOptions, runOverrides } from './run.js';

const DEMO_BROADCAST = '127.255.255.255';
const DEMO_FIRST_ADDRESS = '127.0.99.1';

/** A small, varied household: old and new firmware units, a six-outlet strip, a plug with no meter. */
const NAMED: readonly Omit<SimDeviceSpec, 'address'>[] = [
  {
    model: 'hs110',
    alias: 'Kettle',
    realtime: { power: 1850.5, voltage: 229.8, current: 8.05, total: 12.4 },
  },
  {
    model: 'hs110v2',
    alias: 'Fridge',
    realtime: { power_mw: 92_300, voltage_mv: 231_200, current_ma: 410, total_wh: 5210 },
  },
  {
    model: 'hs300',
    alias: 'Desk strip',
    outletAliases: ['Monitor', 'Laptop', 'Lamp', 'Speakers', 'Router', 'Charger'],
  },
  { model: 'hs100', alias: 'Hall light (no meter)' },
  {
    model: 'hs110v2',
    alias: 'Washing machine',
    realtime: { power_mw: 480_000, voltage_mv: 230_400, current_ma: 2100, total_wh: 88_000 },
  },
];

/** The demo's TP-Link account: the simulated newer plugs accept it, the daemon logs in with it. */
export const DEMO_ACCOUNT = { username: 'demo@example.com', password: 'demo-password' } as const;
const DEMO_SMART_PORT = 20002;
const DEMO_SMART_HTTP_PORT = 20080;

/** Newer plugs on 127.0.98.x: one over KLAP, one over AES, one strip (each outlet a channel). */
export const DEMO_SMART_DEVICES: readonly SmartSimSpec[] = [
  {
    address: '127.0.98.1',
    kind: 'klap',
    model: 'P110',
    alias: 'Heater (KLAP)',
    deviceId: `DEMOSMART${'0'.repeat(30)}1`,
    account: DEMO_ACCOUNT,
    values: { powerMw: 1_200_000, voltageMv: 230_500, currentMa: 5_210, monthWh: 42_000, sinceBootWh: 9_000 },
  },
  {
    address: '127.0.98.2',
    kind: 'aes',
    loginVersion: 2,
    model: 'KP125M',
    alias: 'TV (AES)',
    deviceId: `DEMOSMART${'0'.repeat(30)}2`,
    account: DEMO_ACCOUNT,
    emeterData: false,
    values: { powerMw: 85_000, monthWh: 3_100 },
  },
  {
    address: '127.0.98.3',
    kind: 'klap',
    model: 'P304M',
    alias: 'Office strip',
    deviceId: `DEMOSMART${'0'.repeat(30)}3`,
    account: DEMO_ACCOUNT,
    outlets: ['Printer', 'Monitor', 'Fan'],
    emeterData: false,
    usagePower: false,
    values: { powerMw: 15_000, monthWh: 800 },
  },
];

export function demoDevices(count: number): SimDeviceSpec[] {
  const addresses = loopbackAddresses(DEMO_FIRST_ADDRESS, count);
  return addresses.map((address, i) => {
    const named = NAMED[i];
    if (named !== undefined) return { ...named, address, deviceId: `DEMO${String(i + 1).padStart(36, '0')}` };
    return {
      model: 'hs110v2',
      alias: `Plug ${i + 1}`,
      address,
      deviceId: `DEMO${String(i + 1).padStart(36, '0')}`,
    };
  });
}

/** The demo's dashboard address: the usual port when it is free, else any free one (a service may hold it). */
async function demoListen(host: string, port: number): Promise<string> {
  const free = await new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
  return `${host}:${free ? port : 0}`;
}

function line(r: StoredReading): string {
  const time = new Date(r.tsMs).toISOString().slice(11, 19);
  const w = `${milliToDecimal(r.powerMw)} W`.padStart(11);
  const v = (r.voltageMv === null ? '- V' : `${milliToDecimal(r.voltageMv)} V`).padStart(10);
  const a = (r.currentMa === null ? '- A' : `${milliToDecimal(r.currentMa)} A`).padStart(9);
  return `${time}  ${r.alias.padEnd(18)} ${w} ${v} ${a}   total ${r.totalWh} Wh`;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'start simulated plugs on loopback and monitor them (no hardware needed)',
  usage: `[--devices N] [--port N] [-c FILE] [--set KEY=VALUE]...

Starts N simulated Kasa plugs (default 5: old and new firmware, an HS300 strip, a plug without an
energy meter) on 127.0.99.x and three newer plugs with a demo TP-Link account on 127.0.98.x (KLAP,
AES, and a P304M strip; port ${DEMO_SMART_PORT} discovery, HTTP ${DEMO_SMART_HTTP_PORT}), runs the daemon
against them with broadcast ${DEMO_BROADCAST}, and prints
the readings as they are committed to the database. Stop with Ctrl-C; then try
\`kasa-monitor export --device Kettle\`.

      --devices N   how many simulated plugs (1-500, default 5)
      --port N      UDP/TCP port of the simulated plugs (default 9999)
  -c, --config FILE and --set work as for \`run\` (e.g. to choose the database)
`,
  options: {
    ...runOptions,
    devices: { type: 'string' },
    port: { type: 'string' },
  },
  async run(context) {
    const count = Number(stringFlag(context, 'devices') ?? '5');
    if (!Number.isInteger(count) || count < 1 || count > 500)
      throw new UsageError('--devices expects 1 to 500');
    const port = Number(stringFlag(context, 'port') ?? '9999');
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new UsageError('--port expects 1 to 65535');
    // Without -c the demo reads no system config: its simulated plugs must never reach the
    // service's database, MQTT broker or InfluxDB.
    const ownConfig = stringFlag(context, 'config') !== undefined;
    const listen = ownConfig ? {} : { 'http.listen': await demoListen('127.0.0.1', 9469) };
    const { config } = await loadForDaemon(
      context,
      {
        ...listen,
        'discovery.broadcast': [DEMO_BROADCAST],
        'discovery.port': port,
        'discovery.hosts': [],
        'discovery.smart_port': DEMO_SMART_PORT,
        'credentials.username': DEMO_ACCOUNT.username,
        'credentials.password': DEMO_ACCOUNT.password,
        'discovery.interval': '10s',
        'polling.interval': '2s',
        'polling.schedule': null,
        'polling.timeout': '1s',
        'writer.flush_interval': '1s',
        'log.level': 'warn',
        ...runOverrides(context),
      },
      { systemConfig: false },
    );
    const fleet = await startSimulatorFleet({ port, devices: demoDevices(count) });
    const smart = await startSmartSimulators({
      discoveryPort: DEMO_SMART_PORT,
      httpPort: DEMO_SMART_HTTP_PORT,
      devices: DEMO_SMART_DEVICES,
    }).catch(async (error: unknown) => {
      await fleet.stop();
      throw error;
    });
    const stopLegacyAnimation = fleet.animate(1000);
    const stopSmartAnimation = smart.animate(1000);
    const stopAnimation = (): void => {
      stopLegacyAnimation();
      stopSmartAnimation();
    };
    context.stdout.write(
      `demo: ${count} simulated plug${count === 1 ? '' : 's'} on ${DEMO_FIRST_ADDRESS}… port ${port}, and ${DEMO_SMART_DEVICES.length} newer plugs (KLAP, AES, a strip) on 127.0.98.x with the demo account ${DEMO_ACCOUNT.username}; database ${config.storage.sqlite.path}\n` +
        'demo: readings appear below as they are committed (every 2 s). Ctrl-C stops.\n',
    );
    let printer: NodeJS.Timeout | null = null;
    let simulatorsStopped = false;
    const stopSimulators = async (): Promise<void> => {
      if (simulatorsStopped) return;
      simulatorsStopped = true;
      stopAnimation();
      await fleet.stop();
      await smart.stop();
    };
    let started = false;
    const code = await runDaemon(context, config, {
      onStarted: (daemon) => {
        started = true;
        const address = daemon.httpAddress;
        if (address !== null) {
          const host = address.host.includes(':') ? `[${address.host}]` : address.host;
          context.stdout.write(`demo: dashboard at http://${host}:${address.port}/\n`);
        }
        // Per channel, the newest reading already printed: a late answer can commit after a newer one.
        const printed = new Map<string, number>();
        printer = setInterval(() => {
          let reader: ReturnType<typeof openReadingsReader> | null = null;
          try {
            reader = openReadingsReader(config.storage.sqlite.path);
            const fresh = [...reader.readings({ fromMs: Date.now() - 15_000 })].filter(
              (r) => r.tsMs > (printed.get(r.deviceId) ?? 0),
            );
            for (const r of fresh) printed.set(r.deviceId, Math.max(r.tsMs, printed.get(r.deviceId) ?? 0));
            if (fresh.length > 0) context.stdout.write(`${fresh.map(line).join('\n')}\n`);
          } catch (error) {
            context.stderr.write(`demo: ${(error as Error).message}\n`);
          } finally {
            reader?.close();
          }
        }, 2000);
      },
      onStopped: async () => {
        if (printer !== null) clearInterval(printer);
        await stopSimulators();
        context.stdout.write(
          `demo: stopped. The readings stay in ${config.storage.sqlite.path}; print them with\n` +
            `  kasa-monitor export${stringFlag(context, 'config') === undefined ? '' : ` -c ${stringFlag(context, 'config')}`} --device Kettle\n`,
        );
      },
    });
    if (!started) {
      // The daemon could not start (for example an http.listen given with --set that is taken): the
      // simulated plugs would otherwise keep the process alive after the error.
      await stopSimulators();
      context.stderr.write(
        'demo: the daemon did not start (see above). If the HTTP port is taken, give the demo another one:\n' +
          '  kasa-monitor demo --set http.listen=127.0.0.1:9470\n',
      );
    }
    return code;
  },
};
