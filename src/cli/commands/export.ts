import { once } from 'node:events';
import { checkTimeRange, parseTime } from '../../shared/time.js';
import { CSV_HEADER, ExportCursor, openReadingsReader } from '../../storage/sqlite/index.js';
import { type Command, stringFlag } from '../command.js';
import { EXIT_OK, UsageError } from '../exit-codes.js';
import { existingDatabase, loadForCommand } from '../load-config.js';
import { exportRollups, RESOLUTIONS, type Resolution, ROLLUP_CSV_HEADER } from './export-rollups.js';

export const EXPORT_CSV_HEADER = CSV_HEADER;

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
    checkTimeRange(fromMs, toMs);
    const resolution = stringFlag(context, 'resolution') ?? 'raw';
    if (!(RESOLUTIONS as readonly string[]).includes(resolution))
      throw new UsageError(`--resolution must be one of ${RESOLUTIONS.join(', ')}, got '${resolution}'`);
    const loaded = loadForCommand(context);
    const { config } = loaded;
    existingDatabase(loaded);
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
      // Written in chunks with back-pressure: a year of readings must not be held in memory. The same
      // framing as the HTTP export, so both print exactly the same bytes.
      const cursor = new ExportCursor(rows, format, 2000);
      try {
        for (let chunk = cursor.next(); ; chunk = cursor.next()) {
          if (chunk.bytes.length > 0 && !out.write(chunk.bytes)) await once(out, 'drain');
          if (chunk.done) break;
        }
      } finally {
        cursor.close();
      }
      return EXIT_OK;
    } finally {
      reader.close();
    }
  },
};
