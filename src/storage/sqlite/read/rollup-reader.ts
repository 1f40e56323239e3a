/**
 * Reads rollups for `energy` and `export --resolution` in their own process, safe while the daemon
 * writes. A tier's stored rows are its closed buckets; the buckets after them (the open ones, and any
 * the daemon has not written yet) are computed here from the raw readings exactly as the writer
 * would. Everything is read in one read transaction, so rows and raw tail come from one snapshot.
 */
import {
  type Bucket,
  type BucketCalendar,
  bucketCalendar,
  type GapRecord,
  TIERS,
  type Tier,
} from '../../../energy/index.js';
import { KasaStorageCode, StorageError } from '../../errors.js';
import { type Db, withReadableDatabase } from '../connection.js';
import { type EnergyFill, readFills } from '../maintenance/fills.js';
import {
  bucketFromRow,
  foldTail,
  RollupQueries,
  type RollupRow,
  TIER_TABLES,
} from '../maintenance/rollups.js';

const LONGEST_BUCKET_MS: Readonly<Record<Tier, number>> = {
  minute: 60_000,
  hour: 3_600_000,
  day: 26 * 3_600_000,
};

export interface RollupChannel {
  readonly id: number;
  readonly deviceId: string;
  readonly alias: string;
  readonly parentId: string | null;
}

export interface RollupReaderOptions {
  /** The configured zone: used for day buckets when the database has none recorded. */
  readonly timeZone: string;
  readonly gapLimitMs: number;
  readonly busyTimeoutMs?: number;
}

/** The part of a channel's series the stored rows do not hold, computed from raw readings. */
export interface RollupTail {
  /** Where the stored rows end: buckets from here on are in `buckets`. */
  readonly floorMs: number;
  /** Buckets from the floor on, oldest first; the last ones may be open (`partial`). */
  readonly buckets: readonly (Bucket & { readonly partial: boolean })[];
  /** Gaps found in the raw tail. */
  readonly gaps: readonly GapRecord[];
}

export class RollupReader {
  readonly #db: Db;
  readonly #options: RollupReaderOptions;
  readonly #queries: RollupQueries;
  readonly #calendars: Record<Tier, BucketCalendar>;
  readonly #dayZone: string;

  constructor(db: Db, options: RollupReaderOptions) {
    this.#db = db;
    this.#options = options;
    this.#queries = new RollupQueries(db);
    const recorded = db.prepare("SELECT value FROM lifecycle_meta WHERE key = 'day_zone'").pluck().get() as
      | string
      | undefined;
    this.#dayZone = recorded ?? options.timeZone;
    this.#calendars = Object.fromEntries(
      TIERS.map((tier) => [tier, bucketCalendar(tier, this.#dayZone)]),
    ) as Record<Tier, BucketCalendar>;
  }

  /** The zone the stored day buckets were built in (the daemon rebuilds them when it changes). */
  get dayZone(): string {
    return this.#dayZone;
  }

  channels(): RollupChannel[] {
    return this.#db
      .prepare(
        'SELECT id, device_id AS deviceId, alias, parent_id AS parentId FROM channels ORDER BY device_id',
      )
      .all() as RollupChannel[];
  }

  /** First and last reading time of any channel (raw readings and rollups); null when empty. */
  dataRange(): { readonly firstMs: number; readonly lastMs: number } | null {
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    const ids = this.channels().map((c) => c.id);
    const sources = [['readings', 'ts_ms'], ...TIERS.map((t) => [`rollup_${t}`, 'bucket_ms'])] as const;
    for (const [table, column] of sources) {
      const lo = this.#db
        .prepare(`SELECT ${column} FROM ${table} WHERE channel_id = ? ORDER BY ${column} LIMIT 1`)
        .pluck();
      const hi = this.#db
        .prepare(`SELECT ${column} FROM ${table} WHERE channel_id = ? ORDER BY ${column} DESC LIMIT 1`)
        .pluck();
      for (const id of ids) {
        const a = lo.get(id) as number | undefined;
        const b = hi.get(id) as number | undefined;
        if (a !== undefined) first = Math.min(first, a);
        if (b !== undefined) last = Math.max(last, b);
      }
    }
    return Number.isFinite(first) ? { firstMs: first, lastMs: last } : null;
  }

  /**
   * The computed part of a channel's `tier` series overlapping [fromMs, toMs). Call it before
   * iterating stored rows (better-sqlite3 runs no other statement while an iterator is open).
   */
  tail(channel: RollupChannel, tier: Tier, fromMs: number, toMs: number): RollupTail {
    const calendar = this.#calendars[tier];
    const closed: Bucket[] = [];
    const gaps: GapRecord[] = [];
    // Intervals that end after `toMs` can still reach buckets before it (up to the gap limit).
    const readUntil =
      toMs >= Number.MAX_SAFE_INTEGER - this.#options.gapLimitMs ? toMs : toMs + this.#options.gapLimitMs + 1;
    const acc = foldTail(
      this.#queries,
      channel.id,
      [calendar],
      this.#options.gapLimitMs,
      {
        closed: (b) => closed.push(b),
        gap: (g) => gaps.push(g),
        late: () => {},
      },
      readUntil,
    );
    const [floorMs] = this.#queries.floors(channel.id, [calendar]);
    const open = acc.open(0);
    const buckets = [
      ...closed.map((b) => ({ ...b, partial: false })),
      ...(open === null ? [] : [{ ...open, partial: true }]),
    ].filter((b) => b.startMs < toMs && b.endMs > fromMs);
    return {
      floorMs: floorMs ?? Number.NEGATIVE_INFINITY,
      buckets,
      gaps: gaps.filter((g) => g.toMs > fromMs && g.fromMs < toMs),
    };
  }

  /** Stored (closed) rows of `tier` with start in [fromMs, toMs), lazily, oldest first. */
  *stored(channel: RollupChannel, tier: Tier, fromMs: number, toMs: number): Generator<Bucket> {
    const calendar = this.#calendars[tier];
    // A bucket that starts before fromMs but reaches into the range is included, like the tail's.
    const from = fromMs - LONGEST_BUCKET_MS[tier];
    // A statement of its own: several channels' rows may be iterated at once (a merge by time).
    const rows = this.#db
      .prepare<[number, number, number]>(
        `SELECT bucket_ms, readings, power_sum_mw, power_min_mw, power_max_mw, energy_mwh, covered_ms, resets
         FROM ${TIER_TABLES[tier]} WHERE channel_id = ? AND bucket_ms >= ? AND bucket_ms < ? ORDER BY bucket_ms`,
      )
      .raw()
      .iterate(channel.id, from, toMs) as IterableIterator<RollupRow>;
    try {
      for (const row of rows) {
        const bucket = bucketFromRow(calendar, row);
        if (bucket.endMs > fromMs) yield bucket;
      }
    } finally {
      rows.return?.();
    }
  }

  /** Stored rows and the computed tail, as one array (for short ranges, such as hours of a year). */
  series(
    channel: RollupChannel,
    tier: Tier,
    fromMs: number,
    toMs: number,
  ): { readonly buckets: (Bucket & { readonly partial: boolean })[]; readonly gaps: GapRecord[] } {
    const tail = this.tail(channel, tier, fromMs, toMs);
    const stored = [...this.stored(channel, tier, fromMs, Math.min(toMs, tail.floorMs))].map((b) => ({
      ...b,
      partial: false,
    }));
    const gaps = new Map<number, GapRecord>();
    for (const g of this.#queries.gaps(channel.id, fromMs, toMs)) gaps.set(g.fromMs, g);
    for (const g of tail.gaps) gaps.set(g.fromMs, g);
    return {
      buckets: [...stored, ...tail.buckets],
      gaps: [...gaps.values()].sort((a, b) => a.fromMs - b.fromMs),
    };
  }

  /** Stored rows of `tier` with start in [fromMs, toMs), as an array (one cached statement: many small reads). */
  storedRows(channel: RollupChannel, tier: Tier, fromMs: number, toMs: number): Bucket[] {
    const calendar = this.#calendars[tier];
    return this.#queries.allRows(tier, channel.id, fromMs, toMs).map((row) => bucketFromRow(calendar, row));
  }

  /** Gap fills from the plugs' own statistics overlapping [fromMs, toMs). */
  fills(channel: RollupChannel, fromMs: number, toMs: number): EnergyFill[] {
    return readFills(this.#db, channel.deviceId, fromMs, toMs);
  }

  close(): void {
    if (this.#db.inTransaction) this.#db.exec('COMMIT');
    this.#db.close();
  }
}

/** Opens the database read-only for rollup queries; one snapshot until close(). */
export function openRollupReader(path: string, options: RollupReaderOptions): RollupReader {
  return withReadableDatabase(path, options.busyTimeoutMs ?? 5000, (db) => {
    const hasRollups = db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'rollup_hour'")
      .pluck()
      .get();
    if (hasRollups === 0) {
      throw new StorageError(
        `${path} has no rollups yet: start the daemon once with this version of kasa-monitor to add them`,
        { code: KasaStorageCode.notKasaDatabase, transient: false },
      );
    }
    db.exec('BEGIN');
    return new RollupReader(db, options);
  });
}
