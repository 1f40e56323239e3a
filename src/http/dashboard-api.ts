/**
 * Parameters of the dashboard's read API, checked and bounded before anything is read:
 * GET /api/series?device=&from=&to=&points=&resolution= and GET /api/daily-energy?device=&days=.
 */
import { parseTime } from '../shared/time.js';
import type { DashboardEnergyQuery, DashboardSeriesQuery } from '../storage/sqlite/index.js';

/** A bad parameter: answered with 400 and this message. */
export class BadParameter extends Error {}

/** /api/series without `from` covers the last hour. */
export const DEFAULT_SERIES_WINDOW_MS = 3_600_000;
/** The longest range one /api/series request may cover. */
export const MAX_SERIES_RANGE_MS = 400 * 86_400_000;
export const DEFAULT_SERIES_POINTS = 600;
/** Points per channel for one channel, and for all channels at once (100 channels x 400 = 40k). */
export const MAX_SERIES_POINTS = 2000;
export const MAX_SERIES_POINTS_ALL = 400;
export const DEFAULT_ENERGY_DAYS = 30;
export const MAX_ENERGY_DAYS = 400;

function time(params: URLSearchParams, name: 'from' | 'to', nowMs: number): number | undefined {
  const text = params.get(name);
  if (text === null || text === '') return undefined;
  try {
    return parseTime(text, nowMs, name);
  } catch (error) {
    throw new BadParameter(error instanceof Error ? error.message : String(error));
  }
}

function integer(params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const text = params.get(name);
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new BadParameter(`${name} must be a whole number from ${min} to ${max}, got '${text}'`);
  return value;
}

function device(params: URLSearchParams): { device?: string } {
  const text = params.get('device');
  return text === null || text === '' ? {} : { device: text };
}

export function parseSeriesQuery(params: URLSearchParams, nowMs: number): DashboardSeriesQuery {
  const toMs = time(params, 'to', nowMs) ?? nowMs;
  const fromMs = time(params, 'from', nowMs) ?? toMs - DEFAULT_SERIES_WINDOW_MS;
  if (toMs <= fromMs) throw new BadParameter('to must be later than from');
  if (toMs - fromMs > MAX_SERIES_RANGE_MS)
    throw new BadParameter(`the range may cover at most ${MAX_SERIES_RANGE_MS / 86_400_000} days`);
  const which = device(params);
  const max = which.device === undefined ? MAX_SERIES_POINTS_ALL : MAX_SERIES_POINTS;
  const points = Math.min(integer(params, 'points', DEFAULT_SERIES_POINTS, 10, MAX_SERIES_POINTS), max);
  const resolution = params.get('resolution') ?? 'auto';
  if (resolution !== 'auto' && resolution !== 'raw' && resolution !== 'minute' && resolution !== 'hour')
    throw new BadParameter(`resolution must be auto, raw, minute or hour, got '${resolution}'`);
  return {
    fromMs,
    toMs,
    points,
    ...which,
    ...(resolution === 'auto' ? {} : { resolution }),
  };
}

export function parseEnergyQuery(
  params: URLSearchParams,
  nowMs: number,
  settings: { readonly timeZone: string; readonly gapLimitMs: number },
): DashboardEnergyQuery {
  return {
    days: integer(params, 'days', DEFAULT_ENERGY_DAYS, 1, MAX_ENERGY_DAYS),
    nowMs,
    timeZone: settings.timeZone,
    gapLimitMs: settings.gapLimitMs,
    ...device(params),
  };
}
