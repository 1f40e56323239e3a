import type { Config } from '../config/index.js';
import { discoveryOptions } from '../daemon-options.js';
import { Discovery } from '../discovery/discovery.js';
import { LegacyStatsSource } from '../discovery/energy-stats.js';
import { KasaConnection } from '../discovery/kasa.js';
import type { DeviceRegistry } from '../discovery/registry.js';
import type { Logger } from '../log/logger.js';
import { SmartConnection } from '../smart/fleet.js';
import { Backfill, type BackfillReport, type BackfillTarget, logBackfill } from './backfill.js';

/** The registry's poll targets that speak the legacy protocol (their statistics source exists). */
export function legacyPollTargets(registry: DeviceRegistry) {
  return registry
    .pollTargets()
    .flatMap((t) => (t.connection instanceof KasaConnection ? [{ ...t, connection: t.connection }] : []));
}

/** The registry's poll targets that speak the smart protocol, through the fleet's sessions. */
export function smartPollTargets(registry: DeviceRegistry) {
  return registry
    .pollTargets()
    .flatMap((t) => (t.connection instanceof SmartConnection ? [{ ...t, connection: t.connection }] : []));
}

/**
 * The plugs a backfill can ask: every online plug with a meter in the registry, legacy plugs
 * through their legacy connection, newer (KLAP/AES) plugs through the fleet's session.
 */
export function backfillTargets(
  registry: DeviceRegistry,
  request: { readonly transport: 'udp' | 'tcp'; readonly timeoutMs: number },
): BackfillTarget[] {
  return [
    ...legacyPollTargets(registry).map((t) => ({
      deviceId: t.deviceId,
      channels: t.channels,
      stats: new LegacyStatsSource(t.connection, request),
    })),
    ...smartPollTargets(registry).map((t) => ({
      deviceId: t.deviceId,
      channels: t.channels,
      stats: t.connection.statsSource(request.timeoutMs),
    })),
  ];
}

/** `kasa-monitor energy --backfill`: one discovery round, then one backfill run over what it found. */
export async function backfillOnce(
  config: Config,
  logger: Logger,
  nowMs = Date.now(),
): Promise<BackfillReport> {
  const discovery = new Discovery(discoveryOptions(config), logger.child({ component: 'discovery' }));
  try {
    await discovery.runRound();
    const backfill = new Backfill({
      dbPath: config.storage.sqlite.path,
      timeZone: config.time_zone,
      gapLimitMs: config.storage.rollups.gap_limit,
    });
    const report = await backfill.run(
      backfillTargets(discovery.registry, {
        transport: config.polling.transport,
        timeoutMs: config.polling.timeout,
      }),
      nowMs,
    );
    logBackfill(report, logger.child({ component: 'backfill' }), config.time_zone, new Set());
    return report;
  } finally {
    await discovery.stop();
  }
}
