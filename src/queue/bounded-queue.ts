import type { Logger } from '../log/logger.js';

export type OverflowPolicy = 'drop-oldest' | 'drop-newest';

export interface BoundedQueueOptions {
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
}

export interface QueueStats {
  readonly size: number;
  readonly capacity: number;
  /** Items ever offered. */
  readonly offered: number;
  /** Items ever removed by `take`. */
  readonly taken: number;
  /** Items lost to overflow (offered and never taken). offered = taken + dropped + size. */
  readonly dropped: number;
  /** True while the queue is in an overflow episode (full and dropping). */
  readonly overflowing: boolean;
}

/**
 * A fixed-capacity FIFO ring that never blocks the producer. When full, the overflow policy picks
 * which item is lost; every loss is counted, and logged once per episode (when dropping starts and
 * when it ends) rather than once per item, so a long storage outage cannot flood the journal.
 */
export class BoundedQueue<T> {
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;
  #overflow: OverflowPolicy;
  #offered = 0;
  #taken = 0;
  #dropped = 0;
  #episodeDrops = 0;
  #listeners = new Set<() => void>();

  constructor(
    options: BoundedQueueOptions,
    private readonly logger: Logger,
  ) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`queue capacity must be a positive integer, got ${options.capacity}`);
    }
    this.#items = new Array<T | undefined>(options.capacity);
    this.#overflow = options.overflow;
  }

  get size(): number {
    return this.#size;
  }

  get capacity(): number {
    return this.#items.length;
  }

  /** Adds an item; returns false when the item itself (drop-newest) or the oldest one was dropped. */
  offer(item: T): boolean {
    this.#offered++;
    const capacity = this.#items.length;
    let accepted = true;
    if (this.#size === capacity) {
      this.#recordDrop();
      accepted = false;
      if (this.#overflow === 'drop-newest') return false;
      // drop-oldest: overwrite the head slot and advance.
      this.#items[this.#head] = undefined;
      this.#head = (this.#head + 1) % capacity;
      this.#size--;
    }
    this.#items[(this.#head + this.#size) % capacity] = item;
    this.#size++;
    for (const listener of this.#listeners) listener();
    return accepted;
  }

  /** Removes and returns up to `max` of the oldest items. */
  take(max: number): T[] {
    const count = Math.min(max, this.#size);
    const out = new Array<T>(count);
    const capacity = this.#items.length;
    for (let i = 0; i < count; i++) {
      out[i] = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined;
      this.#head = (this.#head + 1) % capacity;
    }
    this.#size -= count;
    this.#taken += count;
    if (count > 0) this.#endEpisode();
    return out;
  }

  /** Called after every offer; the writer uses it to flush early once a batch is full. */
  onOffer(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Applies a new capacity (config reload). Shrinking below the current size drops the oldest. */
  resize(capacity: number, overflow: OverflowPolicy = this.#overflow): void {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
    }
    this.#overflow = overflow;
    const keep = this.take(this.#size);
    this.#taken -= keep.length;
    const excess = Math.max(0, keep.length - capacity);
    for (let i = 0; i < excess; i++) this.#recordDrop();
    this.#items = new Array<T | undefined>(capacity);
    this.#head = 0;
    this.#size = 0;
    for (const item of keep.slice(excess)) this.#items[this.#size++] = item;
  }

  stats(): QueueStats {
    return {
      size: this.#size,
      capacity: this.#items.length,
      offered: this.#offered,
      taken: this.#taken,
      dropped: this.#dropped,
      overflowing: this.#episodeDrops > 0,
    };
  }

  #recordDrop(): void {
    this.#dropped++;
    if (this.#episodeDrops++ === 0) {
      this.logger.warn(
        { capacity: this.#items.length, policy: this.#overflow },
        'queue full: dropping readings until storage catches up',
      );
    }
  }

  #endEpisode(): void {
    if (this.#episodeDrops === 0) return;
    this.logger.warn(
      { dropped: this.#episodeDrops, totalDropped: this.#dropped },
      'queue overflow ended: readings were dropped',
    );
    this.#episodeDrops = 0;
  }
}
