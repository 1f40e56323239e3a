/**
 * Child process of scripts/bench/smart.ts: runs simulated plugs on loopback (newer ones of our own
 * simulator, and legacy ones for the baseline) so that their CPU does not count against the process
 * being measured.
 *
 * IPC: parent sends { type: 'start', legacyPort, smartPort, httpPort, legacy, klap, aes, firstAddress };
 * child answers { type: 'ready', legacy: [{ deviceId, address }], smart: [{ deviceId, address, kind }] };
 * parent sends { type: 'stop' }; the child stops everything and exits.
 */
import {
  loopbackAddresses,
  type SimulatorFleet,
  startSimulatorFleet,
} from '../../src/discovery/simulator-fleet.js';
import {
  type SmartSimFleet,
  type SmartSimSpec,
  startSmartSimulators,
} from '../../src/discovery/smart-simulator.js';

import { BENCH_ACCOUNT } from './smart-account.js';

interface StartMessage {
  readonly type: 'start';
  readonly legacyPort: number;
  readonly smartPort: number;
  readonly httpPort: number;
  readonly legacy: number;
  readonly klap: number;
  readonly aes: number;
  readonly firstAddress: string;
}

let legacy: SimulatorFleet | null = null;
let smart: SmartSimFleet | null = null;

process.on('message', (message: StartMessage | { type: 'stop' }) => {
  if (message.type === 'start') {
    const addresses = loopbackAddresses(message.firstAddress, message.legacy + message.klap + message.aes);
    const legacyAddresses = addresses.slice(0, message.legacy);
    const smartSpecs: SmartSimSpec[] = addresses.slice(message.legacy).map((address, i) => ({
      address,
      kind: i < message.klap ? 'klap' : 'aes',
      model: i < message.klap ? 'P110' : 'KP125M',
      account: BENCH_ACCOUNT,
      values: { powerMw: 50_000 + i, voltageMv: 230_000, currentMa: 217, monthWh: 1000 + i },
    }));
    void (async () => {
      try {
        legacy =
          legacyAddresses.length === 0
            ? null
            : await startSimulatorFleet({
                port: message.legacyPort,
                devices: legacyAddresses.map((address) => ({ model: 'hs110v2' as const, address })),
              });
        smart =
          smartSpecs.length === 0
            ? null
            : await startSmartSimulators({
                discoveryPort: message.smartPort,
                httpPort: message.httpPort,
                devices: smartSpecs,
              });
        process.send?.({
          type: 'ready',
          legacy: legacy?.devices.map((d) => ({ deviceId: d.deviceId, address: d.address })) ?? [],
          smart:
            smart?.devices.map((d) => ({ deviceId: d.deviceId, address: d.address, kind: d.kind })) ?? [],
        });
      } catch (err) {
        process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      }
    })();
  } else {
    void Promise.allSettled([legacy?.stop(), smart?.stop()]).then(() => {
      process.disconnect?.();
      process.exit(0);
    });
  }
});

if (process.send === undefined) {
  console.error('smart-child.js is started by scripts/bench/smart.ts over IPC');
  process.exit(64);
}
