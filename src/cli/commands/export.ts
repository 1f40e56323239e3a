import { once } from 'node:events';
import { openReadingsReader, type StoredReading } from '../../storage/sqlite/index.js';
import { type Command, stringFlag } from '../command.js';
import { csvField, milliToDecimal } from '../decimal.js';
import { EXIT_OK, UsageError } from '../exit-codes.js';
import { loadForCommand } from '../load-config.js';
import { parseTime } from '../time.js';
import { exportRollups, RESOLUTIONS, type Resolution, ROLLUP_CSV_HEADER } from './export-rollups.js';

export const EXPORT_CSV_HEADER = 'time,device_id,alias,power_w,voltage_v,current_a,total_wh';

function csvRow(r: StoredReading): string {
  return [
    new Date(r.tsMs).toISOString(),
    csvField(r.deviceId),
    csvField(r.alias),
    milliToDecimal(r.powerMw),
    milliToDecimal(r.voltageMv),
    milliToDecimal(r.currentMa),
    String(r.totalWh),
  ].join(',');
}

function jsonRow(r: StoredReading): string {
  return JSON.stringify({
    time: new Date(r.tsMs).toISOString(),
    device_id: r.deviceId,
    alias: r.alias,
    power_w: r.powerMw / 1000,
    voltage_v: r.voltageMv / 1000,
    current_a: r.currentMa / 1000,
    total_wh: r.totalWh,
  });
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'print stored readings as CSV or JSON (safe while the daemon runs)',
  usage: `[-c FILE] [--from T] [--to T] [--device ID_OR_ALIAS] [--format csv|json] [--resolution raw|minute|hour|day]

Prints readings from the database, oldest first. CSV columns:
  ${EXPORT_CSV_HEADER}
Times are ISO 8601 UTC; a strip outlet's device_id is its full child id.

  -c, --config FILE        finds the database (storage.sqlite.path)
      --from T, --to T     ISO 8601 (2026-11-26T14:00:00Z) or relative (-24h, -7d, now);
                           from is inclusive, to exclusive
      --device ID_OR_ALIAS a plug's id or alias; a strip's id selects all its outlets
      --format csv|json    default csv; json prints an array of objects with the same fields
      --resolution R       raw (default: every reading) or minute, hour, day rollups, with columns
                           ${ROLLUP_CSV_HEADER}
                           (time = bucket start; day = local day of time_zone; the newest
                           buckets are still open: complete=false)
`,
  options: {
    config: { type: 'string', short: 'c' },
    from: { type: 'string' },
    to: { type: 'string' },
    device: { type: 'string' },
    format: { type: 'string' },
    resolution: { type: 'string' },
  },
  async run(context) {
    const format = stringFlag(context, 'format') ?? 'csv';
    if (format !== 'csv' && format !== 'json')
      throw new UsageError(`--format must be csv or json, got '${format}'`);
    const now = Date.now();
    const from = stringFlag(context, 'from');
    const to = stringFlag(context, 'to');
    const fromMs = from === undefined ? undefined : parseTime(from, now, '--from');
    const toMs = to === undefined ? undefined : parseTime(to, now, '--to');
    const resolution = stringFlag(context, 'resolution') ?? 'raw';
    if (!(RESOLUTIONS as readonly string[]).includes(resolution))
      throw new UsageError(`--resolution must be one of ${RESOLUTIONS.join(', ')}, got '${resolution}'`);
    const { config } = loadForCommand(context);
    if (resolution !== 'raw') {
      await exportRollups({
        config,
        tier: resolution as Exclude<Resolution, 'raw'>,
        fromMs,
        toMs,
        device: stringFlag(context, 'device'),
        format,
        out: context.stdout,
        warn: (text) => context.stderr.write(text),
      });
      return EXIT_OK;
    }
    const reader = openReadingsReader(config.storage.sqlite.path);
    try {
      const device = stringFlag(context, 'device');
      const channels = device === undefined ? undefined : reader.resolveDevice(device);
      const rows = reader.readings({
        ...(fromMs === undefined ? {} : { fromMs }),
        ...(toMs === undefined ? {} : { toMs }),
        ...(channels === undefined ? {} : { channels }),
      });
      const out = context.stdout;
      // Written in chunks with back-pressure: a year of readings must not be held in memory.
      let chunk = format === 'csv' ? `${EXPORT_CSV_HEADER}\n` : '[';
      let first = true;
      for (const r of rows) {
        if (format === 'csv') chunk += `${csvRow(r)}\n`;
        else {
          chunk += `${first ? '\n' : ',\n'}${jsonRow(r)}`;
          first = false;
        }
        if (chunk.length >= 65536) {
          if (!out.write(chunk)) await once(out, 'drain');
          chunk = '';
        }
      }
      if (format === 'json') chunk += first ? ']\n' : '\n]\n';
      if (!out.write(chunk)) await once(out, 'drain');
      return EXIT_OK;
    } finally {
      reader.close();
    }
  },
};
