/**
 * Gap fills: energy a plug's own day (or month) statistics show for a period that the daemon's
 * readings do not (the plug kept counting while the daemon, the network or the host was down).
 * A fill is an annotation of a period of a channel with its source, never an invented reading;
 * reports spread it over the gaps in that period in place of the gap counter's estimate.
 *
 * The table is created on first use (CREATE TABLE IF NOT EXISTS) rather than by a schema
 * migration, so databases of any version take it and readers treat its absence as "no fills".
 */
import { type Db, openSideWriter } from '../connection.js';
import { toStorageError } from '../errors.js';

export type FillKind = 'day' | 'month';

export interface EnergyFill {
  readonly deviceId: string;
  readonly kind: FillKind;
  /** The local period (in the configured zone) the fill belongs to, UTC ms. */
  readonly startMs: number;
  readonly endMs: number;
  /** Energy the readings do not show for the period, Wh (>= 0). */
  readonly energyWh: number;
  /** What the plug reported for the period, Wh. */
  readonly deviceWh: number;
  /** What the readings attributed to the period when the fill was made, Wh. */
  readonly measuredWh: number;
  /** Where it came from: 'daystat' or 'monthstat' (legacy plugs), ... */
  readonly source: string;
}

const CREATE = `CREATE TABLE IF NOT EXISTS energy_fills (
  channel_id  INTEGER NOT NULL REFERENCES channels (id),
  kind        TEXT NOT NULL,
  start_ms    INTEGER NOT NULL,
  end_ms      INTEGER NOT NULL,
  energy_mwh  INTEGER NOT NULL,
  device_mwh  INTEGER NOT NULL,
  measured_mwh INTEGER NOT NULL,
  source      TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  PRIMARY KEY (channel_id, kind, start_ms)
) WITHOUT ROWID, STRICT`;

function hasTable(db: Db): boolean {
  return db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'energy_fills'").pluck().get() !== 0;
}

/** Fills of one channel whose period overlaps [fromMs, toMs); none when the table does not exist. */
export function readFills(db: Db, deviceId: string, fromMs: number, toMs: number): EnergyFill[] {
  if (!hasTable(db)) return [];
  const rows = db
    .prepare(
      `SELECT f.kind, f.start_ms, f.end_ms, f.energy_mwh, f.device_mwh, f.measured_mwh, f.source
       FROM energy_fills f JOIN channels c ON c.id = f.channel_id
       WHERE c.device_id = ? AND f.end_ms > ? AND f.start_ms < ? ORDER BY f.start_ms`,
    )
    .raw()
    .all(deviceId, fromMs, toMs) as [FillKind, number, number, number, number, number, string][];
  return rows.map(([kind, startMs, endMs, energy, device, measured, source]) => ({
    deviceId,
    kind,
    startMs,
    endMs,
    energyWh: energy / 1000,
    deviceWh: device / 1000,
    measuredWh: measured / 1000,
    source,
  }));
}

/**
 * Stores fills (writable connection). A period already filled keeps its first fill: a second run
 * changes nothing. Returns how many were new.
 */
export function writeFills(db: Db, fills: readonly EnergyFill[], nowMs: number): number {
  db.exec(CREATE);
  const insert = db.prepare(
    `INSERT INTO energy_fills (channel_id, kind, start_ms, end_ms, energy_mwh, device_mwh, measured_mwh, source, created_ms)
     SELECT id, ?, ?, ?, ?, ?, ?, ?, ? FROM channels WHERE device_id = ?
     ON CONFLICT (channel_id, kind, start_ms) DO NOTHING`,
  );
  let added = 0;
  db.transaction(() => {
    for (const f of fills) {
      added += insert.run(
        f.kind,
        f.startMs,
        f.endMs,
        Math.round(f.energyWh * 1000),
        Math.round(f.deviceWh * 1000),
        Math.round(f.measuredWh * 1000),
        f.source,
        nowMs,
        f.deviceId,
      ).changes;
    }
  })();
  return added;
}

/** Opens the database file, stores the fills, closes it. Returns how many were new. */
export function writeFillsToFile(
  path: string,
  fills: readonly EnergyFill[],
  nowMs: number,
  busyTimeoutMs = 5000,
): number {
  let db: Db | undefined;
  try {
    db = openSideWriter(path, busyTimeoutMs);
    return writeFills(db, fills, nowMs);
  } catch (error) {
    throw toStorageError(error, `cannot store gap fills in ${path}`);
  } finally {
    db?.close();
  }
}
