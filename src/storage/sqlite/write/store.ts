import { Worker } from 'node:worker_threads';
import type { ChannelInfo } from '../../../domain/channel.js';
import type { Reading } from '../../../domain/reading.js';
import type { Logger } from '../../../log/logger.js';
import { isStorageError, KasaStorageCode, StorageError } from '../../errors.js';
import type { OpenInfo, SqliteOptions } from '../connection.js';
import { validateSqliteOptions } from '../connection.js';
import type { LifecycleAction, LifecycleKind, LifecycleResultOf } from '../maintenance/lifecycle-protocol.js';
import { WorkerClient } from '../rpc/client.js';
import type { CallArgs, ResultOf } from '../rpc/messages.js';
import { type CursorInfo, encodeBatch, type OutboxCursor, type OutboxRead } from './protocol.js';
import type { WriterHandlers } from './writer-service.js';

/** What a batch did: new rows, readings already stored (a replay), readings rejected as malformed. */
export interface BatchResult {
  readonly inserted: number;
  readonly duplicates: number;
  /** Readings with a non-finite number or an empty channel id: logged and never stored. */
  readonly invalid: number;
}

/** Told when the database file was found removed and a new one was opened at the same path. */
export type ReplacedListener = (event: { readonly path: string; readonly reason: string }) => void;

/** Told after every committed batch that stored something new. */
export type CommitListener = (commit: {
  readonly inserted: number;
  readonly outboxSeq: number | null;
}) => void;

/** Where the writer worker comes from; tests point it at a script that wraps the real one. */
export interface SqliteStoreWorker {
  /** The worker script (default: writer-worker.js next to this module). */
  readonly workerUrl?: URL;
}

type Client = WorkerClient<WriterHandlers>;
type Op = keyof WriterHandlers & string;

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'starting'; readonly client: Client }
  | { readonly kind: 'open'; readonly client: Client }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'failed'; readonly error: StorageError };

/**
 * The daemon's SQLite sink. The connection lives in a worker thread (writer-worker.js) so that a
 * held lock, a slow fsync or a long check never stalls polling, HTTP or the watchdog. Calls are
 * serialised by the worker; every failure arrives as a StorageError with SQLite's extended code.
 */
export class SqliteStore {
  #state: State = { kind: 'new' };
  #stopping: Promise<void> | null = null;
  readonly #commitListeners = new Set<CommitListener>();
  readonly #replacedListeners = new Set<ReplacedListener>();
  /** A reopen after the file was removed, shared by every call that found it removed. */
  #replacing: Promise<void> | null = null;
  #reopening: Promise<void> | null = null;

  constructor(
    private readonly options: SqliteOptions,
    private readonly logger: Logger,
    private readonly workerOptions: SqliteStoreWorker = {},
  ) {}

  /** Spawns the worker, opens the file, applies pragmas, migrates and runs `PRAGMA quick_check`. */
  async start(): Promise<void> {
    if (this.#state.kind !== 'new') {
      throw new StorageError(`start() called on a store that is ${this.#state.kind}`, {
        code: KasaStorageCode.internal,
        transient: false,
      });
    }
    validateSqliteOptions(this.options);
    const client: Client = new WorkerClient(
      new Worker(this.workerOptions.workerUrl ?? new URL('./writer-worker.js', import.meta.url)),
      { name: 'writer', deathIsTransient: false, onDeath: (error) => this.#workerDied(client, error) },
    );
    this.#state = { kind: 'starting', client };
    let info: OpenInfo;
    try {
      info = await this.#call('open', { options: this.options });
    } catch (error) {
      this.#state = { kind: 'stopped' };
      await client.terminate();
      throw error;
    }
    if (this.#state.kind !== 'starting') {
      throw new StorageError('the store was stopped while starting', {
        code: KasaStorageCode.notOpen,
        transient: false,
      });
    }
    this.#state = { kind: 'open', client };
    if (this.options.journalMode.toLowerCase() !== info.journalMode.toLowerCase()) {
      this.logger.warn(
        { requested: this.options.journalMode, actual: info.journalMode },
        'SQLite journal mode differs',
      );
    }
    this.logger.info(
      {
        path: this.options.path,
        sqlite: info.sqliteVersion,
        schema: info.schemaVersion,
        migrated: info.migrationsApplied,
      },
      'SQLite store open',
    );
  }

  /** Records channels as discovery reports them: new rows get an id; alias/model/parent changes update in place. */
  async upsertChannels(channels: readonly ChannelInfo[]): Promise<void> {
    if (channels.length === 0) return;
    const plain = channels.map((c) => ({
      id: c.id,
      alias: c.alias,
      model: c.model,
      parentId: c.parentId,
      parentAlias: c.parentAlias,
    }));
    await this.#call('upsertChannels', { channels: plain, nowMs: Date.now() });
  }

  /**
   * Stores a batch in one transaction. A reading already stored (same channel and time) is counted
   * as a duplicate, never stored twice; a reading for an unknown channel creates a minimal channel row.
   */
  async writeBatch(readings: readonly Reading[]): Promise<BatchResult> {
    const { batch, invalid } = encodeBatch(readings);
    if (invalid > 0) {
      this.logger.warn({ invalid, batch: readings.length }, 'malformed readings left out of a batch');
    }
    if (batch.count === 0) {
      this.#assertOpen();
      return { inserted: 0, duplicates: 0, invalid };
    }
    let result: ResultOf<WriterHandlers['writeBatch']>;
    try {
      result = await this.#call('writeBatch', { batch }, [batch.channelIndex.buffer, batch.values.buffer]);
    } catch (error) {
      if (!isRemovedError(error)) throw error;
      await this.#replaceRemovedFile(error);
      // The buffers went to the old worker: encode the batch again for the new database.
      const again = encodeBatch(readings).batch;
      result = await this.#call('writeBatch', { batch: again }, [
        again.channelIndex.buffer,
        again.values.buffer,
      ]);
    }
    if (result.inserted > 0) {
      for (const listener of this.#commitListeners) {
        try {
          listener({ inserted: result.inserted, outboxSeq: result.outboxSeq });
        } catch (error) {
          this.logger.error({ err: error }, 'commit listener failed');
        }
      }
    }
    return { inserted: result.inserted, duplicates: result.duplicates, invalid };
  }

  /** Whether batches also go to the outbox (options.outbox), which feeds the InfluxDB forwarder. */
  get outboxEnabled(): boolean {
    return this.options.outbox === true;
  }

  /**
   * Calls `listener` when the database file was removed while open and a new one was opened in its
   * place (the reader pool must reopen too); returns the unsubscribe function.
   */
  onReplaced(listener: ReplacedListener): () => void {
    this.#replacedListeners.add(listener);
    return () => {
      this.#replacedListeners.delete(listener);
    };
  }

  /** Calls `listener` after each batch that stored new readings; returns the unsubscribe function. */
  onCommit(listener: CommitListener): () => void {
    this.#commitListeners.add(listener);
    return () => {
      this.#commitListeners.delete(listener);
    };
  }

  /** Up to `limit` outbox readings after `after`, oldest commit first, with their channels' names. */
  readOutbox(after: OutboxCursor, limit: number): Promise<OutboxRead> {
    return this.#call('readOutbox', { after: { seq: after.seq, position: after.position }, limit });
  }

  /** A sink's saved cursor (the start when it never saved one) and what waits after it. */
  loadCursor(sink: string): Promise<CursorInfo> {
    return this.#call('loadCursor', { sink });
  }

  /** Saves a sink's cursor durably and prunes outbox rows every sink has passed. */
  saveCursor(sink: string, cursor: OutboxCursor): Promise<number> {
    return this.#call('saveCursor', {
      sink,
      cursor: { seq: cursor.seq, position: cursor.position },
      nowMs: Date.now(),
    });
  }

  /**
   * A data-lifecycle request to the worker: a maintenance step, a scheduled backup (served in steps,
   * with batch writes in between), or storage info.
   */
  lifecycle<K extends LifecycleKind>(
    action: Extract<LifecycleAction, { kind: K }>,
  ): Promise<LifecycleResultOf[K]> {
    return this.#call('lifecycle', { action }) as Promise<LifecycleResultOf[K]>;
  }

  /** Closes the database and ends the worker. Idempotent; safe after a failed start or a crash. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  /** new, starting, open, stopped, or failed (the worker died: reopen() brings it back). */
  get state(): State['kind'] {
    return this.#state.kind;
  }

  /**
   * Closes the connection (and its worker, a dead one included) and opens the file again with a new
   * worker: the supervisor's recovery after a crash, or after a corrupt file was moved aside.
   * Commit listeners stay subscribed; calls made meanwhile fail with KASA_NOT_OPEN (the writer holds
   * its batch and writes it again).
   */
  reopen(): Promise<void> {
    // One at a time: the supervisor's recovery and a removed-file reopen may ask at the same moment.
    this.#reopening ??= (async () => {
      await this.stop();
      this.#stopping = null;
      this.#state = { kind: 'new' };
      await this.start();
    })().finally(() => {
      this.#reopening = null;
    });
    return this.#reopening;
  }

  /**
   * The file this connection writes was removed (or replaced) at its path: say so, and open a new
   * database at the configured path (the directory is created again when it went too), so the
   * readings from now on are kept. What was written to the removed file since its removal is lost
   * with it; the error names the file.
   */
  #replaceRemovedFile(cause: StorageError): Promise<void> {
    this.#replacing ??= (async () => {
      const path = this.options.path;
      this.logger.error(
        { err: cause, path },
        `the database file ${path} was removed while the daemon was running: continuing in a new database at ${path}`,
      );
      await this.reopen();
      for (const listener of this.#replacedListeners) {
        try {
          listener({ path, reason: cause.message });
        } catch (error) {
          this.logger.error({ err: error }, 'database-replaced listener failed');
        }
      }
    })().finally(() => {
      this.#replacing = null;
    });
    return this.#replacing;
  }

  async #stop(): Promise<void> {
    const state = this.#state;
    this.#state = { kind: 'stopped' };
    if (state.kind !== 'open' && state.kind !== 'starting') return;
    try {
      await state.client.call('close');
    } catch (error) {
      this.logger.error({ err: error }, 'closing the SQLite database failed');
    } finally {
      await state.client.terminate();
    }
  }

  #assertOpen(): void {
    const state = this.#state;
    if (state.kind === 'failed') throw state.error;
    if (state.kind !== 'open') {
      throw new StorageError(`the SQLite store is ${state.kind}`, {
        code: KasaStorageCode.notOpen,
        transient: false,
      });
    }
  }

  #call<K extends Op>(op: K, ...rest: CallArgs<WriterHandlers[K]>): Promise<ResultOf<WriterHandlers[K]>> {
    const state = this.#state;
    if (state.kind === 'failed') return Promise.reject(state.error);
    if (state.kind !== 'open' && !(state.kind === 'starting' && op === 'open')) {
      return Promise.reject(
        new StorageError(`the SQLite store is ${state.kind}`, {
          code: KasaStorageCode.notOpen,
          transient: false,
        }),
      );
    }
    return state.client.call(op, ...rest);
  }

  /** The worker died on its own (the client rejects the calls pending on it): the store is failed. */
  #workerDied(client: Client, error: StorageError): void {
    const state = this.#state;
    if ((state.kind === 'open' || state.kind === 'starting') && state.client === client) {
      this.#state = { kind: 'failed', error };
      this.logger.error({ err: error }, 'SQLite writer worker died');
    }
  }
}

function isRemovedError(error: unknown): error is StorageError {
  return isStorageError(error) && error.code === KasaStorageCode.removed;
}
