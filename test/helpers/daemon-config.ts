/**
 * Configurations of a daemon polling simulated plugs on loopback at a test's pace: one for the built
 * daemon (`kasa-monitor run -c FILE`), one for an in-process `Daemon`. Each test adds what it is
 * about (health thresholds, sinks, a tariff) on top.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type Config, loadConfig } from '../../src/config/index.js';
import type { Daemon } from '../../src/main.js';

export interface DaemonYamlOptions {
  /** Discovery port of the simulated plugs (broadcast to 127.255.255.255). */
  readonly discoveryPort: number;
  readonly dbPath: string;
  /** host:port of the HTTP server. */
  readonly httpListen: string;
  /** The `health:` section's lines, without indentation (`interval: 500ms`). */
  readonly health: readonly string[];
}

/**
 * YAML for the built daemon: discovery every 30 s, polls every second, commits every 100 ms with
 * NORMAL sync, logs at info.
 */
export function daemonYaml(options: DaemonYamlOptions): string {
  return `discovery:
  broadcast: 127.255.255.255
  port: ${options.discoveryPort}
  interval: 30s
  timeout: 300ms
polling:
  interval: 1s
  timeout: 500ms
writer:
  flush_interval: 100ms
storage:
  sqlite:
    path: ${options.dbPath}
    synchronous: NORMAL
http:
  listen: ${options.httpListen}
health:
${options.health.map((line) => `  ${line}\n`).join('')}log:
  level: info
`;
}

/**
 * The config of an in-process daemon polling simulated plugs every second (500 ms timeout, discovery
 * answers collected for 300 ms) and committing every 100 ms. `overrides` are config keys as
 * `--set` takes them (the discovery port, the database, the HTTP address and the rest); nothing is
 * read from the environment or from a default file.
 */
export function simulatedFleetConfig(root: string, overrides: Record<string, unknown>): Config {
  return loadConfig({
    env: {},
    defaultFile: join(root, 'absent.yaml'),
    overrides: {
      'discovery.broadcast': ['127.255.255.255'],
      'discovery.timeout': '300ms',
      'polling.interval': '1s',
      'polling.timeout': '500ms',
      'writer.flush_interval': '100ms',
      ...overrides,
    },
  }).config;
}

/** The status of a started in-process daemon (fails the test if it has not started). */
export function daemonStatus(daemon: Daemon): NonNullable<ReturnType<Daemon['status']>> {
  const s = daemon.status();
  assert.ok(s !== null, 'daemon started');
  return s;
}
