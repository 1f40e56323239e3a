import { backfillOnce } from '../../backfill/targets.js';
import {
  type PeriodKind,
  parseLocalDate,
  periodCost,
  periodSource,
  zoneCalendar,
} from '../../energy/index.js';
import { createRootLogger } from '../../log/logger.js';
import { csvField } from '../../shared/decimal.js';
import { visibleText } from '../../shared/text.js';
import { parseTime } from '../../shared/time.js';
import { type EnergyReport, type EnergyReportRow, energyReport } from '../../storage/sqlite/index.js';
import { boolFlag, type Command, stringFlag } from '../command.js';
import { energyJsonRow, energyTotals, kwh, money } from '../energy-json.js';
import { EXIT_OK, UsageError } from '../exit-codes.js';
import { existingDatabase, loadForCommand } from '../load-config.js';

export const ENERGY_CSV_HEADER = 'period,device_id,alias,energy_kwh,cost,currency,source';

const HOUR_MS = 3_600_000;

export type EnergyRow = EnergyReportRow;

/** A --from/--to value: a local date or month in the zone ('2026-11-26', '2026-11'), or any export time. */
function parseBound(text: string, zone: string, nowMs: number, flag: string): number {
  return parseLocalDate(text, zone) ?? parseTime(text, nowMs, flag);
}

function localTime(ms: number, zone: string): string {
  const p = zoneCalendar(zone).parts(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${p.year}-${pad(p.month)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}`;
}

function span(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 === 0 ? `${hours}h` : `${hours}h ${minutes % 60}m`;
}

function costText(row: EnergyReportRow): string {
  const cost = periodCost(row.cost);
  return cost === null ? '' : money(cost);
}

function tableText(report: EnergyReport, zone: string, gapLimitMs: number): string {
  const { rows } = report;
  // With no tariff nothing is priced: saying "partly unpriced" on every row would only mislead.
  const priced = report.currency !== null;
  const header = ['period', 'device_id', 'alias', 'energy_kwh', 'cost', 'source', 'covered_h', 'note'];
  const cells = rows.map((row) => {
    const { channel, period, current } = row;
    const notes: string[] = [];
    if (current) notes.push('so far');
    if (period.resets > 0) notes.push(`${period.resets} counter restart${period.resets === 1 ? '' : 's'}`);
    if (period.gaps.length > 0) notes.push(`${period.gaps.length} gap${period.gaps.length === 1 ? '' : 's'}`);
    if (priced && row.cost.unpricedMs > 0) notes.push('partly unpriced');
    return [
      period.label,
      // From the plug: on a terminal an escape sequence in an id or alias must show, not act.
      visibleText(channel.deviceId),
      visibleText(channel.alias),
      kwh(row.cost.energyWh),
      costText(row),
      periodSource(row.cost),
      (period.coveredMs / HOUR_MS).toFixed(1),
      notes.join(', '),
    ];
  });
  const totals = energyTotals(report);
  const unit = report.currency === null ? '' : ` ${report.currency}`;
  cells.push([
    'total',
    '',
    '',
    kwh(totals.energyWh),
    totals.cost === null ? '' : money(totals.cost),
    '',
    '',
    priced && totals.cost === null ? 'cost: part of it is unpriced' : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const right = new Set([3, 4, 6]);
  const line = (c: readonly string[]) =>
    c
      .map((text, i) => (right.has(i) ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  let text = `${line(header)}\n`;
  for (const c of cells.slice(0, -1)) text += `${line(c)}\n`;
  text += `${line(cells.at(-1) ?? [])}\n`;
  if (report.currency !== null) {
    text += `\nStanding charge (not split over devices): ${totals.standingCharge === null ? 'unknown (no tariff period on some days)' : `${money(totals.standingCharge)}${unit}`}\n`;
    text += `Total with standing charge: ${totals.total === null ? 'not known (part of it is unpriced)' : `${money(totals.total)}${unit}`}\n`;
  }
  const gaps = gapLines(rows, zone);
  if (gaps.length > 0) {
    text += `\nGaps (no readings for longer than ${span(gapLimitMs)}; times in ${zone}):\n`;
    for (const g of gaps) text += `  ${g}\n`;
  }
  return text;
}

/** One write; a closed pipe (`| head`) becomes an error of the command, not an unhandled event. */
function writeAll(out: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    out.once('error', onError);
    out.write(text, (error) => {
      if (error) return;
      out.off('error', onError);
      resolve();
    });
  });
}

/** One line per distinct gap of a channel. */
function gapLines(rows: readonly EnergyReportRow[], zone: string): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const { channel, period } of rows) {
    for (const gap of period.gaps) {
      const key = `${channel.deviceId}@${gap.fromMs}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const counter = `the counter shows ${kwh(gap.energyWh)} kWh${gap.reset ? ' since it restarted (at least)' : ''}`;
      lines.push(
        `${visibleText(channel.alias || channel.deviceId)}: ${localTime(gap.fromMs, zone)} to ${localTime(gap.toMs, zone)} (${span(gap.toMs - gap.fromMs)}): ${counter}, spread evenly over the gap (estimated)`,
      );
    }
  }
  return lines;
}

export const energyCommand: Command = {
  name: 'energy',
  summary: 'energy used and what it cost, per device per day or month, from the plugs’ counters',
  usage: `[-c FILE] [--period day|month] [--from T] [--to T] [--device ID_OR_ALIAS] [--format table|csv|json] [--backfill]

Prints the energy each channel used per local day or month in the configured time_zone (a DST
day has 23 or 25 hours). Energy comes from each plug's cumulative counter: a counter that
restarts (the plug rebooted) never makes a negative step, and readings further apart than
storage.rollups.gap_limit leave a gap whose counter increase is spread evenly over it (source
estimated). Cost follows the configured tariff (also for past data), priced by the time the
energy was used; it is empty when any part of the period has no price. The standing charge is
in the table's totals, not split over devices. CSV columns:
  ${ENERGY_CSV_HEADER}
(source: measured, device = the plug's own day statistics, estimated = a gap's counter)

  -c, --config FILE        finds the database and the time zone
      --period day|month   default day
      --from T, --to T     a local date or month (2026-11-26, 2026-11), ISO 8601 or relative
                           (-7d); whole periods from the one containing --from up to --to
                           (exclusive); default: all data up to now
      --device ID_OR_ALIAS a plug's id or alias; a strip's id selects all its outlets
      --backfill           first ask the plugs for their own day statistics and fill the
                           complete days that gaps touched (source device); idempotent
      --format table|csv|json   default table; json adds energy by source, coverage, counter
                           restarts and gaps
`,
  options: {
    config: { type: 'string', short: 'c' },
    period: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    device: { type: 'string' },
    format: { type: 'string' },
    backfill: { type: 'boolean' },
  },
  async run(context) {
    const kind = (stringFlag(context, 'period') ?? 'day') as PeriodKind;
    if (kind !== 'day' && kind !== 'month')
      throw new UsageError(`--period must be day or month, got '${kind}'`);
    const format = stringFlag(context, 'format') ?? 'table';
    if (format !== 'table' && format !== 'csv' && format !== 'json')
      throw new UsageError(`--format must be table, csv or json, got '${format}'`);
    const loaded = loadForCommand(context);
    const { config } = loaded;
    existingDatabase(loaded);
    const zone = config.time_zone;
    const gapLimitMs = config.storage.rollups.gap_limit;
    const nowMs = Date.now();
    const from = stringFlag(context, 'from');
    const to = stringFlag(context, 'to');
    const fromArg = from === undefined ? undefined : parseBound(from, zone, nowMs, '--from');
    const toArg = to === undefined ? undefined : parseBound(to, zone, nowMs, '--to');
    if (fromArg !== undefined && toArg !== undefined && toArg <= fromArg)
      throw new UsageError('--to must be later than --from');

    if (boolFlag(context, 'backfill')) {
      // Warnings (a plug in another zone, a plug that cannot be asked) go to stderr as log lines.
      const logger = createRootLogger({ level: 'warn', format: 'json', destination: context.stderr });
      const done = await backfillOnce(config, logger, nowMs);
      context.stderr.write(
        `backfill: ${done.filled} gap fill(s) stored, ${done.requests} request(s) to plugs${done.failed.length > 0 ? `, ${done.failed.length} plug(s) could not be asked` : ''}\n`,
      );
    }
    const device = stringFlag(context, 'device');
    const report = energyReport(
      config.storage.sqlite.path,
      {
        kind,
        nowMs,
        ...(fromArg === undefined ? {} : { fromMs: fromArg }),
        ...(toArg === undefined ? {} : { toMs: toArg }),
        ...(device === undefined ? {} : { device }),
      },
      { timeZone: zone, gapLimitMs, tariff: config.tariff },
    );
    const rows = report.rows;
    const currency = report.currency;

    const out = context.stdout;
    if (format === 'json') {
      await writeAll(
        out,
        `${JSON.stringify(
          rows.map((row) => energyJsonRow(row, currency)),
          null,
          2,
        )}\n`,
      );
    } else if (format === 'csv') {
      let text = `${ENERGY_CSV_HEADER}\n`;
      for (const row of rows) {
        const { channel, period } = row;
        const cost = currency === null ? '' : costText(row);
        text += `${period.label},${csvField(channel.deviceId)},${csvField(channel.alias)},${kwh(row.cost.energyWh)},${cost},${currency ?? ''},${periodSource(row.cost)}\n`;
      }
      await writeAll(out, text);
      const gaps = gapLines(rows, zone);
      if (gaps.length > 0) {
        context.stderr.write(`note: ${gaps.length} gap(s) in the readings (see --format table or json):\n`);
        for (const g of gaps) context.stderr.write(`  ${g}\n`);
      }
    } else {
      await writeAll(
        out,
        rows.length === 0 ? 'no readings in this range\n' : tableText(report, zone, gapLimitMs),
      );
    }
    return EXIT_OK;
  },
};
