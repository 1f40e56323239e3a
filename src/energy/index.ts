/** Energy accounting: pure functions and classes, no I/O (used by the SQLite worker and the CLI). */

export {
  type AddOutcome,
  type Bucket,
  ChannelAccumulator,
  emptyBucket,
  type FoldSink,
  type GapRecord,
} from './accumulator.js';
export { type CounterInterval, type CounterReading, counterInterval, plausibleEnergyWh } from './counter.js';
export {
  type BucketTotals,
  PeriodCalendar,
  type PeriodEnergy,
  type PeriodGap,
  type PeriodKind,
  summarisePeriods,
} from './periods.js';
export { type BucketCalendar, bucketCalendar, TIERS, type Tier } from './tiers.js';
export { isValidTimeZone, parseLocalDate, systemTimeZone, ZoneCalendar, zoneCalendar } from './zone.js';
