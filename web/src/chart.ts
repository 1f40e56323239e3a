/** uPlot charts: power lines of several channels, and daily energy bars. */
import { formatEnergy, formatMoney, formatPower } from './format.js';

const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
  '#ea580c',
  '#4f46e5',
];

export const colour = (i: number): string => PALETTE[i % PALETTE.length] as string;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function axes(yLabel: (v: number) => string): uPlot.Axis[] {
  const stroke = cssVar('--muted');
  const grid = { stroke: cssVar('--grid'), width: 1 };
  return [
    { stroke, grid, ticks: grid },
    {
      stroke,
      grid,
      ticks: grid,
      size: 90,
      values: (_u, vals) => vals.map((v) => (v === null ? '' : yLabel(v))),
    },
  ];
}

/** A chart that follows its container's width. */
class Chart {
  #plot: uPlot | null = null;
  readonly #observer: ResizeObserver;

  constructor(readonly container: HTMLElement) {
    this.#observer = new ResizeObserver(() => this.#plot?.setSize(this.#size()));
    this.#observer.observe(container);
  }

  #size(): { width: number; height: number } {
    const width = Math.max(200, this.container.clientWidth);
    return { width, height: Math.round(Math.min(320, Math.max(180, width * 0.45))) };
  }

  /** Replaces the chart; `points` (non-empty values) is put on the container for tests and styling. */
  draw(options: Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData, points: number): void {
    this.#plot?.destroy();
    this.container.dataset['points'] = String(points);
    this.container.classList.toggle('empty', points === 0);
    // The x range drawn (seconds, 'min,max') goes on the container too, for tests: the axis a person sees.
    const showRange = (u: uPlot, key: string) => {
      if (key === 'x')
        this.container.dataset['xRange'] = `${u.scales['x']?.min ?? ''},${u.scales['x']?.max ?? ''}`;
    };
    const hooks = { ...options.hooks, setScale: [...(options.hooks?.setScale ?? []), showRange] };
    this.#plot = new uPlot({ ...options, hooks, ...this.#size() }, data, this.container);
  }
}

export interface PowerLine {
  readonly label: string;
  readonly t: readonly number[];
  readonly w: readonly number[];
}

/** Power of several channels on one time axis (the union of their bucket times). */
export class PowerChart extends Chart {
  /** `gapMs`: buckets further apart are a gap in the line, not a straight stretch. */
  show(lines: readonly PowerLine[], stepMs: number, gapMs: number): void {
    // A gap marker (null) one step after the last bucket before a gap; uPlot breaks the line there
    // and spans undefined values (times where only other channels have a bucket).
    const gapsOf = (line: PowerLine) =>
      line.t.flatMap((t, i) => {
        const next = line.t[i + 1];
        return next !== undefined && next - t > gapMs ? [t + stepMs] : [];
      });
    const gaps = lines.map(gapsOf);
    const times = [...new Set([...lines.flatMap((l) => l.t), ...gaps.flat()])].sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    let points = 0;
    const columns = lines.map((line, l) => {
      const column: (number | null | undefined)[] = new Array(times.length).fill(undefined);
      for (const t of gaps[l] ?? []) column[index.get(t) as number] = null;
      line.t.forEach((t, i) => {
        column[index.get(t) as number] = line.w[i] ?? null;
        points++;
      });
      return column;
    });
    this.draw(
      {
        series: [
          {},
          ...lines.map((line, i) => ({
            label: line.label,
            stroke: colour(i),
            width: 1.5,
            value: (_u: uPlot, v: number | null) => (v === null ? '–' : formatPower(v)),
          })),
        ],
        axes: axes(formatPower),
        legend: { show: lines.length <= 12 },
        scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 10] } },
      },
      [times.map((t) => t / 1000), ...columns] as uPlot.AlignedData,
      points,
    );
  }
}

/** Energy per day as bars. */
export class EnergyBars extends Chart {
  /**
   * `spanDays`: how many days the axis covers at least, ending with the last day given. With a
   * tariff, each day's cost shows beside its energy (in the legend, which follows the cursor).
   */
  show(
    days: readonly { startMs: number; kwh: number; cost?: number | null }[],
    currency: string | null = null,
    spanDays = 30,
  ): void {
    const bars = uPlot.paths.bars?.({ size: [0.7, 40] });
    const first = (days[0]?.startMs ?? Date.now()) / 1000;
    const last = (days.at(-1)?.startMs ?? Date.now()) / 1000;
    const xRange = { min: Math.min(first, last - (spanDays - 1) * 86_400) - 43_200, max: last + 43_200 };
    this.draw(
      {
        series: [
          { value: (_u, v) => (v === null ? '' : new Date(v * 1000).toLocaleDateString()) },
          {
            label: 'energy',
            stroke: colour(0),
            fill: `${colour(0)}99`,
            ...(bars === undefined ? {} : { paths: bars }),
            points: { show: false },
            value: (_u: uPlot, v: number | null, _series: number, i: number | null) => {
              if (v === null) return '–';
              const cost = i === null ? null : (days[i]?.cost ?? null);
              return cost === null || currency === null
                ? formatEnergy(v)
                : `${formatEnergy(v)} · ${formatMoney(cost, currency)}`;
            },
          },
        ],
        axes: axes((v) => formatEnergy(v)),
        scales: {
          // Half a day of room on each side, so the first and last bars are whole. The range is set,
          // not derived from the data: uPlot widens a single day (one x value) to years.
          x: { time: true, auto: false, ...xRange },
          y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
        },
      },
      [days.map((d) => d.startMs / 1000), days.map((d) => d.kwh)],
      days.filter((d) => d.kwh > 0).length,
    );
  }
}
