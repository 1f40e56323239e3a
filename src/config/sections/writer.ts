/** writer: batching readings into SQLite. */
import * as z from 'zod';
import { duration, HOT, int, key } from './building-blocks.js';

export function writerSection() {
  return z
    .strictObject({
      batch_size: key(
        int(1, 1_000_000).prefault(1000),
        'Readings written per SQLite transaction at most.',
        HOT,
      ),
      flush_interval: key(duration('1s'), 'Longest time a reading waits in the queue before a write.', HOT),
    })
    .prefault({})
    .meta({ description: 'Batching readings into SQLite.' });
}
