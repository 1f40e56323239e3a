import assert from 'node:assert/strict';
import { runCliProcess } from './cli.js';

/** A row of `kasa-monitor export` (CSV), every field as printed. */
export interface ExportRow {
  time: string;
  device_id: string;
  alias: string;
  power_w: string;
  voltage_v: string;
  current_a: string;
  total_wh: string;
}

/**
 * `kasa-monitor export -c config ...args` (CSV) as a separate process: its header line and its
 * rows. Fails the test unless the command exits 0.
 */
export async function readExport(
  config: string,
  args: readonly string[] = [],
): Promise<{ header: string | undefined; rows: ExportRow[] }> {
  const result = await runCliProcess(['export', '-c', config, ...args]);
  assert.equal(result.code, 0, result.stderr);
  const [header, ...lines] = result.stdout.trimEnd().split('\n');
  const rows = lines.map((line) => {
    const [time, device_id, alias, power_w, voltage_v, current_a, total_wh] = line.split(',') as string[];
    return { time, device_id, alias, power_w, voltage_v, current_a, total_wh } as ExportRow;
  });
  return { header, rows };
}
