/** SQLite storage: the only module of kasa-monitor that imports better-sqlite3. */

export { isStorageError, KasaStorageCode, StorageError } from '../errors.js';
export type {
  BackupFileResult,
  CopyProgress,
  DatabaseFileCheck,
  RestoreResult,
} from './backup.js';
export {
  assertNotInUse,
  backupDatabaseFile,
  checkDatabaseFile,
  finishBackupFile,
  manualBackupName,
  restoreDatabaseFile,
  SCHEDULED_BACKUP,
  scheduledBackupName,
} from './backup.js';
export { checkDatabaseFileInThread } from './check-worker.js';
export type { JournalMode, SqliteOptions, SynchronousMode, TempStore } from './connection.js';
export { isTransientSqliteCode } from './errors.js';
export type {
  BackupReport,
  LifecycleAction,
  LifecycleOpenOptions,
  MaintenanceReport,
  RetentionPolicy,
  StorageInfo,
} from './lifecycle-protocol.js';
export { LifecycleCode } from './lifecycle-protocol.js';
export { tableBytesOfFile } from './lifecycle-support.js';
export type {
  CursorInfo,
  OutboxChannel,
  OutboxCursor,
  OutboxRead,
  OutboxSlice,
} from './protocol.js';
export { absentAsNull, OUTBOX_COLUMNS } from './protocol.js';
export type { ReadingsQuery, ReadingsReader, StoredChannel, StoredReading } from './reader.js';
export { openReadingsReader } from './reader.js';
export type { RollupChannel, RollupReader, RollupReaderOptions, RollupTail } from './rollup-reader.js';
export { openRollupReader } from './rollup-reader.js';
export { SCHEMA_VERSION } from './schema.js';
export type { BatchResult, CommitListener } from './store.js';
export { SqliteStore } from './store.js';
export type { OutboxFileSummary, RawInsertResult, WriteLock } from './support.js';
export {
  holdWriteLock,
  integrityCheckFile,
  outboxFileSummary,
  runRawInsertBaseline,
} from './support.js';
