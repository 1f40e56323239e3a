import type { HealthReport } from '../../supervisor/index.js';
import { boolFlag, type Command } from '../command.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { loadForCommand } from '../load-config.js';

/** Where a local client reaches an address the daemon listens on (a wildcard means this host). */
export function healthUrl(listen: { readonly host: string; readonly port: number }): string {
  const host =
    listen.host === '0.0.0.0' || listen.host === ''
      ? '127.0.0.1'
      : listen.host === '::'
        ? '::1'
        : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}/health`;
}

function ago(iso: string | null, nowMs: number): string {
  if (iso === null) return 'never';
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  return s < 60
    ? `${s} s ago`
    : s < 3600
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 360) / 10} h ago`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${seconds % 60}s`;
}

const num = (value: unknown): number => (typeof value === 'number' ? value : 0);

/** The readable summary `kasa-monitor status` prints. */
export function formatHealth(report: HealthReport, nowMs: number = Date.now()): string {
  const lines: string[] = [];
  lines.push(
    `kasa-monitor: ${report.status} (checked ${ago(report.checked_at, nowMs)}, up ${duration(report.uptime_s)})`,
  );
  const names = Object.keys(report.checks);
  const width = Math.max(5, ...names.map((n) => n.length));
  for (const [name, check] of Object.entries(report.checks)) {
    const flags = [
      check.alerting ? 'ALERT' : '',
      check.recovery === null ? '' : `recovery: ${check.recovery}`,
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(
      `  ${check.status.padEnd(8)}  ${name.padEnd(width)}  ${check.reason}${flags === '' ? '' : ` [${flags}]`}`,
    );
  }
  const db = report.database;
  lines.push('');
  lines.push(`database     ${db.path} (writer ${db.writer}, readers ${db.readers})`);
  if (db.readers_fallback_reason !== null)
    lines.push(`             readers fallback: ${db.readers_fallback_reason}`);
  for (const q of db.quarantined) lines.push(`             corrupt copy moved to ${q.moved_to} (${q.at})`);
  const p = report.pool;
  lines.push(
    `pool         ${num(p['in_use'])} in use, ${num(p['idle'])} idle, ${num(p['waiting'])} waiting; ` +
      `size ${num(p['size'])} + overflow ${num(p['max_overflow'])}; ${num(p['timeouts'])} timeouts, ${num(p['recycled'])} recycled`,
  );
  const ops = Object.entries(report.retries?.operations ?? {});
  if (ops.length > 0) {
    lines.push(
      `retries      ${ops
        .map(
          ([name, op]) =>
            `${name} ${op.retries} retries, ${Math.round(op.success_rate * 1000) / 10}% ok, breaker ${op.breaker.state}`,
        )
        .join('; ')}`,
    );
  }
  const perf = report.performance;
  const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v * 10) / 10} ms`);
  lines.push(
    `performance  event loop p99 ${ms(perf.event_loop_lag_ms.p99)}, poll p99 ${ms(perf.poll_duration_ms.p99)}, ` +
      `commit p99 ${ms(perf.commit_latency_ms.p99)}, ${perf.readings_per_second} readings/s, ` +
      `CPU ${perf.cpu_percent}%, RSS ${Math.round(perf.rss_bytes / 1048576)} MiB`,
  );
  const active = report.alerts.active;
  lines.push(`alerts       ${active.length === 0 ? 'none' : active.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'show the health of the running daemon (GET /health)',
  usage: `[-c FILE] [--json]

Asks the running daemon for its health (http.listen from the configuration) and prints every check
with its reason, the database and reader pool, retry statistics and performance figures.

  -c, --config FILE  finds the daemon (http.listen)
      --json         print the /health JSON as it is

Exit code 0 when the daemon is ok or degraded, 1 when it is failed or cannot be reached.
`,
  options: {
    config: { type: 'string', short: 'c' },
    json: { type: 'boolean' },
  },
  async run(context) {
    const { config } = loadForCommand(context);
    const url = healthUrl(config.http.listen);
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    } catch (error) {
      const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
      const why =
        typeof cause?.code === 'string'
          ? cause.code
          : typeof cause?.message === 'string'
            ? cause.message
            : error instanceof Error
              ? error.message
              : String(error);
      context.stderr.write(
        `kasa-monitor status: cannot reach the daemon at ${url}: ${why} (is it running? is http.listen right?)\n`,
      );
      return EXIT_FAILURE;
    }
    const text = await response.text();
    let report: HealthReport;
    try {
      report = JSON.parse(text) as HealthReport;
    } catch {
      context.stderr.write(`kasa-monitor status: ${url} answered HTTP ${response.status} without JSON\n`);
      return EXIT_FAILURE;
    }
    if (typeof report.status !== 'string' || typeof report.checks !== 'object') {
      context.stderr.write(
        `kasa-monitor status: ${url} answered HTTP ${response.status}: not a health report\n`,
      );
      return EXIT_FAILURE;
    }
    context.stdout.write(
      boolFlag(context, 'json') ? `${JSON.stringify(report, null, 2)}\n` : formatHealth(report),
    );
    return report.status === 'failed' ? EXIT_FAILURE : EXIT_OK;
  },
};
