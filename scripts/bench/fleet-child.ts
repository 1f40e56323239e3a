/**
 * Child process of scripts/bench/fleet.ts: runs a fleet of simulated plugs on loopback, so that the
 * plugs' CPU does not count against the process being measured.
 *
 * Protocol (IPC, JSON): parent sends { type: 'start', port, count, stripEvery, firstAddress };
 * child answers { type: 'ready', devices, channels } or { type: 'error', message };
 * parent sends { type: 'stop' }; child stops the fleet, answers { type: 'stopped', cpu } and exits.
 */
import {
  fleetLayout,
  type SimulatorFleet,
  startSimulatorFleet,
} from '../../src/discovery/simulator-fleet.js';

interface StartMessage {
  readonly type: 'start';
  readonly port: number;
  readonly count: number;
  readonly stripEvery: number;
  readonly firstAddress: string;
}

type ParentMessage = StartMessage | { readonly type: 'stop' };

let fleet: SimulatorFleet | null = null;

function reply(message: unknown): void {
  process.send?.(message);
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'start') {
    const devices = fleetLayout({
      count: message.count,
      stripEvery: message.stripEvery,
      firstAddress: message.firstAddress,
    });
    startSimulatorFleet({ port: message.port, devices }).then(
      (started) => {
        fleet = started;
        const channels = started.devices.reduce((n, d) => n + Math.max(1, d.childIds.length), 0);
        reply({
          type: 'ready',
          devices: started.devices.length,
          channels,
          targets: started.devices.map((d) => ({ host: d.address, port: d.port, childIds: d.childIds })),
        });
      },
      (err: unknown) => reply({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
    );
  } else if (message.type === 'stop') {
    const done = (): void => {
      const cpu = process.cpuUsage();
      reply({ type: 'stopped', cpu });
      process.disconnect?.();
      process.exit(0);
    };
    if (fleet === null) done();
    else void fleet.stop().then(done, done);
  }
});

if (process.send === undefined) {
  console.error('fleet-child.js is started by scripts/bench/fleet.ts over IPC');
  process.exit(64);
}
