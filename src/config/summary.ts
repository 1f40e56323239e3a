import { formatDuration } from './duration.js';
import type { Config } from './schema.js';

/**
 * The configuration in one line for the start-up log: where readings go, where plugs are looked for,
 * how often, where HTTP listens. The whole (redacted) configuration is logged at debug level.
 */
export function configSummary(config: Config): string {
  const d = config.discovery;
  const targets = [
    ...(d.enabled ? d.broadcast.map((address) => `${address}:${d.port}`) : []),
    ...(d.hosts.length > 0 ? [`${d.hosts.length} static host(s)`] : []),
  ];
  const polling =
    config.polling.schedule === null
      ? `every ${formatDuration(config.polling.interval)}`
      : `on '${config.polling.schedule}'`;
  const listen = config.http.listen;
  const http = listen.host.includes(':')
    ? `[${listen.host}]:${listen.port}`
    : `${listen.host}:${listen.port}`;
  return [
    `database ${config.storage.sqlite.path}`,
    `discovery ${targets.length > 0 ? targets.join(', ') : 'off'}`,
    `polling ${polling}`,
    `http ${http}`,
    `influx ${config.storage.influx.url === null ? 'off' : 'on'}`,
  ].join('; ');
}
