/**
 * `npm run bench`: every benchmark, each figure next to a baseline measured in the same run.
 *
 *   node dist/scripts/bench.js [--quick] [--json] [--only NAME]...
 *
 * NAME: writer, bytes, e2e, discovery, rss, influx, lag, lifecycle, dashboard, tariff, mqtt, smart. --quick runs shorter versions (a smoke run, figures less
 * stable; the rows say what was shortened). --json prints one JSON object instead of the table.
 * Progress goes to stderr. Everything runs on loopback: simulated plugs on 127.0.50.x-127.0.61.x,
 * ports 23100-23400 (newer plugs: 127.0.56.x-127.0.57.x, ports 23300, 23302, 23380), broadcast
 * 127.255.255.255.
 *
 *   node dist/scripts/bench.js --soak [--soak-minutes 30]
 *
 * runs only the memory soak: the daemon process against 1,000 channels, its RSS and its trend.
 */
import { parseArgs } from 'node:util';
import { benchDaemon, type DaemonBenchResult } from './bench/daemon.js';
import { benchDashboard } from './bench/dashboard.js';
import { round } from './bench/fleet.js';
import { benchInflux } from './bench/influx.js';
import { benchLag } from './bench/lag.js';
import { benchLifecycle } from './bench/lifecycle.js';
import { benchMqtt } from './bench/mqtt.js';
import {
  benchSideBySideRss,
  benchSmallFleetRss,
  benchSoak,
  type DaemonRssResult,
  idleNodeRss,
  type ProcMemory,
} from './bench/rss.js';
import { benchSmart } from './bench/smart.js';
import { benchTariff } from './bench/tariff.js';
import { benchWriter, type WriterBenchResult } from './bench/writer.js';

const NAMES = [
  'writer',
  'bytes',
  'e2e',
  'discovery',
  'rss',
  'influx',
  'lag',
  'lifecycle',
  'dashboard',
  'tariff',
  'mqtt',
  'smart',
] as const;
type Name = (typeof NAMES)[number];

interface Row {
  readonly figure: string;
  readonly unit: string;
  readonly measured: number | null;
  /** The baseline measured in the same run, or null when the target is absolute. */
  readonly baseline: number | null;
  /** measured / baseline. */
  readonly ratio: number | null;
  readonly target: string;
  /** null: not measured (error). */
  readonly pass: boolean | null;
  readonly note: string;
}

interface Plan {
  readonly writer: { rows: number; channels: number };
  readonly bytes: { rows: number; channels: number };
  readonly daemon: { repeats: number; windowS: number; warmupS: number; discoveryRuns: number; rssS: number };
  readonly smallRssS: number;
  /** The 320-channel daemon process next to the bare library loop. */
  readonly sideBySideS: number;
}

const FULL: Plan = {
  writer: { rows: 1_000_000, channels: 1000 },
  bytes: { rows: 1_000_000, channels: 100 },
  daemon: { repeats: 3, windowS: 30, warmupS: 5, discoveryRuns: 5, rssS: 120 },
  smallRssS: 300,
  sideBySideS: 120,
};

const QUICK: Plan = {
  writer: { rows: 200_000, channels: 1000 },
  bytes: { rows: 300_000, channels: 100 },
  daemon: { repeats: 1, windowS: 10, warmupS: 2, discoveryRuns: 2, rssS: 30 },
  smallRssS: 30,
  sideBySideS: 30,
};

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);

function errorRow(figure: string, unit: string, target: string, error: unknown): Row {
  const message = error instanceof Error ? error.message : String(error);
  return {
    figure,
    unit,
    measured: null,
    baseline: null,
    ratio: null,
    target,
    pass: null,
    note: `error: ${message}`,
  };
}

function ratioOf(measured: number, baseline: number, digits = 2): number {
  return round(measured / baseline, digits);
}

function writerRow(r: WriterBenchResult, plan: Plan['writer']): Row {
  return {
    figure: '1. writer throughput into SQLite (daemon writer vs raw better-sqlite3)',
    unit: 'rows/s',
    measured: r.daemonRowsPerSec,
    baseline: r.rawRowsPerSec,
    ratio: r.ratio,
    target: 'ratio >= 0.5',
    pass: r.ratio >= 0.5,
    note: `${plan.rows.toLocaleString('en')} readings over ${plan.channels} channels, batches of 1000, WAL + synchronous=FULL`,
  };
}

function bytesRow(r: WriterBenchResult, plan: Plan['bytes']): Row {
  const perChannel = Math.round(plan.rows / plan.channels);
  return {
    figure: '5. bytes per stored reading',
    unit: 'B',
    measured: r.bytesPerReading,
    baseline: null,
    ratio: null,
    target: '<= 32',
    pass: r.bytesPerReading <= 32,
    note: `database file after the daemon's writer closed it, ${plan.channels} channels x ${perChannel.toLocaleString('en')} readings each`,
  };
}

function daemonRows(r: DaemonBenchResult, plan: Plan['daemon'], quick: boolean): Row[] {
  const rows: Row[] = [];
  const e = r.e2e;
  if (e !== null) {
    rows.push({
      figure: '2a. CPU per 1,000 readings end to end (Daemon vs bare library poll)',
      unit: 'CPU-s',
      measured: e.daemonMedian,
      baseline: e.bareMedian,
      ratio: e.ratio,
      target: 'ratio <= 1.3',
      pass: e.ratio <= 1.3,
      note:
        `${r.fleet.channels} channels (${r.fleet.devices} devices) at 1 Hz, ${e.transport}, ${e.concurrency} in flight; ` +
        `median of ${plan.repeats} alternating ${plan.windowS} s windows; daemon ${e.daemon.join('/')}, bare ${e.bare.join('/')}; ` +
        `in the windows the Daemon polled ${e.daemonReadings} readings and committed ${e.daemonCommitted}, the bare library ${e.bareReadings} (${e.bareFailures} failures)`,
    });
    const c = e.cycles;
    const clean = c.missedTicks === 0 && c.skippedOverlap === 0 && c.readings === c.expectedReadings;
    rows.push({
      figure: `2b. missed cycles, ${r.fleet.channels} channels at 1 Hz`,
      unit: 'cycles',
      measured: c.missedTicks,
      baseline: null,
      ratio: null,
      target: '0',
      pass: clean,
      note:
        `${c.ticks} ticks over ${plan.repeats} daemon runs (startup included): ${c.lateTicks} late, max ${c.maxTickLateMs} ms late; ` +
        `in-window ${c.readings}/${c.expectedReadings} readings, ${c.skippedOverlap} skipped for overlap, ` +
        `${c.pollFailures} poll failures, ${c.droppedFromQueue} dropped`,
    });
    const p99 = e.commitLatency.p99Ms;
    rows.push({
      figure: '2c. p99 poll-to-commit latency',
      unit: 'ms',
      measured: p99,
      baseline: null,
      ratio: null,
      target: '< 2000',
      pass: p99 === null ? null : p99 < 2000,
      note: `writer.stats().commitLatency, worst 8192-reading window sampled every 2 s; p50 ${e.commitLatency.p50Ms} ms, max ${e.commitLatency.maxMs} ms`,
    });
  }
  const d = r.discovery;
  if (d !== null) {
    rows.push({
      figure: `4. discovery of ${d.expected} plugs, one round`,
      unit: 'ms',
      measured: round(d.medianMsToAll, 1),
      baseline: null,
      ratio: null,
      target: `< 1000, all ${d.expected} found`,
      pass: d.targetMet,
      note: `time to the last reply, median of ${d.found.length} rounds (${d.msToAll.join('/')} ms); found ${d.found.join('/')}; receive buffer ${d.receiveBufferBytes} B granted`,
    });
  }
  if (typeof r.rss === 'string') {
    rows.push(errorRow(`3b. daemon RSS, ${r.fleet.channels} channels at 1 Hz`, 'MiB', '<= 150', r.rss));
  } else if (r.rss !== null) {
    rows.push(
      rssRow(
        `3b. daemon RSS, ${r.fleet.channels} channels at 1 Hz after ${r.rss.durationS} s`,
        r.rss,
        150,
        quick ? 'quick: shortened run' : '',
      ),
    );
  }
  return rows;
}

let idle: ProcMemory | null = null;

function rssRow(figure: string, r: DaemonRssResult, limitMiB: number, extra: string): Row {
  const baseline = idle?.rssMiB ?? null;
  return {
    figure,
    unit: 'MiB',
    measured: r.rssMiB,
    baseline,
    ratio: baseline === null ? null : ratioOf(r.rssMiB, baseline),
    target: `<= ${limitMiB}`,
    pass: r.rssMiB <= limitMiB,
    note:
      `${extra === '' ? '' : `${extra}; `}separate process (kasa-monitor run), VmRSS; peak ${r.hwmMiB} MiB; up to ${r.maxThreads} threads; ` +
      `stored ${r.readingsStored} readings from ${r.channelsStored} channels (${r.readingsPerChannelSecond}/channel/s); ` +
      `baseline = idle node${idle === null ? '' : ` (${idle.rssMiB} MiB)`}`,
  };
}

function formatNumber(value: number | null): string {
  if (value === null) return '-';
  if (Number.isInteger(value) && Math.abs(value) >= 10_000) return value.toLocaleString('en');
  return String(value);
}

function printTable(rows: readonly Row[], quick: boolean): void {
  const header = ['figure', 'unit', 'measured', 'baseline', 'ratio', 'target', 'result'];
  const cells = rows.map((r) => [
    r.figure,
    r.unit,
    formatNumber(r.measured),
    formatNumber(r.baseline),
    formatNumber(r.ratio),
    r.target,
    r.pass === null ? 'ERROR' : r.pass ? 'pass' : 'MISS',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) =>
    c
      .map((text, i) => (i >= 2 && i <= 4 ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0)))
      .join('  ');
  console.log(`kasa-monitor benchmarks${quick ? ' (--quick: shortened, a smoke run)' : ''}`);
  console.log('baseline = measured in this run; ratio = measured / baseline\n');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
  console.log('\nnotes:');
  for (const r of rows) console.log(`  ${r.figure.split(' ')[0]} ${r.note}`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
      soak: { type: 'boolean', default: false },
      'soak-minutes': { type: 'string', default: '30' },
    },
  });
  if (values.soak) return soak(Number(values['soak-minutes']), values.json);
  if (values.help) {
    console.log(`usage: node dist/scripts/bench.js [--quick] [--json] [--only ${NAMES.join('|')}]...`);
    console.log(
      '       node dist/scripts/bench.js --soak [--soak-minutes 30] [--json]   (1,000-channel RSS soak; not in CI)',
    );
    return 0;
  }
  const only = (values.only ?? []).flatMap((v) => v.split(','));
  for (const name of only) {
    if (!(NAMES as readonly string[]).includes(name)) {
      console.error(`unknown benchmark '${name}'; one of ${NAMES.join(', ')}`);
      return 64;
    }
  }
  const selected = new Set<Name>(only.length === 0 ? NAMES : (only as Name[]));
  const quick = values.quick;
  const plan = quick ? QUICK : FULL;
  const started = Date.now();
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};

  // The small-fleet RSS run takes minutes but almost no CPU: it runs, in its own processes, while
  // the other benchmarks do.
  let smallRss: Promise<Row> | null = null;
  if (selected.has('rss')) {
    progress('idle node RSS');
    idle = await idleNodeRss();
    details['idleNode'] = idle;
    progress(`daemon process with 20 plugs for ${plan.smallRssS} s (in the background)`);
    const figure = `3a. daemon RSS, 20 plugs at 1 Hz after ${plan.smallRssS} s`;
    smallRss = benchSmallFleetRss({ durationS: plan.smallRssS }).then(
      (r) => {
        details['rssSmallFleet'] = r;
        return rssRow(figure, r, 70, quick ? 'quick: 30 s instead of 5 min' : '');
      },
      (error: unknown) => errorRow(figure, 'MiB', '<= 70', error),
    );
    // Let it start up (module loading, discovery) before anything is timed here.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  }

  if (selected.has('writer')) {
    progress(`writer throughput, ${plan.writer.rows} readings`);
    try {
      const r = await benchWriter(plan.writer);
      details['writer'] = r;
      rows.push(writerRow(r, plan.writer));
    } catch (error) {
      rows.push(errorRow('1. writer throughput', 'rows/s', 'ratio >= 0.5', error));
    }
  }

  const wantDaemon = selected.has('e2e') || selected.has('discovery') || selected.has('rss');
  const daemonIndex = rows.length;
  if (wantDaemon) {
    const p = plan.daemon;
    const options = {
      repeats: selected.has('e2e') ? p.repeats : 0,
      windowS: p.windowS,
      warmupS: p.warmupS,
      discoveryRuns: selected.has('discovery') ? p.discoveryRuns : 0,
      rssS: selected.has('rss') ? p.rssS : 0,
    };
    progress(
      `fleet of 500 plugs (1,000 channels): discovery ${options.discoveryRuns} rounds, ` +
        `${options.repeats} x (${p.windowS} s Daemon + ${p.windowS} s bare library), daemon process ${options.rssS} s`,
    );
    try {
      const r = await benchDaemon(options);
      details['daemon'] = r;
      rows.push(...daemonRows(r, p, quick));
    } catch (error) {
      rows.push(errorRow('2-4. fleet benchmarks', '-', '-', error));
    }
  }

  if (selected.has('bytes')) {
    progress(`bytes per reading, ${plan.bytes.channels} channels x ${plan.bytes.rows / plan.bytes.channels}`);
    try {
      const r = await benchWriter(plan.bytes);
      details['bytes'] = r;
      rows.push(bytesRow(r, plan.bytes));
    } catch (error) {
      rows.push(errorRow('5. bytes per stored reading', 'B', '<= 32', error));
    }
  }

  if (selected.has('influx')) {
    progress('InfluxDB forwarding into VictoriaMetrics vs raw fetch, and catch-up after an outage');
    try {
      const r = await benchInflux(quick ? { points: 50_000, repeats: 1 } : {});
      details['influx'] = r;
      rows.push({
        figure: '6. Influx forwarding into VictoriaMetrics (forwarder vs raw fetch POST)',
        unit: 'points/s',
        measured: Math.round(r.forwardPointsPerSec),
        baseline: Math.round(r.rawFetchPointsPerSec),
        ratio: Math.round(r.ratio * 100) / 100,
        target: 'ratio >= 0.5',
        pass: r.ratio >= 0.5,
        note: `same line protocol, same batch size; SQLite write rate with the outbox on / off: ${r.outboxWriteRatio.toFixed(2)}`,
      });
      rows.push({
        figure: `7. Influx catch-up after a ${r.catchUp.outageSeconds / 60}-minute outage, ${r.catchUp.channels} channels at 1 Hz`,
        unit: 's',
        measured: Math.round(r.catchUp.seconds * 100) / 100,
        baseline: null,
        ratio: null,
        target: '-',
        pass: true,
        note: `${r.catchUp.readings.toLocaleString('en')} readings backlogged in the outbox, then forwarded (${Math.round(r.catchUp.pointsPerSec).toLocaleString('en')} points/s)`,
      });
    } catch (error) {
      rows.push(errorRow('6. Influx forwarding', 'points/s', 'ratio >= 0.5', error));
    }
  }

  if (selected.has('lag')) {
    const days = quick ? 30 : 365;
    progress(
      `event-loop lag: export of ${days} days x 20 channels through the reader pool, and a 10 s write lock`,
    );
    try {
      const r = await benchLag({ days, progress });
      details['lag'] = r;
      const setting = `daemon polling 20 simulated plugs at 1 Hz; idle p99 ${r.idle.p99Ms} ms (baseline)`;
      rows.push({
        figure: `8a. event-loop lag p99 while ${r.rows.toLocaleString('en')} readings (${days} days x 20 channels) are exported`,
        unit: 'ms',
        measured: r.export.p99Ms,
        baseline: r.idle.p99Ms,
        ratio: null,
        target: '< 50',
        pass: r.export.p99Ms < 50,
        note: `GET /api/readings?format=csv to a client process, read and formatted in a reader worker; max ${r.export.maxMs} ms; ${setting}${quick ? '; quick: 30 days' : ''}`,
      });
      rows.push({
        figure: `8b. event-loop lag p99 while another process holds the write lock for ${r.lock.seconds} s`,
        unit: 'ms',
        measured: r.lock.p99Ms,
        baseline: r.idle.p99Ms,
        ratio: null,
        target: '< 50',
        pass: r.lock.p99Ms < 50,
        note: `max ${r.lock.maxMs} ms; ${r.lock.failedWrites} batch writes failed with SQLITE_BUSY meanwhile, ${r.lock.writtenAfter} readings written in the 5 s after; ${setting}`,
      });
      rows.push({
        figure: '8c. export throughput (GET /api/readings through the pool vs raw better-sqlite3 read)',
        unit: 'rows/s',
        measured: r.export.rowsPerSec,
        baseline: r.raw.rowsPerSec,
        ratio: r.exportRatio,
        target: '-',
        pass: true,
        note: `${r.rows.toLocaleString('en')} rows, ${Math.round(r.export.bytes / 1048576)} MiB of CSV in ${r.export.seconds} s (merged in time order, formatted); raw: one SELECT, rows not formatted, ${r.raw.seconds} s; database ${Math.round(r.databaseBytes / 1048576)} MiB`,
      });
    } catch (error) {
      rows.push(errorRow('8. event-loop lag', 'ms', '< 50', error));
    }
  }

  if (selected.has('mqtt')) {
    progress('MQTT: 1,000 channels at 1 Hz with and without publishing to a local Mosquitto');
    try {
      const r = await benchMqtt(quick ? { repeats: 1, windowS: 10, warmupS: 2 } : {});
      details['mqtt'] = r;
      rows.push({
        figure: `12. CPU per 1,000 readings with MQTT (${r.channels} channels at 1 Hz, local Mosquitto) vs without`,
        unit: 'CPU s',
        measured: r.withMedian,
        baseline: r.withoutMedian,
        ratio: r.ratio,
        target: 'ratio <= 1.2',
        pass: r.ratio <= 1.2,
        note: `alternating ${r.windowS} s windows in one run; ${r.statesPerReading} states published per committed reading, ${r.dropped} dropped${quick ? '; quick: one window each' : ''}`,
      });
    } catch (error) {
      rows.push(errorRow('12. MQTT CPU per reading', 'CPU s', 'ratio <= 1.2', error));
    }
    progress('MQTT with a tariff: every state carries its cost (refreshed from stored data every 60 s)');
    try {
      const r = await benchMqtt({ ...(quick ? { repeats: 1, windowS: 10, warmupS: 2 } : {}), tariff: true });
      details['mqttTariff'] = r;
      rows.push({
        figure: `12b. CPU per 1,000 readings with MQTT and a tariff (cost in each state) vs without MQTT`,
        unit: 'CPU s',
        measured: r.withMedian,
        baseline: r.withoutMedian,
        ratio: r.ratio,
        target: 'ratio <= 1.2',
        pass: r.ratio <= 1.2,
        note: `alternating ${r.windowS} s windows in one run; ${r.statesPerReading} states per committed reading${quick ? '; quick: one window each' : ''}`,
      });
    } catch (error) {
      rows.push(errorRow('12b. MQTT with a tariff, CPU per reading', 'CPU s', 'ratio <= 1.2', error));
    }
  }

  if (selected.has('lifecycle')) {
    const plan = quick ? { channels: 20, days: 1, repeats: 3 } : { channels: 50, days: 2, repeats: 5 };
    progress(
      `data lifecycle: ${plan.channels} channels x ${plan.days} day(s) at a 10 s poll, rollups on/off x ${plan.repeats}`,
    );
    try {
      const r = await benchLifecycle(plan);
      details['lifecycle'] = r;
      const d = r.perChannelDay;
      const setting = `${r.channels} channels x ${r.days} day(s) at a 10 s poll (${r.readingsPerRun.toLocaleString('en')} readings), through the daemon's writer${quick ? '; quick: shortened' : ''}`;
      rows.push({
        figure: '9a. disk per channel per day at a 10 s poll, rollups included',
        unit: 'KB',
        measured: Math.round(r.bytesPerChannelDay / 100) / 10,
        baseline: null,
        ratio: null,
        target: '-',
        pass: true,
        note: `raw ${d.raw} B + minute ${d.minute} B + hour ${d.hour} B + day ${d.day} B (table pages, dbstat); whole file ${r.fileBytesPerChannelDay} B; ${setting}`,
      });
      rows.push({
        figure: '9b. disk per channel per year, default retention (raw 30 d, minutes 1 y, hours, days)',
        unit: 'MB',
        measured: Math.round(r.bytesPerChannelYearDefault / 100_000) / 10,
        baseline: null,
        ratio: null,
        target: '-',
        pass: true,
        note: `keeping everything for a year instead: ${Math.round(r.bytesPerChannelYearAll / 100_000) / 10} MB per channel`,
      });
      rows.push({
        figure: '9c. writer throughput with rollups on vs off',
        unit: 'rows/s',
        measured: r.rollupsOnRowsPerSec,
        baseline: r.rollupsOffRowsPerSec,
        ratio: r.ratio,
        target: 'ratio >= 0.7',
        pass: r.ratio >= 0.7,
        note: `medians of ${r.onRuns.length} alternating runs each (on ${r.onRuns.join('/')}, off ${r.offRuns.join('/')}); WAL + synchronous=FULL, batches of 1000; ${setting}`,
      });
    } catch (error) {
      rows.push(errorRow('9. data lifecycle', '-', 'ratio >= 0.7', error));
    }
  }

  if (selected.has('dashboard')) {
    const days = quick ? 7 : 30;
    progress(`dashboard read paths: 100 channels x ${days} days at a 10 s poll`);
    try {
      const r = await benchDashboard({ channels: 100, days, repeats: quick ? 10 : 30, progress });
      details['dashboard'] = r;
      const setting = `${r.channels} channels x ${r.days} days at 10 s (${r.rawReadings.toLocaleString('en')} raw readings of the last day through the writer, ${r.rollupRows.toLocaleString('en')} rollup rows before; ${Math.round(r.databaseBytes / 1048576)} MiB)${quick ? '; quick: 7 days' : ''}`;
      const page = (figure: string, t: typeof r.overview, what: string): Row => ({
        figure,
        unit: 'ms',
        measured: t.http.medianMs,
        baseline: t.direct.medianMs,
        ratio: t.direct.medianMs > 0 ? ratioOf(t.http.medianMs, t.direct.medianMs) : null,
        target: '< 200',
        pass: t.http.medianMs < 200,
        note: `median; p95 ${t.http.p95Ms} ms (direct ${t.direct.p95Ms} ms); ${what} (alone: ${Object.entries(
          r.perRequestMedianMs,
        )
          .filter(([path]) => (t === r.overview ? !path.includes('device=') : path.includes('device=')))
          .map(([path, ms]) => `${path.split('?')[0]} ${ms} ms`)
          .join(
            ', ',
          )}), ${Math.round(t.bytes / 1024)} KiB of JSON; baseline: the same queries on a better-sqlite3 connection in this thread; ${setting}`,
      });
      rows.push(
        page(
          '10a. dashboard first paint data (HTTP + reader pool vs direct SQLite)',
          r.overview,
          '/api/devices + /api/daily-energy?days=1 + /api/series 1 h of every channel, at once',
        ),
      );
      rows.push(
        page(
          '10b. dashboard 30-day device page data (HTTP + reader pool vs direct SQLite)',
          r.device,
          '/api/devices + /api/series 30 d (hour rollups) + /api/daily-energy?days=30, at once',
        ),
      );
    } catch (error) {
      rows.push(errorRow('10. dashboard read paths', 'ms', '< 200', error));
    }
  }

  if (selected.has('tariff')) {
    const plan = quick ? { channels: 2, days: 60 } : { channels: 5, days: 365 };
    progress(
      `cost report: ${plan.channels} channels x ${plan.days} days of minute readings, monthly, tariff vs none`,
    );
    try {
      const r = await benchTariff(plan);
      details['tariff'] = r;
      rows.push({
        figure: '11. energy report by month over a year: 07:30 tariff vs no tariff',
        unit: 'ms',
        measured: r.tariffMs,
        baseline: r.plainMs,
        ratio: r.ratio,
        target: 'ratio <= 4',
        pass: r.ratio <= 4,
        note: `${r.channels} channels x ${r.days} days, cost computed from hour rollups (minute rollups only in hours with a change inside) at report time${quick ? '; quick: shortened' : ''}`,
      });
    } catch (error) {
      rows.push(errorRow('11. energy report with a tariff', 'ms', 'ratio <= 4', error));
    }
  }

  if (selected.has('smart')) {
    progress(
      'newer plugs: CPU per reading over KLAP and AES vs legacy UDP, and a port-20002 round with 200 plugs',
    );
    try {
      const r = await benchSmart({ rounds: quick ? 50 : 400, progress });
      details['smart'] = r;
      const setting = `${r.plugs} simulated plugs of each kind in a child process, ${r.rounds} rounds; this process's CPU only`;
      for (const [label, figures] of [
        ['KLAP', r.klap],
        ['AES', r.aes],
      ] as const) {
        const ratio = ratioOf(figures.cpuUsPerReading, r.legacy.cpuUsPerReading);
        rows.push({
          figure: `13${label === 'KLAP' ? 'a' : 'b'}. CPU per reading over ${label} vs the legacy UDP poll`,
          unit: 'µs',
          measured: figures.cpuUsPerReading,
          baseline: r.legacy.cpuUsPerReading,
          ratio,
          target: label === 'KLAP' ? 'ratio <= 2' : '-',
          pass: label === 'KLAP' ? ratio <= 2 && figures.failures === 0 : figures.failures === 0,
          note: `${figures.readings} readings, ${figures.failures} failures; after a warm-up of half as many rounds (sessions, JIT); ${setting}`,
        });
      }
      rows.push({
        figure: `13c. one port-20002 discovery round with ${r.discovery.plugs} simulated newer plugs`,
        unit: 'ms',
        measured: r.discovery.msToLastReply,
        baseline: null,
        ratio: null,
        target: '< 1000',
        pass: r.discovery.msToLastReply < 1000 && r.discovery.found === r.discovery.plugs,
        note: `${r.discovery.found} of ${r.discovery.plugs} replies (time to the last one); logging in to all of them for the first time (handshake + identification) took ${r.discovery.identifyMs} ms more (${r.discovery.identified} identified)`,
      });
    } catch (error) {
      rows.push(errorRow('13. newer plugs (KLAP/AES)', 'µs', 'ratio <= 2', error));
    }
  }

  if (selected.has('rss')) {
    progress(
      `daemon process and a bare tplink-smarthome-api loop, 320 channels at 1 Hz, ${plan.sideBySideS} s side by side`,
    );
    const figure = '3c. daemon RSS, 320 channels at 1 Hz (vs the bare library polling loop)';
    try {
      const r = await benchSideBySideRss({ durationS: plan.sideBySideS });
      details['rssSideBySide'] = r;
      rows.push({
        figure,
        unit: 'MiB',
        measured: r.daemon.rssMiB,
        baseline: r.bare.rssMiB,
        ratio: r.ratio,
        target: 'ratio <= 1.1',
        pass: r.ratio <= 1.1,
        note:
          `${r.channels} channels (${r.devices} devices), both processes at once for ${r.durationS} s, VmRSS; ` +
          `baseline = tplink-smarthome-api getRealtime over every channel each second (udp, 64 in flight), peak ${r.bare.hwmMiB} MiB; ` +
          `daemon peak ${r.daemon.hwmMiB} MiB, stored ${r.daemon.readingsPerChannelSecond}/channel/s; idle node ${idle?.rssMiB ?? '-'} MiB` +
          (quick ? '; quick: shortened run' : ''),
      });
    } catch (error) {
      rows.push(errorRow(figure, 'MiB', 'ratio <= 1.1', error));
    }
  }

  if (smallRss !== null) {
    progress('waiting for the 20-plug daemon process');
    rows.splice(daemonIndex, 0, await smallRss);
  }
  rows.sort((a, b) => a.figure.localeCompare(b.figure, 'en', { numeric: true }));

  const elapsedS = Math.round((Date.now() - started) / 1000);
  if (values.json) {
    console.log(JSON.stringify({ quick, elapsedS, rows, details }, null, 2));
  } else {
    printTable(rows, quick);
    console.log(`\n${elapsedS} s in all`);
  }
  return 0;
}

/** `--soak`: the 1,000-channel daemon process for `minutes`, its RSS and trend; nothing else. */
async function soak(minutes: number, json: boolean): Promise<number> {
  if (!Number.isFinite(minutes) || minutes <= 0) {
    console.error(`--soak-minutes: '${minutes}' is not a positive number of minutes`);
    return 64;
  }
  progress('idle node RSS');
  idle = await idleNodeRss();
  progress(`soak: daemon process, 1,000 channels at 1 Hz for ${minutes} min`);
  const r = await benchSoak({ minutes });
  const flat = Math.abs(r.slopeMiBPer10Min) <= 1;
  const rows: Row[] = [
    rssRow(
      `3d. daemon RSS, ${r.channels} channels at 1 Hz after a ${minutes}-minute soak`,
      r.daemon,
      150,
      '',
    ),
    {
      figure: "3e. RSS trend over the soak's second half",
      unit: 'MiB/10min',
      measured: r.slopeMiBPer10Min,
      baseline: null,
      ratio: null,
      target: '|trend| <= 1',
      pass: flat,
      note: `least-squares slope of the per-minute medians of VmRSS (sampled every ${r.sampleEveryS} s); ${r.afterWarmupMiB} MiB after the first tenth, ${r.daemon.rssMiB} MiB at the end, peak ${r.daemon.hwmMiB} MiB`,
    },
  ];
  if (json) console.log(JSON.stringify({ soak: true, rows, details: { idleNode: idle, soak: r } }, null, 2));
  else printTable(rows, false);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
