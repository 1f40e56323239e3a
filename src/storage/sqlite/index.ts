/**
 * SQLite storage: the only module of kasa-monitor that imports better-sqlite3. Other code imports
 * this barrel only. Its folders follow the roles:
 * - write/: SqliteStore (main thread) and its writer worker, the daemon's only writing connection;
 * - read/: the reader pool (worker connections, or one on the main thread) and the queries it runs;
 * - maintenance/: rollups, retention, backups and checks, the writer worker's lifecycle side;
 * - rpc/: the one message layer every worker speaks (typed handler maps, transfers, worker death);
 * - at the top: connection (open + pragmas), schema (migrations), errors (SQLite codes → StorageError).
 */

export { isStorageError, KasaStorageCode, StorageError } from '../errors.js';
export type { JournalMode, SqliteOptions, SynchronousMode, TempStore } from './connection.js';
export { isTransientSqliteCode, sqliteFailureKind } from './errors.js';
export type {
  BackupFileResult,
  CopyProgress,
  DatabaseFileCheck,
  RestoreResult,
} from './maintenance/backup.js';
export {
  assertNotInUse,
  backupDatabaseFile,
  checkDatabaseFile,
  finishBackupFile,
  manualBackupName,
  restoreDatabaseFile,
  SCHEDULED_BACKUP,
  scheduledBackupName,
} from './maintenance/backup.js';
export { checkDatabaseFileInThread } from './maintenance/check-worker.js';
export { type EnergyFill, type FillKind, writeFillsToFile } from './maintenance/fills.js';
export type {
  BackupReport,
  LifecycleAction,
  LifecycleOpenOptions,
  MaintenanceReport,
  RetentionPolicy,
  StorageInfo,
} from './maintenance/lifecycle-protocol.js';
export { LifecycleCode } from './maintenance/lifecycle-protocol.js';
export type { DailyEnergyResult, SeriesResult } from './read/dashboard-queries.js';
export type {
  EnergyReport,
  EnergyReportQuery,
  EnergyReportRow,
  EnergyReportSettings,
  TariffSettings,
} from './read/energy-report.js';
export { energyReport, readPrices, tariffRules } from './read/energy-report.js';
export type { ExportFormat } from './read/export-format.js';
export { CSV_HEADER, csvRow, ExportCursor, jsonRow } from './read/export-format.js';
export type { ReadingsQuery, ReadingsReader, StoredChannel, StoredReading } from './read/reader.js';
export { openReadingsReader } from './read/reader.js';
export type {
  DashboardEnergyQuery,
  DashboardSeriesQuery,
  ExportQuery,
  PoolLease,
  PoolStats,
  ReaderPoolOptions,
} from './read/reader-pool.js';
export { POOL_EXPORTS_BUSY_CODE, POOL_TIMEOUT_CODE, ReaderPool } from './read/reader-pool.js';
export type { RollupChannel, RollupReader, RollupReaderOptions, RollupTail } from './read/rollup-reader.js';
export { openRollupReader } from './read/rollup-reader.js';
export { type ClientOptions, PortClient, WorkerClient } from './rpc/client.js';
export type { HandlerMap } from './rpc/messages.js';
export { serve } from './rpc/server.js';
export { SCHEMA_VERSION } from './schema.js';
export type {
  CursorInfo,
  OutboxChannel,
  OutboxCursor,
  OutboxRead,
  OutboxSlice,
} from './write/protocol.js';
export { absentAsNull, OUTBOX_COLUMNS } from './write/protocol.js';
export type { BatchResult, CommitListener, SqliteStoreWorker } from './write/store.js';
export { SqliteStore } from './write/store.js';
