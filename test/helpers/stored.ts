import { existsSync } from 'node:fs';
import { openReadingsReader } from '../../src/storage/sqlite/index.js';

type ReadingsQuery = Parameters<ReturnType<typeof openReadingsReader>['readings']>[0];

/** How many readings each channel (deviceId or outlet child id) has in the database file. */
export function storedPerChannel(path: string): Map<string, number> {
  const reader = openReadingsReader(path);
  try {
    const counts = new Map<string, number>();
    for (const r of reader.readings()) counts.set(r.deviceId, (counts.get(r.deviceId) ?? 0) + 1);
    return counts;
  } finally {
    reader.close();
  }
}

/** How many readings the database file holds in all. */
export function storedCount(path: string): number {
  const reader = openReadingsReader(path);
  try {
    let n = 0;
    for (const _ of reader.readings()) n++;
    return n;
  } finally {
    reader.close();
  }
}

/** Readings stored so far in the file, 0 while the file or its schema is not there yet. */
export function storedTotal(path: string): number {
  if (!existsSync(path)) return 0;
  try {
    return storedCount(path);
  } catch {
    return 0;
  }
}

/** Every stored reading that `query` selects (all of them by default), as the export reads them. */
export function storedReadings(path: string, query: ReadingsQuery = {}) {
  const reader = openReadingsReader(path);
  try {
    return [...reader.readings(query)];
  } finally {
    reader.close();
  }
}
