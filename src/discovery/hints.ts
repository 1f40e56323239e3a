/**
 * What to try when no plug answers discovery: the daemon logs it once, `discover` prints it. The
 * usual causes, in the order they happen: the broadcast does not reach the plugs' subnet, the plugs
 * are elsewhere (static hosts), or they speak the newer protocol that needs a TP-Link account.
 */
export interface NoPlugsContext {
  readonly broadcast: readonly string[];
  readonly port: number;
  readonly hosts: readonly string[];
}

/** The first line says what was tried; each further line one thing to try. */
export function noPlugsHints(context: NoPlugsContext): string[] {
  const targets = [...context.broadcast.map((address) => `${address}:${context.port}`), ...context.hosts];
  return [
    `no plug answered discovery on ${targets.length > 0 ? targets.join(', ') : '(no broadcast address and no static hosts)'}`,
    '`kasa-monitor discover` shows what answers right now (plugs must be set up in the Kasa app first)',
    "broadcast does not cross routers or VLANs: use your subnet's broadcast address (discovery.broadcast: 192.168.1.255, or discover --broadcast 192.168.1.255)",
    'list plugs that broadcast cannot reach under discovery.hosts (their addresses)',
    'newer plugs (Tapo, KLAP firmware) answer only with your TP-Link account: credentials.username/password',
  ];
}
