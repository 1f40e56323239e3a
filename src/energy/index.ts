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
export { type DynamicPrice, type PricesParse, parsePricesCsv } from './prices.js';
export {
  CostLedger,
  type EnergyFlow,
  type EnergySource,
  flowsFromReadings,
  type PeriodCost,
  periodCost,
  periodSource,
  standingCharges,
} from './tariff.js';
export {
  DAY_NAMES,
  type DayName,
  type PriceSegment,
  parseClock,
  type TariffConfig,
  TariffRules,
} from './tariff-rules.js';
export { type BucketCalendar, bucketCalendar, TIERS, type Tier } from './tiers.js';
export { isValidTimeZone, parseLocalDate, systemTimeZone, ZoneCalendar, zoneCalendar } from './zone.js';
