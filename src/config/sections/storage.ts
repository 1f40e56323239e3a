/** storage: where readings are kept, composed of its subsections. */
import * as z from 'zod';
import { influxSection } from './influx.js';
import { backupSection, retentionSection, rollupsSection } from './lifecycle.js';
import { poolSection, sqliteSection } from './sqlite.js';

export function storageSection(databaseDefault: string) {
  return z
    .strictObject({
      sqlite: sqliteSection(databaseDefault),
      pool: poolSection(),
      influx: influxSection(),
      rollups: rollupsSection(),
      retention: retentionSection(),
      backup: backupSection(),
    })
    .prefault({})
    .meta({ description: 'Where readings are kept.' });
}
