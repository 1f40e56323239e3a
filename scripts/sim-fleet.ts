/**
 * Simulated Kasa plugs on loopback, and nothing else (`kasa-monitor demo` also runs a daemon). The
 * real-systemd test starts this inside its container as a unit of its own:
 *
 *   systemd-run -p Type=notify -p NotifyAccess=all --unit=kasa-sim \
 *     /usr/bin/node dist/scripts/sim-fleet.js --port 9999 --devices 3
 *
 * Options: --port N (default 9999), --devices N (default 3), --first ADDRESS (default 127.0.99.1).
 * The plugs are HS110 v2 (new firmware units) with ids SIM000…001, SIM000…002, …; it prints one line
 * per plug, sends READY=1 under systemd, and stops on SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { loopbackAddresses, startSimulatorFleet } from '../src/discovery/simulator-fleet.js';
import { createRootLogger } from '../src/log/logger.js';
import { SystemdNotifier } from '../src/systemd/index.js';

function positiveInt(text: string, name: string, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`--${name} expects 1 to ${max}`);
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9999' },
      devices: { type: 'string', default: '3' },
      first: { type: 'string', default: '127.0.99.1' },
    },
  });
  const port = positiveInt(values.port, 'port', 65535);
  const count = positiveInt(values.devices, 'devices', 500);
  const devices = loopbackAddresses(values.first, count).map((address, i) => ({
    model: 'hs110v2' as const,
    address,
    alias: `Sim plug ${i + 1}`,
    deviceId: `SIM${String(i + 1).padStart(37, '0')}`,
    realtime: { power_mw: 50_000 + i, voltage_mv: 230_000, current_ma: 220, total_wh: 1000 + i },
  }));
  const fleet = await startSimulatorFleet({ port, devices });
  for (const d of fleet.devices)
    process.stdout.write(`sim-fleet: ${d.deviceId} ${d.alias} ${d.address}:${port}\n`);

  const notifier = new SystemdNotifier({ logger: createRootLogger({ level: 'warn', format: 'auto' }) });
  notifier.ready(`${fleet.devices.length} simulated plugs on port ${port}`);

  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  notifier.stopping();
  await fleet.stop();
  await notifier.flush(2000);
}

main().catch((error: unknown) => {
  process.stderr.write(`sim-fleet: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
