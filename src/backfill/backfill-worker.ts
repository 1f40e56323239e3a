/**
 * One backfill run in a worker thread: its SQLite reads (gaps, measured energy per day) and its
 * write (the fills) never block the daemon's event loop. It serves one call, `run`, with the legacy
 * plugs' endpoints and sysinfo, and opens connections of its own; newer (smart) plugs are asked
 * through the main thread, which holds their sessions (remote-stats.ts). Both directions speak the
 * SQLite workers' message layer.
 */
import { parentPort } from 'node:worker_threads';
import { LegacyStatsSource } from '../discovery/energy-stats.js';
import { KasaClient, type KasaSysinfo, type RequestOptions } from '../discovery/kasa.js';
import { PortClient, serve } from '../storage/sqlite/index.js';
import { Backfill, type BackfillOptions, type BackfillReport } from './backfill.js';
import { RemoteStats, type StatsHandlers } from './remote-stats.js';

export interface BackfillWorkerTarget {
  readonly deviceId: string;
  readonly host: string;
  readonly port: number;
  readonly sysinfo: KasaSysinfo;
  readonly channels: readonly { readonly channel: string; readonly childId: string | null }[];
}

export interface BackfillWorkerData {
  readonly options: BackfillOptions;
  readonly request: RequestOptions;
  readonly targets: readonly BackfillWorkerTarget[];
  /** Plugs whose statistics the main thread asks (newer plugs, through the fleet's sessions). */
  readonly remote?: readonly Pick<BackfillWorkerTarget, 'deviceId' | 'channels'>[];
  readonly nowMs: number;
}

if (parentPort === null) throw new Error('backfill-worker.js must run in a worker thread');
const port = parentPort;
const remote = new RemoteStats(
  new PortClient<StatsHandlers>(port, { name: 'main thread', deathIsTransient: false }),
);

async function run(data: BackfillWorkerData): Promise<BackfillReport> {
  // Each connection has its own sockets, closed when the run ends, so the worker can exit.
  const client = new KasaClient();
  const connections = data.targets.map((t) => client.connect(t.sysinfo, { host: t.host, port: t.port }));
  try {
    return await new Backfill(data.options).run(
      [
        ...data.targets.map((t, i) => ({
          deviceId: t.deviceId,
          channels: t.channels,
          stats: new LegacyStatsSource(
            connections[i] as NonNullable<(typeof connections)[number]>,
            data.request,
          ),
        })),
        ...(data.remote ?? []).map((t) => ({
          deviceId: t.deviceId,
          channels: t.channels,
          stats: remote.source(t.deviceId),
        })),
      ],
      data.nowMs,
    );
  } finally {
    for (const c of connections) c.close();
  }
}

const handlers = { run };

/** The backfill worker's protocol. */
export type BackfillHandlers = typeof handlers;

serve(port, handlers);
