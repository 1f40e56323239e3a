import { tplinkAccount } from '../../config/index.js';
import { KasaClient, probe as probeLegacy } from '../../discovery/kasa.js';
import { SmartDevice } from '../../smart/device.js';
import { probeSmart } from '../../smart/discovery.js';
import { isSmartError } from '../../smart/errors.js';
import { chooseTransport } from '../../smart/tdp.js';
import { boolFlag, type Command, stringFlag } from '../command.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../exit-codes.js';
import { loadForCommand } from '../load-config.js';

/** Fields that identify the owner's account or home (account hash, location, Wi-Fi name): hidden in the report. */
const REDACTED_FIELDS = new Set(['owner', 'latitude', 'longitude', 'latitude_i', 'longitude_i', 'ssid']);

function redact(value: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, REDACTED_FIELDS.has(k) ? '[redacted]' : v]),
  );
}

export const probeCommand: Command = {
  name: 'probe',
  summary: 'diagnose one plug: its discovery reply, transport, credential and one raw energy answer',
  usage: `--host ADDR [-c FILE] [--port N] [--smart-port N] [--timeout S] [--json]

Asks one plug directly, the way the daemon would: its port-20002 discovery reply (newer plugs) or
its legacy sysinfo (port 9999), which transport and which credential matched (account, built-in
default or blank; never the credential itself), who it says it is, and one raw energy answer per
channel. Attach the output to a bug report; the account's e-mail and password are never printed.

  --host ADDR          the plug's address
  -c, --config FILE    take the TP-Link account and the ports from this config
      --port N         the legacy port (default: discovery.port, 9999)
      --smart-port N   the newer plugs' discovery port (default: discovery.smart_port, 20002)
      --timeout S      seconds per step (default 3)
      --json           print JSON
`,
  options: {
    host: { type: 'string' },
    config: { type: 'string', short: 'c' },
    port: { type: 'string' },
    'smart-port': { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(context) {
    const host = stringFlag(context, 'host');
    if (host === undefined || host.trim() === '') throw new UsageError('probe needs --host ADDR');
    const overrides: Record<string, unknown> = {};
    const port = stringFlag(context, 'port');
    if (port !== undefined) overrides['discovery.port'] = port;
    const smartPort = stringFlag(context, 'smart-port');
    if (smartPort !== undefined) overrides['discovery.smart_port'] = smartPort;
    const { config } = loadForCommand(context, overrides);
    const timeoutText = stringFlag(context, 'timeout');
    const timeoutMs = timeoutText === undefined ? 3_000 : Math.round(Number(timeoutText) * 1000);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new UsageError(`--timeout expects seconds > 0, got '${timeoutText}'`);
    const account = tplinkAccount(config.credentials);
    const report: Record<string, unknown> = { host, account_configured: account !== null };

    const [legacy, smart] = await Promise.all([
      probeLegacy({
        broadcast: [],
        hosts: [{ host, port: config.discovery.port }],
        port: config.discovery.port,
        timeoutMs,
        receiveBufferBytes: 1 << 20,
      }).catch(() => null),
      probeSmart({ broadcast: [], hosts: [host], port: config.discovery.smart_port, timeoutMs }).catch(
        () => null,
      ),
    ]);
    const legacyReply = legacy?.replies[0];
    if (legacyReply !== undefined) {
      const connection = new KasaClient().connect(legacyReply.sysinfo, legacyReply);
      const energy: Record<string, unknown> = {};
      try {
        const outlets = legacyReply.sysinfo.outlets.map((o) => o.id);
        for (const channel of outlets.length > 0 ? outlets : [null]) {
          const answer = await connection.getEnergy(channel, {
            transport: 'udp',
            timeoutMs,
            identify: false,
          });
          energy[channel ?? legacyReply.sysinfo.deviceId] = answer.ok ? answer.reply : answer;
        }
      } finally {
        connection.close();
      }
      report['legacy'] = { port: legacyReply.port, sysinfo: redact(legacyReply.sysinfo.raw), energy };
    }
    const smartReply = smart?.replies[0]?.reply;
    let ok = legacyReply !== undefined;
    if (smartReply !== undefined) {
      const choice = chooseTransport(smartReply);
      const section: Record<string, unknown> = { discovery_reply: redact(smartReply.raw), transport: choice };
      report['smart'] = section;
      if (choice.kind !== 'unsupported') {
        const device = new SmartDevice({ host, httpPort: smartReply.httpPort, choice, account });
        try {
          const identity = await device.identify(timeoutMs);
          section['matched'] = device.transport.matched();
          section['identity'] = identity;
          const channels = identity.outlets.length > 0 ? identity.outlets.map((o) => o.id) : [null];
          const energy: Record<string, unknown> = {};
          for (const channel of channels)
            energy[channel ?? identity.deviceId] = await device.rawEnergy(channel, timeoutMs);
          section['energy'] = energy;
          section['transport_stats'] = device.transport.stats();
          ok = true;
        } catch (err) {
          section['error'] = isSmartError(err) ? { code: err.code, message: err.message } : String(err);
          section['matched'] = device.transport.matched();
        } finally {
          device.close();
        }
      }
    }
    if (legacyReply === undefined && smartReply === undefined) {
      report['error'] =
        `no answer on ${config.discovery.port} (legacy) or ${config.discovery.smart_port} (newer plugs) within ${timeoutMs} ms`;
    }
    const text = JSON.stringify(report, null, 2);
    if (boolFlag(context, 'json')) context.stdout.write(`${text}\n`);
    else context.stdout.write(`kasa-monitor probe ${host}\n${text}\n`);
    return ok ? EXIT_OK : EXIT_FAILURE;
  },
};
