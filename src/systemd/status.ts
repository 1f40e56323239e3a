import type { DaemonStatus } from '../daemon-status.js';

/** What STATUS= reads of the daemon's status. */
export type StatusView = Pick<DaemonStatus, 'devices' | 'poller' | 'queue' | 'writer' | 'influx'>;

/**
 * The one-line STATUS= summary `systemctl status kasa-monitor` shows: plugs online, last poll, queue
 * fill and the state of each sink, after any note that needs attention (a rejected reload, keys
 * waiting for a restart, a withheld watchdog ping). States a restart cannot fix (plugs offline, a
 * failing sink) show here and in the log rather than in the watchdog.
 */

/** One storage sink as STATUS shows it. */
export interface SinkSummary {
  readonly name: string;
  readonly state: 'ok' | 'failing' | 'idle';
  readonly detail?: string;
}

export interface StatusFacts {
  readonly plugsOnline: number;
  readonly plugsKnown: number;
  /** When the last poll tick ran (UTC ms), or null before the first. */
  readonly lastPollMs: number | null;
  readonly queueSize: number;
  readonly queueCapacity: number;
  readonly sinks: readonly SinkSummary[];
}

/** "4s ago", "3m ago", "2h ago", "5d ago". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 2 * 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 2 * 86_400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** The SQLite sink: failing while its last error is newer than its last commit. */
export function sqliteSink(writer: DaemonStatus['writer']): SinkSummary {
  const error = writer.lastError;
  if (error !== null && (writer.lastCommitAtMs === null || error.atMs > writer.lastCommitAtMs)) {
    return { name: 'sqlite', state: 'failing', detail: `${error.code ?? error.message}, retrying` };
  }
  if (writer.lastCommitAtMs === null) return { name: 'sqlite', state: 'idle', detail: 'nothing written yet' };
  return { name: 'sqlite', state: 'ok', detail: `${writer.written} written` };
}

/** What STATUS reads of the InfluxDB forwarder (DaemonStatus['influx'] when InfluxDB is configured). */
export interface InfluxFacts {
  readonly queued: number;
  readonly lagMs: number;
  readonly lastWriteAtMs: number | null;
  readonly lastError: {
    readonly message: string;
    readonly code: string | null;
    readonly atMs: number;
  } | null;
}

/** The InfluxDB sink: failing while its last error is newer than its last write; else its lag. */
export function influxSink(influx: InfluxFacts, nowMs: number): SinkSummary {
  const error = influx.lastError;
  if (error !== null && (influx.lastWriteAtMs === null || error.atMs > influx.lastWriteAtMs)) {
    return {
      name: 'influx',
      state: 'failing',
      detail: `${error.code ?? error.message}, ${influx.queued} waiting in SQLite, behind ${ago(influx.lagMs).replace(' ago', '')}`,
    };
  }
  if (influx.lastWriteAtMs === null) return { name: 'influx', state: 'idle', detail: 'nothing sent yet' };
  return {
    name: 'influx',
    state: 'ok',
    detail: influx.queued === 0 ? `sent ${ago(nowMs - influx.lastWriteAtMs)}` : `${influx.queued} to send`,
  };
}

export function statusFacts(status: StatusView, nowMs: number = Date.now()): StatusFacts {
  // Read structurally: the forwarder's part of DaemonStatus is absent when InfluxDB is not configured.
  const influx = (status as { readonly influx?: InfluxFacts | null }).influx ?? null;
  return {
    plugsOnline: status.devices.online,
    plugsKnown: status.devices.devices,
    lastPollMs: status.poller.lastTickMs,
    queueSize: status.queue.size,
    queueCapacity: status.queue.capacity,
    sinks: [sqliteSink(status.writer), ...(influx === null ? [] : [influxSink(influx, nowMs)])],
  };
}

function sinkText(sink: SinkSummary): string {
  return sink.detail === undefined
    ? `${sink.name} ${sink.state}`
    : `${sink.name} ${sink.state} (${sink.detail})`;
}

/** The STATUS= line: notes first (they need attention), then the summary, separated by "; ". */
export function formatStatus(facts: StatusFacts, notes: readonly string[], nowMs: number): string {
  const fill = facts.queueCapacity > 0 ? Math.floor((facts.queueSize / facts.queueCapacity) * 100) : 0;
  const parts = [
    ...notes,
    `${facts.plugsOnline}/${facts.plugsKnown} plugs online`,
    facts.lastPollMs === null ? 'no poll yet' : `last poll ${ago(nowMs - facts.lastPollMs)}`,
    `queue ${facts.queueSize}/${facts.queueCapacity}${fill >= 1 ? ` (${fill}% full)` : ''}`,
    ...facts.sinks.map(sinkText),
  ];
  return parts.join('; ');
}
