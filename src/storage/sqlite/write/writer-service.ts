/**
 * What the writer worker serves: the handler map of the writing connection (its protocol, see
 * rpc/messages.ts). better-sqlite3 is synchronous, so a held lock (busy_timeout), a slow fsync or
 * quick_check on a big file blocks the worker's thread, never the daemon's event loop. Calls are
 * handled one at a time, in order; a scheduled backup runs in steps with calls served in between.
 */
import type { ChannelInfo } from '../../../domain/channel.js';
import { KasaStorageCode, StorageError } from '../../errors.js';
import {
  type Db,
  type FileIdentity,
  fileIdentity,
  type OpenInfo,
  openWritable,
  type SqliteOptions,
} from '../connection.js';
import type { LifecycleAction } from '../maintenance/lifecycle-protocol.js';
import { WorkerLifecycle } from '../maintenance/lifecycle-worker.js';
import { lastReply, transferring } from '../rpc/messages.js';
import { BatchWriter } from './batch-writer.js';
import type { EncodedBatch, OutboxCursor } from './protocol.js';

interface Open {
  readonly db: Db;
  readonly writer: BatchWriter;
  /** The data lifecycle of the open database (rollups, maintenance, scheduled backups). */
  readonly lifecycle: WorkerLifecycle;
  /** The path and the file it named when the connection was opened (null: in memory). */
  readonly file: { readonly path: string; readonly identity: FileIdentity } | null;
}

function notOpen(): StorageError {
  return new StorageError('the database is not open', { code: KasaStorageCode.notOpen, transient: false });
}

export class WriterService {
  #open: Open | null = null;

  /** The writing connection while open (a test worker wrapping this service injects faults on it). */
  get db(): Db | null {
    return this.#open?.db ?? null;
  }

  readonly handlers = {
    open: ({ options }: { readonly options: SqliteOptions }): OpenInfo => {
      if (this.#open !== null)
        throw new StorageError('already open', { code: KasaStorageCode.internal, transient: false });
      const { db, info } = openWritable(options);
      const identity = options.path === ':memory:' ? null : fileIdentity(options.path);
      try {
        const lifecycle = new WorkerLifecycle(db, options);
        const writer = new BatchWriter(db, options.outbox === true, lifecycle.rollups);
        this.#open = {
          db,
          writer,
          lifecycle,
          file: identity === null ? null : { path: options.path, identity },
        };
      } catch (error) {
        db.close();
        throw error;
      }
      return info;
    },
    upsertChannels: (args: { readonly channels: readonly ChannelInfo[]; readonly nowMs: number }): void => {
      this.#writable().writer.upsertChannels(args.channels, args.nowMs);
    },
    writeBatch: ({ batch }: { readonly batch: EncodedBatch }) => this.#writable().writer.writeBatch(batch),
    readOutbox: (args: { readonly after: OutboxCursor; readonly limit: number }) => {
      const read = this.#require().writer.readOutbox(args.after, args.limit);
      return transferring(read, [read.values.buffer]);
    },
    loadCursor: ({ sink }: { readonly sink: string }) => this.#require().writer.loadCursor(sink),
    saveCursor: (args: { readonly sink: string; readonly cursor: OutboxCursor; readonly nowMs: number }) =>
      this.#require().writer.saveCursor(args.sink, args.cursor, args.nowMs),
    /** A data-lifecycle action; SqliteStore.lifecycle() types the result (LifecycleResultOf). */
    lifecycle: ({ action }: { readonly action: LifecycleAction }): unknown =>
      this.#require().lifecycle.handle(action),
    /** Closes the database; the worker's port closes after the answer, so the thread may end. */
    close: () => {
      const open = this.#open;
      this.#open = null;
      open?.lifecycle.close();
      open?.writer.close();
      return lastReply(undefined);
    },
  };

  #require(): Open {
    if (this.#open === null) throw notOpen();
    return this.#open;
  }

  /**
   * Before every write: is the file at the path still the one this connection has open? A database
   * removed (or its directory) while open keeps accepting writes into the unlinked inode, and all
   * of it is gone when the connection closes; a file put in its place is not the one written. One
   * stat call.
   */
  #writable(): Open {
    const open = this.#require();
    const file = open.file;
    if (file === null) return open;
    const now = fileIdentity(file.path);
    if (now !== null && now.dev === file.identity.dev && now.ino === file.identity.ino) return open;
    throw new StorageError(
      now === null
        ? `the database file ${file.path} was removed while the daemon had it open`
        : `the database file ${file.path} was replaced by another file while the daemon had it open`,
      { code: KasaStorageCode.removed, transient: false },
    );
  }
}

/** The writer worker's protocol: its handler map, from which SqliteStore's calls are typed. */
export type WriterHandlers = WriterService['handlers'];
