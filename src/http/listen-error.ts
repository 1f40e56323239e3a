/**
 * Why the HTTP endpoint could not listen, in words that say what to do. A daemon that cannot
 * listen does not start: `status` and Prometheus would otherwise talk to whatever holds the port.
 */
export function listenFailure(host: string, port: number, error: string | null): Error {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const text = error ?? 'unknown error';
  const why = text.includes('EADDRINUSE')
    ? 'the address is already in use by another process (another kasa-monitor?); stop it or choose another http.listen'
    : text.includes('EADDRNOTAVAIL')
      ? 'that address does not belong to this machine; use 127.0.0.1, 0.0.0.0 or one of its own addresses'
      : text.includes('EACCES')
        ? 'permission denied (ports below 1024 need privileges); choose a port above 1024'
        : text;
  return new Error(`cannot listen on ${address} (http.listen): ${why}`);
}
