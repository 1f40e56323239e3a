/**
 * The dashboard page tests' set-up: simulated plugs, an in-process daemon serving the dashboard, and
 * a real browser (helpers/browser.ts), started in that order and stopped in the reverse one.
 */
import assert from 'node:assert/strict';
import type { Config } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { Daemon } from '../../src/main.js';
import { launchBrowser, type TestBrowser } from './browser.js';
import { type SimulatorFleet, type StartSimulatorsOptions, startSimulators } from './simulator.js';

export interface DashboardRig {
  readonly fleet: SimulatorFleet;
  readonly daemon: Daemon;
  readonly browser: TestBrowser;
  /** http://host:port of the daemon's HTTP server. */
  readonly origin: string;
  stop(): Promise<void>;
}

/**
 * Starts the plugs, then a daemon with `config(fleet)` (its HTTP server on `httpHost`), waits for
 * `ready` (typically: readings of every channel stored), then opens a browser. If a step fails,
 * what was started is stopped before the error is passed on.
 */
export async function startDashboardRig(options: {
  readonly fleet: StartSimulatorsOptions;
  readonly config: Config;
  readonly httpHost: string;
  readonly ready: (daemon: Daemon, fleet: SimulatorFleet) => Promise<void>;
}): Promise<DashboardRig> {
  const fleet = await startSimulators(options.fleet);
  let daemon: Daemon | undefined;
  try {
    daemon = new Daemon(options.config, createSilentLogger());
    await daemon.start();
    const address = daemon.httpAddress;
    assert.ok(address !== null, 'listening');
    const origin = `http://${options.httpHost}:${address.port}`;
    await options.ready(daemon, fleet);
    const browser = await launchBrowser();
    const started = daemon;
    return {
      fleet,
      daemon: started,
      browser,
      origin,
      async stop() {
        await browser.close();
        await started.stop();
        await fleet.stop();
      },
    };
  } catch (error) {
    await daemon?.stop();
    await fleet.stop();
    throw error;
  }
}
