/** discovery: finding plugs on the network. */
import * as z from 'zod';
import { type HostPort, parseAddress } from '../address.js';
import { duration, HOT, int, key, RESTART } from './building-blocks.js';

const IPV4_MESSAGE = 'must be an IPv4 address such as 255.255.255.255 or 192.168.1.255';

const ipv4 = () => z.ipv4({ error: IPV4_MESSAGE });

const hostEntry = z.string().transform((text, ctx): { host: string; port: number | null } => {
  const parsed = parseAddress(text, { portRequired: false, minPort: 1 });
  if (!parsed.ok) {
    ctx.issues.push({ code: 'custom', input: text, message: parsed.message });
    return z.NEVER;
  }
  return { host: parsed.host, port: parsed.port };
});

export function discoverySection() {
  return z
    .strictObject({
      enabled: key(
        z.boolean().prefault(true),
        'Find plugs by UDP broadcast. When false only `hosts` are polled.',
        HOT,
      ),
      broadcast: key(
        z
          .union([ipv4(), z.array(ipv4()).min(1)], {
            error: `must be an IPv4 address or a list of them, such as 255.255.255.255 or [192.168.1.255]`,
          })
          .transform((value) => (typeof value === 'string' ? [value] : [...value]))
          .prefault(['255.255.255.255']),
        'Where discovery packets go: one IPv4 broadcast address or a list. 255.255.255.255 reaches the whole local network.',
        HOT,
      ),
      port: key(
        int(1, 65535).prefault(9999),
        'The UDP/TCP port the plugs listen on (9999 for Kasa; tests use others).',
        RESTART,
      ),
      interval: key(
        duration('60s'),
        'How often discovery runs again to find new plugs and moved addresses.',
        HOT,
      ),
      timeout: key(duration('2s'), 'How long one discovery round listens for replies.', HOT),
      hosts: key(
        z.array(hostEntry).prefault([]),
        "Static plug addresses ('host' or 'host:port'), polled even when broadcast cannot reach them.",
        HOT,
      ),
      offline_tolerance: key(
        int(1, 1000).prefault(3),
        'Consecutive missed discoveries or polls before a plug counts as offline.',
        HOT,
      ),
      receive_buffer: key(
        int(1024, 2_147_483_647).prefault(4_194_304),
        'UDP receive buffer for discovery replies, in bytes.',
        RESTART,
      ),
      smart_port: key(
        int(1, 65535).prefault(20002),
        "UDP port of the newer plugs' discovery (KLAP/AES: Tapo, newer Kasa); 20002 on real plugs, tests use others. Asked at the same broadcast addresses and hosts every round.",
        HOT,
      ),
    })
    .transform((section) => ({
      ...section,
      hosts: section.hosts.map((entry): HostPort => ({ host: entry.host, port: entry.port ?? section.port })),
    }))
    .prefault({})
    .meta({ description: 'Finding plugs on the network.' });
}
