/**
 * Simulated Kasa plugs for tests: a thin wrapper around src/discovery/simulator-fleet.ts (which the
 * `demo` command and the benchmarks use too), plus small helpers to collect what the poller produces.
 *
 * Loopback only: devices bind 127.x addresses; broadcasts go to 127.255.255.255. Give every test file
 * its own port (20000-20999 for discovery/poller tests) so files running at once never hear each other.
 */
import {
  type SimDeviceSpec,
  type SimRealtime,
  type SimRequest,
  type SimulatedDevice,
  type SimulatorFleet,
  startSimulatorFleet,
} from '../../src/discovery/simulator-fleet.js';
import type { Reading } from '../../src/domain/reading.js';

export type { SimDeviceSpec, SimRealtime, SimRequest, SimulatedDevice, SimulatorFleet };

export interface StartSimulatorsOptions {
  readonly port: number;
  readonly devices: readonly SimDeviceSpec[];
}

/** Starts simulated plugs; `stop()` them at the end of the test. */
export function startSimulators(options: StartSimulatorsOptions): Promise<SimulatorFleet> {
  return startSimulatorFleet(options);
}

/** Counts the requests each device receives, by kind (`sysinfo`, `emeter`). */
export class RequestCounter {
  readonly requests: SimRequest[] = [];
  readonly #unsubscribe: () => void;

  constructor(fleet: SimulatorFleet) {
    this.#unsubscribe = fleet.onRequest((r) => this.requests.push(r));
  }

  count(deviceId: string, kind: 'sysinfo' | 'emeter'): number {
    const needle = kind === 'sysinfo' ? 'get_sysinfo' : 'get_realtime';
    return this.requests.filter((r) => r.deviceId === deviceId && r.message.includes(needle)).length;
  }

  stop(): void {
    this.#unsubscribe();
  }
}

/** A reading sink that keeps everything offered, and can call back on each reading. */
export class CollectingSink {
  readonly readings: Reading[] = [];
  onReading: ((reading: Reading) => void) | null = null;

  offer(reading: Reading): boolean {
    this.readings.push(reading);
    this.onReading?.(reading);
    return true;
  }

  of(channel: string): Reading[] {
    return this.readings.filter((r) => r.channel === channel);
  }

  clear(): void {
    this.readings.length = 0;
  }
}
