/** The daemon's JSON API, as the dashboard uses it. Every URL is relative to the page. */

export interface LatestReading {
  readonly time: string;
  readonly power_w: number;
  /** null for plugs that measure only power and energy. */
  readonly voltage_v: number | null;
  readonly current_a: number | null;
  readonly total_wh: number;
}

export interface ChannelInfo {
  readonly device_id: string;
  readonly alias: string;
  readonly parent_id: string | null;
  readonly latest: LatestReading | null;
}

export interface DeviceInfo {
  readonly device_id: string;
  readonly alias: string;
  readonly model: string;
  readonly host: string;
  /** 'online', 'offline', or another state such as an authentication failure. */
  readonly state: string;
  readonly state_since: string;
  readonly has_emeter: boolean;
  readonly channels: readonly ChannelInfo[];
}

export interface SeriesResult {
  readonly resolution: string;
  readonly step_ms: number;
  /** Buckets further apart than this have no readings between them. */
  readonly gap_ms: number;
  /** Bucket i of a channel starts at start_ms + i x step_ms. */
  readonly start_ms: number;
  readonly channels: readonly {
    readonly device_id: string;
    readonly alias: string;
    readonly i: readonly number[];
    readonly w: readonly number[];
  }[];
}

export interface DailyEnergyResult {
  readonly time_zone: string;
  readonly channels: readonly {
    readonly device_id: string;
    readonly alias: string;
    readonly days: readonly {
      readonly day: string;
      readonly start_ms: number;
      readonly energy_kwh: number;
      readonly complete: boolean;
    }[];
  }[];
}

/** GET /api/energy: energy and cost per channel and period (cost and currency null without a tariff). */
export interface EnergyReportResult {
  readonly currency: string | null;
  readonly rows: readonly {
    readonly period: string;
    readonly device_id: string;
    readonly energy_kwh: number;
    readonly cost: number | null;
  }[];
}

export interface HealthReport {
  readonly status: 'ok' | 'degraded' | 'failed';
  readonly summary?: string;
  readonly checks: Readonly<Record<string, { readonly status: string; readonly reason: string }>>;
}

/** GET a JSON document; /health answers 503 with a report when failed, which is still an answer. */
export async function getJson<T>(url: string, okStatuses: readonly number[] = [200]): Promise<T> {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  if (!okStatuses.includes(response.status)) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.json()) as { error?: string };
      if (body.error) message = body.error;
    } catch {
      // Not JSON: the status says enough.
    }
    throw new Error(message);
  }
  return (await response.json()) as T;
}

export const devices = async (): Promise<DeviceInfo[]> =>
  (await getJson<{ devices: DeviceInfo[] }>('api/devices')).devices;

export function series(query: { device?: string; from: string; points: number }): Promise<SeriesResult> {
  const params = new URLSearchParams({ from: query.from, points: String(query.points) });
  if (query.device !== undefined) params.set('device', query.device);
  return getJson<SeriesResult>(`api/series?${params}`);
}

export function dailyEnergy(query: { device?: string; days: number }): Promise<DailyEnergyResult> {
  const params = new URLSearchParams({ days: String(query.days) });
  if (query.device !== undefined) params.set('device', query.device);
  return getJson<DailyEnergyResult>(`api/daily-energy?${params}`);
}

/** Days from the local date `from` (as daily-energy labels them) to the end of the current month. */
export function energyByDay(query: { device?: string; from: string }): Promise<EnergyReportResult> {
  const params = new URLSearchParams({ period: 'day', from: query.from });
  if (query.device !== undefined) params.set('device', query.device);
  return getJson<EnergyReportResult>(`api/energy?${params}`);
}

export const health = (): Promise<HealthReport> => getJson<HealthReport>('health', [200, 503]);

/** Runs `task` now and then every `ms`, never two at once; errors go to `onError`. */
export function every(ms: number, task: () => Promise<void>, onError: (error: unknown) => void): void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      await task();
    } catch (error) {
      onError(error);
    } finally {
      running = false;
    }
  };
  void run();
  setInterval(run, ms);
}

/** A series' channels as lines of bucket start times (ms) and mean power (W). */
export function linesOf(result: SeriesResult): { label: string; t: number[]; w: readonly number[] }[] {
  return result.channels.map((c) => ({
    label: c.alias || c.device_id,
    t: c.i.map((i) => result.start_ms + i * result.step_ms),
    w: c.w,
  }));
}
