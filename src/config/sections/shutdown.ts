/** shutdown: stopping the daemon. */
import * as z from 'zod';
import { duration, HOT, key } from './building-blocks.js';

export function shutdownSection() {
  return z
    .strictObject({
      timeout: key(
        duration('10s'),
        'How long SIGTERM may take to drain the queue into storage before a hard exit.',
        HOT,
      ),
    })
    .prefault({})
    .meta({ description: 'Stopping the daemon.' });
}
