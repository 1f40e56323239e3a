import { isIPv4, isIPv6 } from 'node:net';

/** A network endpoint as the parsed configuration carries it. */
export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** True for an IPv4 address, a bracket-free IPv6 address or a DNS hostname. */
function isHost(host: string): boolean {
  if (isIPv4(host) || isIPv6(host)) return true;
  // All-numeric dotted names are meant as IPv4 addresses; reject 300.1.1.1 instead of resolving it.
  if (/^[\d.]+$/.test(host)) return false;
  return host.length <= 253 && host.split('.').every((label) => HOSTNAME_LABEL.test(label));
}

export type ParsedAddress = { ok: true; host: string; port: number | null } | { ok: false; message: string };

/**
 * Parses 'host', 'host:port', '[ipv6]' or '[ipv6]:port'. `portRequired` makes a missing port an error;
 * `minPort` is 1 for remote peers and 0 where 0 means "any free port" (a listening socket).
 */
export function parseAddress(
  text: string,
  options: { portRequired: boolean; minPort: number },
): ParsedAddress {
  const forms = options.portRequired
    ? "'host:port' (for example '127.0.0.1:9469' or '[::1]:9469')"
    : "'host' or 'host:port' (for example '192.168.1.20' or 'plug.lan:9999')";
  let host: string;
  let portText: string | undefined;
  const trimmed = text.trim();
  if (options.portRequired && /^\d{1,5}$/.test(trimmed)) {
    return {
      ok: false,
      message: `needs an address and a port, such as '127.0.0.1:${trimmed}' (this machine only) or '0.0.0.0:${trimmed}' (every interface)`,
    };
  }
  if (trimmed.startsWith('[')) {
    const end = trimmed.indexOf(']');
    if (end < 0) return { ok: false, message: `unterminated '[' in address; expected ${forms}` };
    host = trimmed.slice(1, end);
    const rest = trimmed.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return { ok: false, message: `expected ${forms}` };
      portText = rest.slice(1);
    }
    if (!isIPv6(host))
      return { ok: false, message: `the part in brackets is not an IPv6 address; expected ${forms}` };
  } else {
    const colons = trimmed.split(':').length - 1;
    if (colons > 1) {
      return { ok: false, message: `an IPv6 address needs brackets, as in '[::1]:9469'; expected ${forms}` };
    }
    const at = trimmed.indexOf(':');
    host = at < 0 ? trimmed : trimmed.slice(0, at);
    portText = at < 0 ? undefined : trimmed.slice(at + 1);
    if (!isHost(host)) {
      return { ok: false, message: `the host is not an IPv4 address or host name; expected ${forms}` };
    }
  }
  if (portText === undefined) {
    if (options.portRequired) return { ok: false, message: `the port is missing; expected ${forms}` };
    return { ok: true, host, port: null };
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= options.minPort && port <= 65535)) {
    return { ok: false, message: `the port must be a whole number from ${options.minPort} to 65535` };
  }
  return { ok: true, host, port };
}
