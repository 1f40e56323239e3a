/**
 * The overview (GET /): every channel's live power and today's energy (and cost, with a tariff), and
 * a chart of them all.
 */
import { type DeviceInfo, dailyEnergy, devices, energyByDay, every, linesOf, series } from './api.js';
import { PowerChart } from './chart.js';
import { formatAge, formatEnergy, formatMoney, formatPower } from './format.js';
import { element, notice, rangeButtons, stateLabel, watchHealth } from './page.js';

const LIVE_MS = 2_000;
const ENERGY_MS = 60_000;
const CHART_MS: Readonly<Record<string, number>> = { '1h': 15_000, '24h': 120_000, '7d': 600_000 };

interface RowCells {
  readonly state: HTMLElement;
  readonly power: HTMLElement;
  readonly today: HTMLElement;
  /** Today's cost; only with a tariff. */
  readonly cost: HTMLElement | null;
  readonly last: HTMLElement;
}

const body = document.querySelector<HTMLTableSectionElement>('#devices tbody') as HTMLTableSectionElement;
const cells = new Map<string, RowCells>();
/** Channels of each row: a strip's row sums its outlets. */
const rowChannels = new Map<string, string[]>();
let shape = '';
let today = new Map<string, number>();
/** Today's cost per channel, in `currency`; null currency: no tariff, no cost column. */
let todayCost = new Map<string, number>();
let currency: string | null = null;
let latest: DeviceInfo[] = [];

function stateBadge(state: string): HTMLElement {
  return element('span', {
    text: stateLabel(state),
    className: `state state-${state.replace(/[^a-z_-]/gi, '')}`,
  });
}

function deviceLink(id: string, alias: string): HTMLAnchorElement {
  const a = element('a', { text: alias || id });
  a.href = `device?id=${encodeURIComponent(id)}`;
  return a;
}

function addRow(id: string, name: Node, state: string, channels: string[], className = ''): void {
  const row = element('tr', {
    className: `${className} state-row-${state.replace(/[^a-z_-]/gi, '')}`.trim(),
  });
  row.dataset['channel'] = id;
  const c: RowCells = {
    state: element('td'),
    power: element('td', { className: 'num power' }),
    today: element('td', { className: 'num today' }),
    cost: currency === null ? null : element('td', { className: 'num cost' }),
    last: element('td', { className: 'last' }),
  };
  c.state.append(stateBadge(state));
  row.append(element('th', { className: 'name' }, name), c.state, c.power, c.today);
  if (c.cost !== null) row.append(c.cost);
  row.append(c.last);
  row.setAttribute('scope', 'row');
  body.append(row);
  cells.set(id, c);
  rowChannels.set(id, channels);
}

/** Rebuilds the table when devices, channels or states change; otherwise only numbers change. */
function build(list: readonly DeviceInfo[]): void {
  const next = JSON.stringify([
    currency,
    list.map((d) => [d.device_id, d.alias, d.state, d.channels.map((c) => [c.device_id, c.alias])]),
  ]);
  if (next === shape) return;
  shape = next;
  const costs = currency !== null;
  (document.getElementById('cost-head') as HTMLElement).hidden = !costs;
  (document.getElementById('totals') as HTMLElement).hidden = !costs;
  body.replaceChildren();
  cells.clear();
  rowChannels.clear();
  if (list.length === 0) {
    const td = element('td', { text: 'No plugs found yet. Discovery runs in the background.' });
    td.colSpan = costs ? 6 : 5;
    body.append(element('tr', {}, td));
    return;
  }
  for (const d of list) {
    if (!d.has_emeter || d.channels.length === 0) {
      const row = element('tr', { className: 'no-meter' });
      const note = element('td', { text: 'no energy meter', className: 'muted' });
      note.colSpan = costs ? 4 : 3;
      const state = element('td');
      state.append(stateBadge(d.state));
      row.append(element('th', { className: 'name', text: d.alias || d.device_id }), state, note);
      body.append(row);
      continue;
    }
    const single = d.channels.length === 1 && d.channels[0]?.device_id === d.device_id;
    if (single) {
      addRow(d.device_id, deviceLink(d.device_id, d.alias), d.state, [d.device_id]);
      continue;
    }
    const title = element(
      'span',
      {},
      deviceLink(d.device_id, d.alias),
      element('span', { text: ` ${d.model}`, className: 'muted model' }),
    );
    addRow(
      d.device_id,
      title,
      d.state,
      d.channels.map((c) => c.device_id),
      'strip',
    );
    for (const c of d.channels)
      addRow(c.device_id, deviceLink(c.device_id, c.alias), d.state, [c.device_id], 'outlet');
  }
}

const byIdEl = (id: string) => document.getElementById(id) as HTMLElement;

/** The summed cost of `channels` today, as text with the currency and exactly in data-cost. */
function showCost(cell: HTMLElement, channels: readonly string[]): void {
  const known = channels.map((ch) => todayCost.get(ch)).filter((k) => k !== undefined);
  if (known.length === 0 || currency === null) {
    cell.textContent = '–';
    delete cell.dataset['cost'];
    return;
  }
  const sum = known.reduce((a, b) => a + b, 0);
  cell.textContent = formatMoney(sum, currency);
  cell.dataset['cost'] = String(sum);
}

function fill(list: readonly DeviceInfo[]): void {
  const byChannel = new Map(list.flatMap((d) => d.channels.map((c) => [c.device_id, c] as const)));
  for (const [id, c] of cells) {
    const channels = (rowChannels.get(id) ?? []).map((ch) => byChannel.get(ch));
    const readings = channels.map((ch) => ch?.latest ?? null);
    const known = readings.filter((r) => r !== null);
    if (known.length === 0) {
      c.power.textContent = '–';
      c.last.textContent = 'no reading yet';
    } else {
      const watts = known.reduce((sum, r) => sum + r.power_w, 0);
      c.power.textContent = formatPower(watts);
      c.power.dataset['w'] = String(watts);
      const newest = known
        .map((r) => r.time)
        .sort()
        .at(-1) as string;
      c.last.textContent = formatAge(newest);
      c.last.title = newest;
    }
    const kwh = (rowChannels.get(id) ?? []).map((ch) => today.get(ch));
    const knownKwh = kwh.filter((k) => k !== undefined);
    c.today.textContent = knownKwh.length === 0 ? '–' : formatEnergy(knownKwh.reduce((a, b) => a + b, 0));
    if (c.cost !== null) showCost(c.cost, rowChannels.get(id) ?? []);
  }
  if (currency !== null) {
    // Every metered channel once (a strip's row already sums its outlets).
    const channels = [...byChannel.keys()];
    const kwh = channels.map((ch) => today.get(ch)).filter((k) => k !== undefined);
    byIdEl('total-today').textContent = kwh.length === 0 ? '–' : formatEnergy(kwh.reduce((a, b) => a + b, 0));
    showCost(byIdEl('total-cost'), channels);
  }
  const updated = document.getElementById('updated');
  if (updated) updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
}

every(
  LIVE_MS,
  async () => {
    latest = await devices();
    build(latest);
    fill(latest);
  },
  (error) => notice(`devices: ${String(error)}`),
);

every(
  ENERGY_MS,
  async () => {
    const result = await dailyEnergy({ days: 1 });
    today = new Map(result.channels.map((c) => [c.device_id, c.days.at(-1)?.energy_kwh ?? 0]));
    // Today's cost, from the same report as `kasa-monitor energy` (its day label as daily-energy's).
    const day = result.channels.find((c) => c.days.length > 0)?.days.at(-1)?.day;
    if (day !== undefined) {
      const report = await energyByDay({ from: day });
      currency = report.currency;
      todayCost = new Map();
      for (const row of report.rows) {
        if (row.period === day && row.cost !== null) todayCost.set(row.device_id, row.cost);
      }
    }
    if (latest.length > 0) build(latest);
    fill(latest);
  },
  (error) => notice(`energy: ${String(error)}`),
);

const chart = new PowerChart(document.getElementById('chart') as HTMLElement);
let range = '1h';
let chartTimer: ReturnType<typeof setInterval> | undefined;
async function drawChart(): Promise<void> {
  const wanted = range;
  // All channels at once: 1 h in minutes, 24 h in 6 minutes, 7 d in hours (rollups, few rows).
  const result = await series({ from: `-${wanted}`, points: wanted === '1h' ? 60 : 240 });
  if (wanted !== range) return;
  chart.show(linesOf(result), result.step_ms, result.gap_ms);
}
rangeButtons(document.getElementById('ranges') as HTMLElement, (picked) => {
  range = picked;
  clearInterval(chartTimer);
  const refresh = () => drawChart().catch((error: unknown) => notice(`chart: ${String(error)}`));
  refresh();
  chartTimer = setInterval(refresh, CHART_MS[picked] ?? 60_000);
});

watchHealth(document.getElementById('health') as HTMLElement);
