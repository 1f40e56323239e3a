import { DURATION_FORMS, formatDuration, parseDuration, tplinkAccount } from '../../config/index.js';
import { type DiscoveredDevice, discoverOnce } from '../../discovery/discovery.js';
import { noPlugsHints } from '../../discovery/hints.js';
import { visibleText } from '../../shared/text.js';
import { boolFlag, type Command, stringFlag, stringListFlag } from '../command.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../exit-codes.js';
import { loadForCommand } from '../load-config.js';

/** `--timeout` takes what a duration takes in the config: '5s', '500ms', or plain seconds. */
function positiveDuration(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0)
    throw new UsageError(`${flag} expects ${DURATION_FORMS} > 0, got '${text}'`);
  return ms;
}

/** Names and models come from the plugs: on a terminal an escape sequence in one must show, not act. */
function table(cells: readonly (readonly string[])[]): string {
  const rows = cells.map((r) => r.map(visibleText));
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function accountCell(dev: DiscoveredDevice): string {
  if (dev.transport === 'legacy') return 'not needed';
  if (dev.accountWorks === false) return 'FAILED';
  if (dev.accountWorks === null) return dev.state === 'ok' ? '-' : dev.state;
  return dev.credential === 'account' ? 'works' : `works (${dev.credential ?? '?'})`;
}

export const discoverCommand: Command = {
  name: 'discover',
  summary: 'list the plugs that answer on the network, once',
  usage: `[-c FILE] [--timeout T] [--broadcast ADDR]... [--port N] [--smart-port N] [--json]

Sends one discovery round (to the configured broadcast addresses and static hosts, or to --broadcast)
on the legacy port (9999) and the newer plugs' port (discovery.smart_port, 20002), logs in to the
newer ones with the configured TP-Link account, and lists every plug that answered: id, alias, model,
address, transport, whether the account works, energy meter yes/no, outlets. A newer plug that
cannot be read says why and what to do.

  -c, --config FILE     take broadcast addresses, port and static hosts from this config
      --timeout T       how long to wait for answers: 5s, 500ms, or seconds (default: discovery.timeout, 2s)
      --broadcast ADDR  where to send the discovery packet (repeatable); 127.255.255.255 for simulated plugs
      --port N          the plugs' port (default 9999)
      --smart-port N    the newer plugs' discovery port (default 20002)
      --json            print JSON instead of a table
`,
  options: {
    config: { type: 'string', short: 'c' },
    timeout: { type: 'string' },
    broadcast: { type: 'string', multiple: true },
    port: { type: 'string' },
    'smart-port': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(context) {
    const overrides: Record<string, unknown> = {};
    const broadcast = stringListFlag(context, 'broadcast');
    if (broadcast.length > 0) overrides['discovery.broadcast'] = broadcast;
    const port = stringFlag(context, 'port');
    if (port !== undefined) overrides['discovery.port'] = port;
    const smartPort = stringFlag(context, 'smart-port');
    if (smartPort !== undefined) overrides['discovery.smart_port'] = smartPort;
    const { config } = loadForCommand(context, overrides);
    const timeout = stringFlag(context, 'timeout');
    const d = config.discovery;
    const timeoutMs = timeout === undefined ? d.timeout : positiveDuration(timeout, '--timeout');
    const hostList = d.hosts.map((h) =>
      h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`,
    );
    const devices = await discoverOnce({
      broadcast: d.broadcast,
      port: d.port,
      timeoutMs,
      hosts: hostList,
      receiveBufferBytes: d.receive_buffer,
      smartPort: d.smart_port,
      account: tplinkAccount(config.credentials),
    });
    if (devices.length === 0) {
      // Nothing found is a failure scripts can test for (exit 1), with what to try on stderr.
      if (boolFlag(context, 'json')) context.stdout.write('[]\n');
      const [what, ...hints] = noPlugsHints({ broadcast: d.broadcast, port: d.port, hosts: hostList });
      const tries = hints.filter((line) => !line.startsWith('`kasa-monitor discover`'));
      context.stderr.write(
        `${what} within ${formatDuration(timeoutMs)}.\nTry:\n${tries.map((line) => `  - ${line}\n`).join('')}` +
          '  - `kasa-monitor demo` tries everything with simulated plugs\n',
      );
      return EXIT_FAILURE;
    }
    if (boolFlag(context, 'json')) {
      context.stdout.write(`${JSON.stringify(devices, null, 2)}\n`);
      return EXIT_OK;
    }
    const rows = [['ID', 'ALIAS', 'MODEL', 'ADDRESS', 'TRANSPORT', 'ACCOUNT', 'METER', 'OUTLETS']];
    for (const dev of devices) {
      rows.push([
        dev.id ?? '?',
        dev.alias,
        dev.model,
        `${dev.host}:${dev.port}`,
        dev.transport ?? 'unsupported',
        accountCell(dev),
        dev.hasEmeter === null ? '?' : dev.hasEmeter ? 'yes' : 'no',
        String(dev.outlets.length || '-'),
      ]);
      for (const outlet of dev.outlets)
        rows.push([`  ${outlet.id}`, `  ${outlet.alias}`, '', '', '', '', '', '']);
    }
    const problems = devices.filter((dev) => dev.state !== 'ok');
    context.stdout.write(`${table(rows)}\n`);
    for (const dev of problems) {
      context.stdout.write(
        `\n${visibleText(`${dev.model} at ${dev.host} (${dev.mac ?? 'no MAC'}): ${dev.state}: ${dev.advice ?? ''}`)}\n`,
      );
    }
    return EXIT_OK;
  },
};
