/**
 * The daemon's HTTP server without a daemon: a fixed device list, the latest readings given, and a
 * reader pool on a database file; no supervisor behind /health.
 */
import assert from 'node:assert/strict';
import type { DeviceSnapshot } from '../../src/discovery/registry.js';
import type { ChannelInfo } from '../../src/domain/channel.js';
import type { LatestReadings } from '../../src/http/latest.js';
import { HttpServer } from '../../src/http/server.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { ReaderPool } from '../../src/storage/sqlite/index.js';

/** A plug with one channel, online since `sinceMs`, as discovery's registry shows it. */
export function onlineSnapshot(channel: ChannelInfo, host: string, sinceMs: number): DeviceSnapshot {
  return {
    id: channel.id,
    alias: channel.alias,
    model: channel.model,
    host,
    port: 9999,
    hasEmeter: true,
    polled: true,
    outlets: [],
    channels: [channel],
    state: { kind: 'online', since: sinceMs },
    firstSeenMs: sinceMs,
    lastSeenMs: sinceMs,
    missedRounds: 0,
    failedPolls: 0,
  };
}

/** Starts the server on `host` (a free port) over the database at `path`; `stop()` it at the end. */
export async function startStandaloneHttp(options: {
  readonly path: string;
  readonly host: string;
  readonly devices: () => DeviceSnapshot[];
  readonly latest: LatestReadings;
}): Promise<{ origin: string; stop(): Promise<void> }> {
  const readers = new ReaderPool(
    { path: options.path, size: 1, maxOverflow: 1, timeoutMs: 30_000, recycleMs: 3_600_000 },
    createSilentLogger(),
  );
  await readers.start();
  const http = new HttpServer(
    {
      status: () => null,
      health: () => null,
      refreshHealth: () => Promise.reject(new Error('not used')),
      devices: options.devices,
      latest: options.latest,
      pool: () => readers.stats(),
      readers,
    },
    { host: options.host, port: 0 },
    createSilentLogger(),
  );
  const address = await http.start();
  assert.ok(address !== null);
  return {
    origin: `http://${options.host}:${address.port}`,
    async stop() {
      await http.stop();
      await readers.stop();
    },
  };
}
