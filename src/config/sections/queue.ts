/** queue: the bounded queue between the poller and the writer. */
import * as z from 'zod';
import type { OverflowPolicy } from '../../queue/bounded-queue.js';
import { HOT, int, key } from './building-blocks.js';

export const OVERFLOW_POLICIES = ['drop-oldest', 'drop-newest'] as const satisfies readonly OverflowPolicy[];

export function queueSection() {
  return z
    .strictObject({
      capacity: key(
        int(1, 100_000_000).prefault(100_000),
        'Readings held in memory while storage catches up.',
        HOT,
      ),
      overflow: key(
        z.enum(OVERFLOW_POLICIES).prefault('drop-oldest'),
        'Which reading is lost when the queue is full.',
        HOT,
      ),
    })
    .prefault({})
    .meta({ description: 'The bounded queue between the poller and the writer.' });
}
