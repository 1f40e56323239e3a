/** storage.sqlite and storage.pool: the database file, its pragmas and the reader connections. */

import { resolve } from 'node:path';
import * as z from 'zod';
import { duration, int, key, RESTART } from './building-blocks.js';

/** `$STATE_DIRECTORY/kasa-monitor.db` (the first entry when systemd passes a list), else `./data/kasa-monitor.db`. */
export function defaultDatabasePath(env: NodeJS.ProcessEnv = process.env): string {
  const stateDirectory = env['STATE_DIRECTORY']?.split(':').find((entry) => entry !== '');
  return resolve(stateDirectory ?? 'data', 'kasa-monitor.db');
}

export const JOURNAL_MODES = ['WAL', 'DELETE', 'TRUNCATE', 'PERSIST', 'MEMORY', 'OFF'] as const;
export const SYNCHRONOUS_MODES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;
export const TEMP_STORES = ['DEFAULT', 'FILE', 'MEMORY'] as const;

export function sqliteSection(databaseDefault: string) {
  return z
    .strictObject({
      path: key(
        z
          .string()
          .min(1)
          .nullable()
          .optional()
          .transform((path) => resolve(path ?? databaseDefault)),
        "The database file. Default: $STATE_DIRECTORY/kasa-monitor.db under systemd; /var/lib/kasa-monitor/kasa-monitor.db (the service's) for any command that reads /etc/kasa-monitor/config.yaml; else ./data/kasa-monitor.db. Relative paths resolve against the working directory.",
        RESTART,
      ),
      journal_mode: key(z.enum(JOURNAL_MODES).prefault('WAL'), 'SQLite journal_mode pragma.', RESTART),
      synchronous: key(
        z.enum(SYNCHRONOUS_MODES).prefault('FULL'),
        'SQLite synchronous pragma. FULL makes every committed reading survive a power cut.',
        RESTART,
      ),
      // 16 MB holds the pages every 1 Hz write touches (the newest leaf of each channel in the readings
      // and minute-rollup trees) for 1,000 channels, and fills within minutes; the former default,
      // 10,000 pages (40 MiB), let the writer's memory grow for half an hour at that rate.
      cache_size: key(
        z.number().int().prefault(-16_000),
        'SQLite cache_size pragma: pages when positive, KiB when negative (-16000: 16 MB).',
        RESTART,
      ),
      temp_store: key(z.enum(TEMP_STORES).prefault('MEMORY'), 'SQLite temp_store pragma.', RESTART),
      busy_timeout: key(
        duration('100ms', { allowZero: true }),
        'How long the writer waits for a lock held by another connection before SQLITE_BUSY; kept short because the database retry policy retries a busy write with backoff.',
        RESTART,
      ),
    })
    .prefault({})
    .meta({ description: 'The SQLite database, the source of truth.' });
}

export function poolSection() {
  return z
    .strictObject({
      size: key(
        int(1, 1000).prefault(5),
        'Reader connections kept open while they are used; any idle for 10 s is closed (each is a worker thread) and opened again on demand.',
        RESTART,
      ),
      max_overflow: key(int(0, 1000).prefault(10), 'Extra reader connections allowed under load.', RESTART),
      timeout: key(duration('30s'), 'How long a request waits for a free reader connection.', RESTART),
      recycle: key(duration('3600s'), 'Reader connections older than this are reopened.', RESTART),
    })
    .prefault({})
    .meta({
      description:
        'Reader connections: the HTTP API and the health checks read through them, in worker threads.',
    });
}
