/**
 * Helpers for the lifecycle benchmark and tests that need to look inside a database file (this
 * folder is the only importer of better-sqlite3). Not for use by the daemon.
 */
import BetterSqlite3 from 'better-sqlite3';

/** Bytes of pages each table (with its indexes) occupies in a database file, via the dbstat table. */
export function tableBytesOfFile(path: string): Record<string, number> {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const rows = db
      .prepare(
        `SELECT coalesce(m.tbl_name, s.name) AS name, sum(s.pgsize) AS bytes
         FROM dbstat AS s LEFT JOIN sqlite_schema AS m ON m.name = s.name GROUP BY 1`,
      )
      .all() as { name: string; bytes: number }[];
    return Object.fromEntries(rows.map((r) => [r.name, r.bytes]));
  } finally {
    db.close();
  }
}
