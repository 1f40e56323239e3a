/**
 * The HTTP surface (bound to loopback by default): GET /health, /metrics, /api/devices and
 * /api/readings. This folder is the only one that runs an HTTP server. Readings are read and
 * formatted by the reader pool's workers; this thread only passes their bytes to the socket, with
 * back-pressure, so an export of a year of readings neither stalls the daemon nor fills memory.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { energyJsonRow, energyJsonTotals } from '../cli/energy-json.js';
import { milliToUnit } from '../domain/reading.js';
import { type PeriodKind, parseLocalDate, zoneCalendar } from '../energy/index.js';
import type { Logger } from '../log/logger.js';
import { checkTimeRange, parseTime } from '../shared/time.js';
import { isStorageError, KasaStorageCode } from '../storage/errors.js';
import type {
  DailyEnergyResult,
  DashboardEnergyQuery,
  DashboardSeriesQuery,
  EnergyReport,
  EnergyReportQuery,
  EnergyReportSettings,
  ExportFormat,
  ExportQuery,
  SeriesResult,
} from '../storage/sqlite/index.js';
import type { HealthReport } from '../supervisor/index.js';
import { AUTH_CHALLENGE, authorised, type HttpAuth } from './auth.js';
import { BadParameter, parseEnergyQuery, parseSeriesQuery } from './dashboard-api.js';
import { EnergyCostTotals } from './energy-cost.js';
import type { MetricsRegistry, MetricsSource } from './metrics.js';
import { StaticAssets } from './static.js';

export interface HttpSources extends MetricsSource {
  /** Runs the checks now (used when no report exists yet). */
  refreshHealth(): Promise<HealthReport>;
  /** Acknowledges the open database incidents (POST /api/ack); absent: no supervisor to ask. */
  acknowledge?(): Promise<{ readonly acknowledged: readonly unknown[]; readonly report: HealthReport }>;
  readonly readers: {
    exportReadings(
      query: ExportQuery,
      format: ExportFormat,
      sink: (bytes: Uint8Array) => Promise<void> | void,
    ): Promise<{ readonly rows: number }>;
    series(query: DashboardSeriesQuery): Promise<SeriesResult>;
    dailyEnergy(query: DashboardEnergyQuery): Promise<DailyEnergyResult>;
    /** Absent: GET /api/energy answers 503. */
    energyReport?(query: EnergyReportQuery, settings: EnergyReportSettings): Promise<EnergyReport>;
  };
  /** The time zone, gap limit and tariff as configured now (a reload applies a new tariff). */
  energySettings?(): EnergySettingsNow;
  /** The cost computation to use for /metrics, when the daemon shares it (with MQTT). */
  energyCosts?: EnergyCostTotals;
}

export type EnergySettingsNow = EnergyReportSettings;

export interface HttpOptions {
  readonly host: string;
  readonly port: number;
  /**
   * How long a streamed response may wait for the client to take more bytes before it is cut
   * (default 30 s): a client that stopped reading must not hold a reader connection forever.
   */
  readonly writeTimeoutMs?: number;
  /** Basic authentication for everything but its public paths; none when absent or null. */
  readonly auth?: HttpAuth | null;
  /** The zone of local days and the gap limit, for /api/daily-energy (default UTC, 15 min). */
  readonly energy?: () => { readonly timeZone: string; readonly gapLimitMs: number };
}

export const DEFAULT_WRITE_TIMEOUT_MS = 30_000;

/** /api/readings without `from` covers this much before `to` (or now): a whole database is never sent by accident. */
export const DEFAULT_READINGS_WINDOW_MS = 24 * 3_600_000;

const DASHBOARD_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

class ClientGone extends Error {}

/** A read's error as the HTTP answer it deserves; anything but a StorageError as it is. */
/** A storage error as an HTTP answer; never the storage's own 404 text, which names the database file. */
function storageProblem(error: unknown, device?: string | null): unknown {
  if (!isStorageError(error)) return error;
  if (error.code === KasaStorageCode.unknownDevice)
    return new HttpProblem(
      404,
      device ? `no device with id or alias ${JSON.stringify(device)}` : 'no such device',
    );
  if (error.code === KasaStorageCode.ambiguousDevice) return new HttpProblem(400, error.message);
  if (error.transient) return new HttpProblem(503, error.message, { 'retry-after': '1' });
  return new HttpProblem(500, error.message);
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/**
 * Resolves true when the response can take more (drain) or is gone (close), false when neither
 * happened within `timeoutMs`; leaves no listener or timer behind.
 */
function drainedOrClosed(res: ServerResponse, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (progressed: boolean) => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve(progressed);
    };
    const done = () => finish(true);
    const timer = setTimeout(() => finish(false), timeoutMs);
    res.on('drain', done);
    res.on('close', done);
  });
}

export class HttpServer {
  readonly name = 'http';
  readonly #server: Server;
  readonly #sources: HttpSources;
  readonly #logger: Logger;
  readonly #options: HttpOptions;
  /** What /metrics reads, with the cost counter wired in. */
  readonly #metricsSource: MetricsSource;
  /**
   * prom-client and the metric table, loaded at the first scrape: a daemon nobody scrapes never loads
   * them (prom-client alone is about 4 MiB of RSS).
   */
  #registry: Promise<MetricsRegistry> | null = null;
  readonly #assets = new StaticAssets();
  #address: { host: string; port: number } | null = null;
  #error: string | null = null;

  constructor(sources: HttpSources, options: HttpOptions, logger: Logger) {
    this.#sources = sources;
    this.#options = options;
    this.#logger = logger;
    const settings = sources.energySettings;
    const report = sources.readers.energyReport;
    /** Logged once per episode, not at every scrape. */
    let costFailing = false;
    const costs =
      sources.energyCosts ??
      (settings === undefined || report === undefined
        ? null
        : new EnergyCostTotals({
            report: (query, s) => report.call(sources.readers, query, s),
            settings: () => settings.call(sources),
          }));
    this.#metricsSource =
      costs === null
        ? sources
        : {
            status: () => sources.status(),
            health: () => sources.health(),
            devices: () => sources.devices(),
            latest: sources.latest,
            pool: () => sources.pool(),
            energyCost: async () => {
              try {
                const totals = await costs.totals();
                costFailing = false;
                return totals;
              } catch (error) {
                // A scrape still answers with everything else; the cost shows up again when it can.
                if (!costFailing)
                  logger.warn({ err: error }, 'kasa_energy_cost_total: cannot compute the cost');
                costFailing = true;
                return [];
              }
            },
          };
    this.#server = createServer((req, res) => {
      this.#handle(req, res)
        .catch((error: unknown) => {
          this.#logger.error({ err: error, url: req.url }, 'HTTP request failed');
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
          else res.destroy();
        })
        .finally(() => this.#cutIfNeverTaken(res));
    });
    this.#server.keepAliveTimeout = 5_000;
  }

  /**
   * Listens on the configured address. When that fails (address in use, not available) the error
   * is logged and kept in `error`; the daemon goes on recording without its HTTP surface.
   */
  async start(): Promise<{ host: string; port: number } | null> {
    const { host, port } = this.#options;
    try {
      this.#server.listen(port, host);
      await Promise.race([
        once(this.#server, 'listening'),
        once(this.#server, 'error').then(([error]) => {
          throw error;
        }),
      ]);
    } catch (error) {
      this.#error = error instanceof Error ? error.message : String(error);
      this.#logger.error({ err: error, host, port }, 'HTTP endpoint not available: cannot listen');
      return null;
    }
    const address = this.#server.address() as AddressInfo;
    this.#address = { host: address.address, port: address.port };
    this.#logger.info(
      { address: address.address, port: address.port },
      `HTTP endpoint on http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    );
    return this.#address;
  }

  /** Where it listens (the real port when configured with 0); null when not listening. */
  get address(): { host: string; port: number } | null {
    return this.#address;
  }

  /** Why it is not listening, if it could not. */
  get error(): string | null {
    return this.#error;
  }

  /** Where it listens, or why it could not. */
  stats(): { readonly address: { host: string; port: number } | null; readonly error: string | null } {
    return { address: this.#address, error: this.#error };
  }

  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
    this.#address = null;
  }

  /**
   * A response handed over whole (/metrics of a large fleet, the end of an export) that the client
   * does not take within the write timeout is cut too: it would otherwise stay in memory as long as
   * the client keeps the connection open without reading.
   */
  #cutIfNeverTaken(res: ServerResponse): void {
    if (res.writableFinished || res.destroyed) return;
    const writeTimeoutMs = this.#options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      this.#logger.warn(
        { client: res.socket?.remoteAddress, writeTimeoutMs },
        `HTTP: the client took nothing for ${writeTimeoutMs} ms; response cut`,
      );
      res.destroy();
    }, writeTimeoutMs);
    timer.unref();
    const done = () => clearTimeout(timer);
    res.once('finish', done);
    res.once('close', done);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/api/ack') {
      await this.#ack(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: `${req.method} is not allowed; use GET` }, { allow: 'GET, HEAD' });
      return;
    }
    if (!authorised(this.#options.auth ?? null, req, url.pathname)) {
      sendJson(res, 401, { error: 'authentication required' }, { 'www-authenticate': AUTH_CHALLENGE });
      return;
    }
    // GET / answered the endpoint list before it was the dashboard: a client asking for JSON only still gets it.
    const accept = req.headers.accept ?? '';
    const wantsList =
      url.pathname === '/' && accept.includes('application/json') && !accept.includes('text/html');
    try {
      switch (wantsList ? '/api' : url.pathname) {
        case '/api':
          sendJson(res, 200, {
            name: 'kasa-monitor',
            endpoints: [
              '/ (the dashboard)',
              '/device?id=',
              '/health',
              '/metrics',
              '/api/devices',
              '/api/readings?device=&from=&to=&format=json|csv',
              '/api/series?device=&from=&to=&points=&resolution=auto|raw|minute|hour',
              '/api/daily-energy?device=&days=',
              '/api/energy?period=day|month&from=&to=&device=',
              'POST /api/ack',
            ],
          });
          return;
        case '/api/series':
          await this.#dashboardRead(res, async () => {
            const result = await this.#sources.readers.series(parseSeriesQuery(url.searchParams, Date.now()));
            // Buckets further apart than this are a gap (no readings), to be drawn as one.
            const gapLimitMs = this.#options.energy?.().gapLimitMs ?? 0;
            return { ...result, gap_ms: Math.max(gapLimitMs, Math.ceil(2.5 * result.step_ms)) };
          });
          return;
        case '/api/daily-energy':
          await this.#dashboardRead(res, () =>
            this.#sources.readers.dailyEnergy(
              parseEnergyQuery(
                url.searchParams,
                Date.now(),
                this.#options.energy?.() ?? { timeZone: 'UTC', gapLimitMs: 900_000 },
              ),
            ),
          );
          return;
        case '/health':
          await this.#health(res);
          return;
        case '/metrics':
          await this.#metrics(res);
          return;
        case '/api/devices':
          this.#devices(res);
          return;
        case '/api/readings':
          await this.#readings(url, res);
          return;
        case '/api/energy':
          await this.#energy(url, res);
          return;
        default:
          await this.#asset(url.pathname, req, res);
          return;
      }
    } catch (error) {
      if (error instanceof ClientGone) return;
      if (error instanceof HttpProblem) {
        if (!res.headersSent) sendJson(res, error.status, { error: error.message }, { ...error.headers });
        else res.destroy();
        return;
      }
      throw error;
    }
  }

  /**
   * POST /api/ack: the operator saw the database incidents. Only a POST with a JSON content type: a
   * web page cannot send that cross-origin without a CORS preflight, which this server never grants.
   */
  async #ack(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: `${req.method} is not allowed; use POST` }, { allow: 'POST' });
      return;
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      sendJson(res, 415, { error: 'send Content-Type: application/json' });
      return;
    }
    if (this.#sources.acknowledge === undefined) {
      sendJson(res, 503, { error: 'the supervisor is not running' });
      return;
    }
    const { acknowledged, report } = await this.#sources.acknowledge();
    sendJson(res, 200, { acknowledged, status: report.status });
  }

  /** A dashboard file, or 404. */
  async #asset(pathname: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const asset = this.#assets.find(pathname);
    const bytes = asset === null ? null : await this.#assets.read(asset);
    if (asset === null || bytes === null) throw new HttpProblem(404, `no such endpoint: ${pathname}`);
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': bytes.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      // The pages load and fetch from their own origin only; the browser enforces it too.
      ...(asset.type.startsWith('text/html') ? { 'content-security-policy': DASHBOARD_CSP } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  }

  /** A JSON answer of the reader pool, with bad parameters and storage errors as HTTP statuses. */
  async #dashboardRead(res: ServerResponse, read: () => Promise<unknown>): Promise<void> {
    let body: unknown;
    try {
      body = await read();
    } catch (error) {
      if (error instanceof BadParameter) throw new HttpProblem(400, error.message);
      throw storageProblem(error);
    }
    const text = JSON.stringify(body);
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  }

  async #health(res: ServerResponse): Promise<void> {
    let report = this.#sources.health();
    if (report === null) throw new HttpProblem(503, 'the supervisor is not running');
    if (report.checked_at === null) report = await this.#sources.refreshHealth();
    sendJson(res, report.status === 'failed' ? 503 : 200, report);
  }

  async #metrics(res: ServerResponse): Promise<void> {
    this.#registry ??= import('./metrics.js').then((m) => m.createMetricsRegistry(this.#metricsSource));
    // A failed load is not kept: the next scrape tries again.
    const registry = await this.#registry.catch((error: unknown) => {
      this.#registry = null;
      throw error;
    });
    const text = await registry.metrics();
    res.writeHead(200, {
      'content-type': registry.contentType,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  }

  #devices(res: ServerResponse): void {
    const latest = this.#sources.latest;
    // Newer plugs (port 20002): their transport, and the ones not polled with what is wrong.
    const smartPlugs = this.#sources.status()?.discovery.smartPlugs ?? [];
    const smartById = new Map(
      smartPlugs.flatMap((p) => (p.deviceId === null ? [] : [[p.deviceId, p] as const])),
    );
    const devices: Record<string, unknown>[] = this.#sources.devices().map((d) => ({
      device_id: d.id,
      transport: smartById.get(d.id)?.transport ?? 'legacy',
      alias: d.alias,
      model: d.model,
      host: d.host,
      port: d.port,
      state: d.state.kind,
      state_since: new Date(d.state.since).toISOString(),
      has_emeter: d.hasEmeter,
      polled: d.polled,
      first_seen: new Date(d.firstSeenMs).toISOString(),
      last_seen: new Date(d.lastSeenMs).toISOString(),
      channels: d.channels.map((c) => {
        const r = latest.get(c.id);
        return {
          device_id: c.id,
          alias: c.alias,
          parent_id: c.parentId,
          latest:
            r === undefined
              ? null
              : {
                  time: new Date(r.tsMs).toISOString(),
                  power_w: r.powerMw / 1000,
                  voltage_v: milliToUnit(r.voltageMv),
                  current_a: milliToUnit(r.currentMa),
                  total_wh: r.totalWh,
                },
        };
      }),
    }));
    const known = new Set(this.#sources.devices().map((d) => d.id));
    for (const p of smartPlugs) {
      if (p.problem === null || (p.deviceId !== null && known.has(p.deviceId))) continue;
      devices.push({
        device_id: p.deviceId,
        transport: p.transport,
        alias: p.alias,
        model: p.model,
        host: p.host,
        port: p.httpPort,
        mac: p.mac,
        state: p.problem,
        state_since: new Date(p.sinceMs).toISOString(),
        advice: p.advice,
        has_emeter: null,
        polled: false,
        channels: [],
      });
    }
    sendJson(res, 200, { devices });
  }

  /**
   * Energy and cost per device and period (the JSON of `kasa-monitor energy`, with totals that carry
   * the standing charge separately). Without from/to: the current local month.
   */
  async #energy(url: URL, res: ServerResponse): Promise<void> {
    const params = url.searchParams;
    const kind = (params.get('period') || 'day') as PeriodKind;
    if (kind !== 'day' && kind !== 'month')
      throw new HttpProblem(400, `period must be day or month, got '${kind}'`);
    const readers = this.#sources.readers;
    const settings = this.#sources.energySettings?.();
    if (settings === undefined || readers.energyReport === undefined)
      throw new HttpProblem(503, 'energy reports are not available');
    const zone = settings.timeZone;
    const nowMs = Date.now();
    const time = (name: 'from' | 'to'): number | undefined => {
      const text = params.get(name);
      if (text === null || text === '') return undefined;
      try {
        return parseLocalDate(text, zone) ?? parseTime(text, nowMs, name);
      } catch (error) {
        throw new HttpProblem(400, error instanceof Error ? error.message : String(error));
      }
    };
    const calendar = zoneCalendar(zone);
    const fromMs = time('from') ?? calendar.monthStart(nowMs);
    const toMs = time('to') ?? calendar.nextMonthStart(calendar.monthStart(nowMs));
    if (toMs <= fromMs) throw new HttpProblem(400, 'to must be later than from');
    const device = params.get('device');
    let report: EnergyReport;
    try {
      report = await readers.energyReport(
        { kind, fromMs, toMs, nowMs, ...(device === null || device === '' ? {} : { device }) },
        settings,
      );
    } catch (error) {
      throw storageProblem(error, device);
    }
    sendJson(res, 200, {
      period: kind,
      time_zone: zone,
      from: new Date(report.fromMs).toISOString(),
      to: new Date(report.toMs).toISOString(),
      currency: report.currency,
      rows: report.rows.map((row) => energyJsonRow(row, report.currency)),
      totals: energyJsonTotals(report),
    });
  }

  async #readings(url: URL, res: ServerResponse): Promise<void> {
    const params = url.searchParams;
    const format = (params.get('format') ?? 'json') as ExportFormat;
    if (format !== 'json' && format !== 'csv')
      throw new HttpProblem(400, `format must be json or csv, got '${format}'`);
    const nowMs = Date.now();
    const time = (name: 'from' | 'to'): number | undefined => {
      const text = params.get(name);
      if (text === null || text === '') return undefined;
      try {
        return parseTime(text, nowMs, name);
      } catch (error) {
        throw new HttpProblem(400, error instanceof Error ? error.message : String(error));
      }
    };
    const toMs = time('to');
    const fromMs = time('from') ?? (toMs ?? nowMs) - DEFAULT_READINGS_WINDOW_MS;
    try {
      checkTimeRange(fromMs, toMs, { from: 'from', to: 'to' });
    } catch (error) {
      throw new HttpProblem(400, error instanceof Error ? error.message : String(error));
    }
    const device = params.get('device');
    const query: ExportQuery = {
      fromMs,
      ...(toMs === undefined ? {} : { toMs }),
      ...(device === null || device === '' ? {} : { device }),
    };
    let sentBytes = 0;
    const sink = async (bytes: Uint8Array): Promise<void> => {
      if (res.destroyed) throw new ClientGone();
      if (!res.headersSent) {
        res.writeHead(200, {
          'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
          'cache-control': 'no-store',
        });
      }
      sentBytes += bytes.byteLength;
      if (!res.write(bytes)) {
        const writeTimeoutMs = this.#options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
        if (!(await drainedOrClosed(res, writeTimeoutMs))) {
          // The client stopped reading: cut the response so its reader connection is free again.
          this.#logger.warn(
            { client: res.socket?.remoteAddress, sentBytes, writeTimeoutMs },
            `/api/readings: the client took nothing for ${writeTimeoutMs} ms; response cut`,
          );
          res.destroy();
        }
        if (res.destroyed) throw new ClientGone();
      }
    };
    try {
      await this.#sources.readers.exportReadings(query, format, sink);
    } catch (error) {
      if (error instanceof ClientGone) throw error;
      if (res.headersSent) {
        // Too late for a status: cut the response so the client sees it is incomplete.
        this.#logger.warn({ err: error }, '/api/readings failed while sending');
        res.destroy();
        return;
      }
      throw storageProblem(error, query.device);
    }
    res.end();
  }
}
