import {
  PeriodCalendar,
  type PeriodEnergy,
  type PeriodKind,
  parseLocalDate,
  summarisePeriods,
  type Tier,
  zoneCalendar,
} from '../../energy/index.js';
import { csvField } from '../../shared/decimal.js';
import { parseTime } from '../../shared/time.js';
import { openReadingsReader, openRollupReader, type RollupChannel } from '../../storage/sqlite/index.js';
import { type Command, stringFlag } from '../command.js';
import { EXIT_OK, UsageError } from '../exit-codes.js';
import { existingDatabase, loadForCommand } from '../load-config.js';

export const ENERGY_CSV_HEADER = 'period,device_id,alias,energy_kwh';

const HOUR_MS = 3_600_000;

export interface EnergyRow {
  readonly channel: RollupChannel;
  readonly period: PeriodEnergy;
  /** The period has not ended yet. */
  readonly current: boolean;
}

/** A --from/--to value: a local date or month in the zone ('2026-11-26', '2026-11'), or any export time. */
function parseBound(text: string, zone: string, nowMs: number, flag: string): number {
  return parseLocalDate(text, zone) ?? parseTime(text, nowMs, flag);
}

function kwh(wh: number): string {
  return (Math.round(wh) / 1000).toFixed(3);
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

/**
 * Hour buckets fit local periods when every period boundary is on a whole UTC hour (zones with
 * whole-hour offsets); otherwise (India, Nepal, parts of Australia) minute buckets are used.
 */
function tierFor(calendar: PeriodCalendar, fromMs: number, toMs: number): Tier {
  for (let s = fromMs; s < toMs; s = calendar.end(s)) {
    if (s % HOUR_MS !== 0) return 'minute';
  }
  return toMs % HOUR_MS === 0 ? 'hour' : 'minute';
}

function tableText(rows: readonly EnergyRow[], zone: string, gapLimitMs: number): string {
  const header = ['period', 'device_id', 'alias', 'energy_kwh', 'covered_h', 'note'];
  const cells = rows.map(({ channel, period, current }) => {
    const notes: string[] = [];
    if (current) notes.push('so far');
    if (period.resets > 0) notes.push(`${period.resets} counter restart${period.resets === 1 ? '' : 's'}`);
    if (period.gaps.length > 0) notes.push(`${period.gaps.length} gap${period.gaps.length === 1 ? '' : 's'}`);
    return [
      period.label,
      channel.deviceId,
      channel.alias,
      kwh(period.energyWh),
      (period.coveredMs / HOUR_MS).toFixed(1),
      notes.join(', '),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) =>
    c
      .map((text, i) => (i === 3 || i === 4 ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  let text = `${line(header)}\n`;
  for (const c of cells) text += `${line(c)}\n`;
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
function gapLines(rows: readonly EnergyRow[], zone: string): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const { channel, period } of rows) {
    for (const gap of period.gaps) {
      const key = `${channel.deviceId}@${gap.fromMs}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const counter = `the counter shows ${kwh(gap.energyWh)} kWh${gap.reset ? ' since it restarted (at least)' : ''}`;
      const counted = gap.attributed
        ? `counted in ${period.label}`
        : 'counted in no period (the gap crosses a period boundary)';
      lines.push(
        `${channel.alias || channel.deviceId}: ${localTime(gap.fromMs, zone)} to ${localTime(gap.toMs, zone)} (${span(gap.toMs - gap.fromMs)}): ${counter}, ${counted}`,
      );
    }
  }
  return lines;
}

function jsonRow({ channel, period, current }: EnergyRow): Record<string, unknown> {
  return {
    period: period.label,
    device_id: channel.deviceId,
    alias: channel.alias,
    energy_kwh: Number(kwh(period.energyWh)),
    covered_hours: Number((period.coveredMs / HOUR_MS).toFixed(3)),
    period_hours: (period.endMs - period.startMs) / HOUR_MS,
    readings: period.readings,
    counter_restarts: period.resets,
    complete: !current,
    gaps: period.gaps.map((g) => ({
      from: new Date(g.fromMs).toISOString(),
      to: new Date(g.toMs).toISOString(),
      counter_kwh: Number(kwh(g.energyWh)),
      counter_restarted: g.reset,
      counted: g.attributed,
    })),
  };
}

export const energyCommand: Command = {
  name: 'energy',
  summary: 'energy used per device per day or month, from the plugs’ counters',
  usage: `[-c FILE] [--period day|month] [--from T] [--to T] [--device ID_OR_ALIAS] [--format table|csv|json]

Prints the energy each channel used per local day or month in the configured time_zone (a DST
day has 23 or 25 hours). Energy comes from each plug's cumulative counter: a counter that
restarts (the plug rebooted) never makes a negative step, and readings further apart than
storage.rollups.gap_limit leave a gap that is reported, not filled in. CSV columns:
  ${ENERGY_CSV_HEADER}

  -c, --config FILE        finds the database and the time zone
      --period day|month   default day
      --from T, --to T     a local date or month (2026-11-26, 2026-11), ISO 8601 or relative
                           (-7d); whole periods from the one containing --from up to --to
                           (exclusive); default: all data up to now
      --device ID_OR_ALIAS a plug's id or alias; a strip's id selects all its outlets
      --format table|csv|json   default table; json adds coverage, counter restarts and gaps
`,
  options: {
    config: { type: 'string', short: 'c' },
    period: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    device: { type: 'string' },
    format: { type: 'string' },
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

    const reader = openRollupReader(config.storage.sqlite.path, { timeZone: zone, gapLimitMs });
    const rows: EnergyRow[] = [];
    try {
      const all = reader.channels();
      const device = stringFlag(context, 'device');
      let channels = all;
      if (device !== undefined) {
        const names = openReadingsReader(config.storage.sqlite.path);
        try {
          const wanted = new Set(names.resolveDevice(device));
          channels = all.filter((c) => wanted.has(c.deviceId));
        } finally {
          names.close();
        }
      }
      const range = reader.dataRange();
      if (range !== null && channels.length > 0) {
        const calendar = new PeriodCalendar(kind, zone);
        const fromMs = calendar.start(fromArg ?? range.firstMs);
        const lastMs = (toArg ?? nowMs + 1) - 1;
        const toMs = calendar.end(calendar.start(lastMs));
        if (toMs > fromMs) {
          const tier = tierFor(calendar, fromMs, toMs);
          for (const channel of channels) {
            const { buckets, gaps } = reader.series(channel, tier, fromMs, toMs);
            for (const period of summarisePeriods(buckets, gaps, calendar, fromMs, toMs)) {
              rows.push({ channel, period, current: period.endMs > nowMs });
            }
          }
        }
      }
    } finally {
      reader.close();
    }
    rows.sort(
      (a, b) => a.period.startMs - b.period.startMs || (a.channel.deviceId < b.channel.deviceId ? -1 : 1),
    );

    const out = context.stdout;
    if (format === 'json') {
      await writeAll(out, `${JSON.stringify(rows.map(jsonRow), null, 2)}\n`);
    } else if (format === 'csv') {
      let text = `${ENERGY_CSV_HEADER}\n`;
      for (const { channel, period } of rows) {
        text += `${period.label},${csvField(channel.deviceId)},${csvField(channel.alias)},${kwh(period.energyWh)}\n`;
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
        rows.length === 0 ? 'no readings in this range\n' : tableText(rows, zone, gapLimitMs),
      );
    }
    return EXIT_OK;
  },
};
