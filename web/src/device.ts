/** A device's page (GET /device?id=): power over a range, 30 days of energy, the last readings. */
import {
  type DeviceInfo,
  dailyEnergy,
  devices,
  energyByDay,
  every,
  getJson,
  linesOf,
  series,
} from './api.js';
import { EnergyBars, PowerChart } from './chart.js';
import { formatEnergy, formatMoney, formatPower, formatStep, formatTime } from './format.js';
import { element, notice, rangeButtons, stateLabel, watchHealth } from './page.js';

const RANGE_MS: Readonly<Record<string, number>> = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
};
/** The readings table shows the newest rows of the last few minutes (the CSV has the whole range). */
const TABLE_WINDOW_MS = 5 * 60_000;
const TABLE_ROWS = 30;

interface ReadingRow {
  readonly time: string;
  readonly device_id: string;
  readonly alias: string;
  readonly power_w: number;
  /** null for plugs that measure only power and energy. */
  readonly voltage_v: number | null;
  readonly current_a: number | null;
  readonly total_wh: number;
}

const volts = (v: number | null) => (v === null ? '' : `${v.toFixed(1)} V`);
const amperes = (a: number | null) => (a === null ? '' : `${a.toFixed(3)} A`);

const id = new URLSearchParams(location.search).get('id') ?? '';
const byId = (name: string) => document.getElementById(name) as HTMLElement;

function findDevice(list: readonly DeviceInfo[]): { device: DeviceInfo; channels: string[] } | null {
  for (const d of list) {
    if (d.device_id === id) return { device: d, channels: d.channels.map((c) => c.device_id) };
    if (d.channels.some((c) => c.device_id === id)) return { device: d, channels: [id] };
  }
  return null;
}

async function live(): Promise<void> {
  const found = findDevice(await devices());
  if (found === null) {
    byId('title').textContent = id === '' ? 'No device chosen' : `Unknown device ${id}`;
    return;
  }
  const { device, channels } = found;
  const names = device.channels.filter((c) => channels.includes(c.device_id));
  const alias =
    channels.length === 1 && channels[0] !== device.device_id ? (names[0]?.alias ?? id) : device.alias;
  byId('title').textContent = alias || id;
  document.title = `${alias || id} · kasa-monitor`;
  byId('model').textContent =
    `${device.model} at ${device.host}${channels[0] !== device.device_id ? ` (outlet of ${device.alias})` : ''}`;
  const state = byId('state');
  state.textContent = stateLabel(device.state);
  state.className = `state state-${device.state.replace(/[^a-z_-]/gi, '')}`;
  const readings = names.map((c) => c.latest).filter((r) => r !== null);
  byId('power').textContent =
    readings.length === 0 ? '–' : formatPower(readings.reduce((s, r) => s + r.power_w, 0));
  const one = readings.length === 1 ? readings[0] : undefined;
  byId('details').textContent =
    one === undefined
      ? ''
      : [volts(one.voltage_v), amperes(one.current_a), `counter ${one.total_wh} Wh`]
          .filter((part) => part !== '')
          .join(' · ');
}

const powerChart = new PowerChart(byId('chart'));
let range = '1h';

async function drawPower(): Promise<void> {
  const wanted = range;
  const result = await series({ device: id, from: `-${wanted}`, points: 600 });
  if (wanted !== range) return;
  powerChart.show(linesOf(result), result.step_ms, result.gap_ms);
  const source = result.resolution === 'raw' ? 'readings' : `${result.resolution} rollups`;
  byId('resolution').textContent = `Mean power per ${formatStep(result.step_ms)}, from ${source}.`;
}

async function drawEnergy(): Promise<void> {
  const result = await dailyEnergy({ device: id, days: 30 });
  const days = new Map<number, number>();
  const labels = new Map<number, string>();
  for (const c of result.channels)
    for (const d of c.days) {
      days.set(d.start_ms, (days.get(d.start_ms) ?? 0) + d.energy_kwh);
      labels.set(d.start_ms, d.day);
    }
  // With a tariff, each day's cost from /api/energy (the days carry the same labels).
  const first = [...labels].sort((a, b) => a[0] - b[0])[0]?.[1];
  // Without it (an error) the bars still show, without cost.
  const report =
    first === undefined ? null : await energyByDay({ device: id, from: first }).catch(() => null);
  const currency = report?.currency ?? null;
  const costs = new Map<string, number>();
  for (const row of report?.rows ?? [])
    if (row.cost !== null) costs.set(row.period, (costs.get(row.period) ?? 0) + row.cost);
  const sorted = [...days]
    .sort((a, b) => a[0] - b[0])
    .map(([startMs, kwh]) => ({ startMs, kwh, cost: costs.get(labels.get(startMs) ?? '') ?? null }));
  new EnergyBars(byId('energy')).show(sorted, currency);
  const total = sorted.reduce((s, d) => s + d.kwh, 0);
  const cost = sorted.reduce((s, d) => s + (d.cost ?? 0), 0);
  byId('energy-total').textContent =
    `${formatEnergy(total)}${currency === null ? '' : `, ${formatMoney(cost, currency)}`} in ${sorted.length} day${sorted.length === 1 ? '' : 's'} (${result.time_zone})`;
}

async function fillTable(): Promise<void> {
  const toMs = Date.now();
  const params = new URLSearchParams({
    device: id,
    from: new Date(toMs - TABLE_WINDOW_MS).toISOString(),
    to: new Date(toMs).toISOString(),
    format: 'json',
  });
  const rows = await getJson<ReadingRow[]>(`api/readings?${params}`);
  const body = document.querySelector('#readings tbody') as HTMLElement;
  body.replaceChildren(
    ...rows
      .slice(-TABLE_ROWS)
      .reverse()
      .map((r) =>
        element(
          'tr',
          {},
          element('td', { text: formatTime(r.time) }),
          element('td', { text: r.alias || r.device_id }),
          element('td', { text: formatPower(r.power_w), className: 'num' }),
          element('td', { text: volts(r.voltage_v), className: 'num' }),
          element('td', { text: amperes(r.current_a), className: 'num' }),
          element('td', { text: `${r.total_wh} Wh`, className: 'num' }),
        ),
      ),
  );
  if (rows.length === 0) {
    const td = element('td', { text: 'No readings in the last 5 minutes.' });
    td.colSpan = 6;
    body.append(element('tr', {}, td));
  }
}

/** The CSV link covers the chart's range, up to now. */
function updateCsvLink(): void {
  const toMs = Date.now();
  const params = new URLSearchParams({
    device: id,
    from: new Date(toMs - (RANGE_MS[range] ?? 3_600_000)).toISOString(),
    to: new Date(toMs).toISOString(),
    format: 'csv',
  });
  const link = byId('csv') as HTMLAnchorElement;
  link.href = `api/readings?${params}`;
  link.download = `${id}-${range}.csv`;
  link.textContent = `Download the last ${range} as CSV`;
}

every(2_000, live, (error) => notice(`device: ${String(error)}`));
every(10_000, fillTable, (error) => notice(`readings: ${String(error)}`));
every(300_000, drawEnergy, (error) => notice(`energy: ${String(error)}`));
let timer: ReturnType<typeof setInterval> | undefined;
rangeButtons(byId('ranges'), (picked) => {
  range = picked;
  updateCsvLink();
  clearInterval(timer);
  const refresh = () => {
    updateCsvLink();
    drawPower().catch((error: unknown) => notice(`chart: ${String(error)}`));
  };
  refresh();
  timer = setInterval(refresh, picked === '1h' ? 15_000 : 300_000);
});
watchHealth(byId('health'));
