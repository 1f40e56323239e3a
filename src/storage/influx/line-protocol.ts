/**
 * InfluxDB line protocol for readings, exactly as DESIGN.md specifies: measurement `kasa_energy`;
 * tags device_id, alias, model, parent_id (strip outlets only) and the configured global tags;
 * float fields power_w, voltage_v, current_a, total_wh (voltage_v and current_a omitted when the plug
 * does not measure them); the poll time in milliseconds.
 *
 * The same reading always gives the same line (tags sorted by name), so a replay writes identical
 * points, which InfluxDB stores once (same measurement, tag set and timestamp).
 */
import { escape as lineProtocol } from '@influxdata/influxdb-client';

export const MEASUREMENT = 'kasa_energy';

/** The names of a channel as tags need them. */
export interface ChannelTags {
  readonly deviceId: string;
  readonly alias: string;
  readonly model: string;
  readonly parentId: string | null;
}

/** One reading in canonical integer units (as SQLite stores it). */
export interface LineReading {
  readonly tsMs: number;
  readonly powerMw: number;
  /** Null: not measured, the field is left out of the point (never written as 0). */
  readonly voltageMv: number | null;
  readonly currentMa: number | null;
  readonly totalWh: number;
}

/**
 * A tag value as line protocol needs it: commas, equals signs, spaces and newlines escaped. A
 * trailing backslash would escape the separator after it, so it is dropped. Empty means "no tag"
 * (line protocol has no empty tag values).
 */
function tagValue(value: string): string {
  return lineProtocol.tag(value.replace(/\\+$/, ''));
}

/**
 * `kasa_energy,<tags> ` for a channel: computed once per channel and batch. Tags are sorted by name
 * (InfluxDB's recommendation, and what makes the line of a reading always the same).
 */
export function seriesPrefix(
  channel: ChannelTags,
  globalTags: Readonly<Record<string, string>> = {},
): string {
  const tags: [string, string][] = Object.entries(globalTags).map(([name, value]) => [name, value]);
  tags.push(['device_id', channel.deviceId], ['alias', channel.alias], ['model', channel.model]);
  if (channel.parentId !== null) tags.push(['parent_id', channel.parentId]);
  const parts: string[] = [];
  for (const [name, value] of tags.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const escaped = tagValue(value);
    if (escaped !== '') parts.push(`${lineProtocol.tag(name)}=${escaped}`);
  }
  return `${MEASUREMENT},${parts.join(',')} `;
}

/** Integer milli-units as a decimal: 40001 → "40.001" (a plain number is a float in line protocol). */
function milli(value: number): string {
  return String(value / 1000);
}

/** The line of one reading after its series prefix. */
export function fieldsAndTime(reading: LineReading): string {
  const voltage = reading.voltageMv === null ? '' : `,voltage_v=${milli(reading.voltageMv)}`;
  const current = reading.currentMa === null ? '' : `,current_a=${milli(reading.currentMa)}`;
  return `power_w=${milli(reading.powerMw)}${voltage}${current},total_wh=${reading.totalWh} ${reading.tsMs}`;
}

/** The whole line of one reading. */
export function readingLine(
  channel: ChannelTags,
  reading: LineReading,
  globalTags: Readonly<Record<string, string>> = {},
): string {
  return seriesPrefix(channel, globalTags) + fieldsAndTime(reading);
}
