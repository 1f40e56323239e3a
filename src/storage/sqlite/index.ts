/** SQLite storage: the only module of kasa-monitor that imports better-sqlite3. */

export { isStorageError, KasaStorageCode, StorageError } from '../errors.js';
export type { JournalMode, SqliteOptions, SynchronousMode, TempStore } from './connection.js';
export { isTransientSqliteCode } from './errors.js';
export type {
  CursorInfo,
  OutboxChannel,
  OutboxCursor,
  OutboxRead,
  OutboxSlice,
} from './protocol.js';
export { OUTBOX_COLUMNS } from './protocol.js';
export type { ReadingsQuery, ReadingsReader, StoredChannel, StoredReading } from './reader.js';
export { openReadingsReader } from './reader.js';
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
