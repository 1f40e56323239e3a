/** SQLite storage: the only module of kasa-monitor that imports better-sqlite3. */

export { isStorageError, KasaStorageCode, StorageError } from '../errors.js';
export type { JournalMode, SqliteOptions, SynchronousMode, TempStore } from './connection.js';
export { isTransientSqliteCode } from './errors.js';
export type { ReadingsQuery, ReadingsReader, StoredChannel, StoredReading } from './reader.js';
export { openReadingsReader } from './reader.js';
export { SCHEMA_VERSION } from './schema.js';
export type { BatchResult } from './store.js';
export { SqliteStore } from './store.js';
export type { RawInsertResult, WriteLock } from './support.js';
export { holdWriteLock, runRawInsertBaseline } from './support.js';
