/** backfill: filling gaps from the plugs' own statistics (issue 13). */
import * as z from 'zod';
import { duration, key, RESTART } from './building-blocks.js';

export function backfillSection() {
  return z
    .strictObject({
      enabled: key(
        z.boolean().prefault(true),
        "After a gap, fill each complete day it touched from the plugs' own day statistics (`kasa-monitor energy --backfill` does the same once).",
        RESTART,
      ),
      interval: key(
        duration('1h'),
        'How often the daemon looks for gaps to fill (a run asks a plug only when it has an unfilled day).',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: "Gap fills from the plugs' own energy statistics." });
}
