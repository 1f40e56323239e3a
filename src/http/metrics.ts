/**
 * /metrics: Prometheus text through prom-client (this folder is its only importer). Every value is
 * read from the parts' own statistics when scraped (collect callbacks), so nothing is counted twice
 * and the daemon's hot paths never touch prom-client. What is served is the table in metric-table.ts;
 * this module registers its rows.
 */
import type * as PromClient from 'prom-client';
import type { Metric, MetricObjectWithValues, MetricValueWithName } from 'prom-client';
import type { DurationSummary } from '../poller/histogram.js';
import { requireCommonJs } from '../shared/commonjs.js';
import { METRIC_TABLE, type MetricsSource, type Sample, type SampledMetric } from './metric-table.js';

export type { MetricsSource, MetricsStatus } from './metric-table.js';

/** Loaded with require, not import: see shared/commonjs.ts. */
const { Counter, Gauge, Registry } = requireCommonJs('prom-client') as typeof PromClient;
type Counter = PromClient.Counter;
type Registry = PromClient.Registry;

/** What the HTTP server needs of the registry (it loads this module only when /metrics is asked). */
export interface MetricsRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** A histogram whose buckets come from a DurationSummary (ms) instead of observe() calls. */
function summaryHistogram(name: string, help: string, summary: () => DurationSummary | null): Metric<string> {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    collect: undefined,
    reset: () => undefined,
    get: async (): Promise<MetricObjectWithValues<MetricValueWithName<string>>> => {
      const s = summary();
      const values: MetricValueWithName<string>[] = [];
      if (s !== null) {
        for (const bucket of s.buckets) {
          values.push({
            metricName: `${name}_bucket`,
            labels: { le: Number.isFinite(bucket.leMs) ? bucket.leMs / 1000 : '+Inf' },
            value: bucket.count,
          });
        }
        values.push({ metricName: `${name}_sum`, labels: {}, value: s.sumMs / 1000 });
        values.push({ metricName: `${name}_count`, labels: {}, value: s.count });
      }
      return { name, help, type: 'histogram' as never, aggregator: 'sum', collect: () => undefined, values };
    },
  };
  return metric as unknown as Metric<string>;
}

/** Sets a counter to an absolute value read from a part's own counters. */
function setCounter(counter: Counter, labels: Sample[0], value: number): void {
  if (Number.isFinite(value) && value > 0) counter.inc(labels, value);
  else counter.inc(labels, 0);
}

/**
 * A gauge or counter that, at each scrape, forgets the last one's series and sets those the row
 * reads now (a plug gone, a sink switched off: its series goes too).
 */
function sampled(row: SampledMetric, source: MetricsSource, registers: Registry[]): void {
  const options = { name: row.name, help: row.help, labelNames: row.labels ?? [], registers };
  if (row.type === 'gauge') {
    new Gauge({
      ...options,
      collect() {
        return collectInto(row, source, (samples) => {
          this.reset();
          for (const [labels, value] of samples) this.set(labels, value);
        });
      },
    });
  } else {
    new Counter({
      ...options,
      collect() {
        return collectInto(row, source, (samples) => {
          this.reset();
          for (const [labels, value] of samples) setCounter(this, labels, value);
        });
      },
    });
  }
}

/** Reads a row's samples and hands them to `write`, waiting only for a row that reads asynchronously. */
function collectInto(
  row: SampledMetric,
  source: MetricsSource,
  write: (samples: Iterable<Sample>) => void,
): void | Promise<void> {
  const samples = row.samples(source);
  if (samples instanceof Promise) return samples.then(write);
  write(samples);
}

export function createMetricsRegistry(source: MetricsSource): Registry {
  const registry = new Registry();
  const registers = [registry];
  for (const row of METRIC_TABLE) {
    if (row.type === 'histogram') {
      registry.registerMetric(summaryHistogram(row.name, row.help, () => row.summary(source)));
    } else if (row.when?.(source) ?? true) {
      sampled(row, source, registers);
    }
  }
  return registry;
}
