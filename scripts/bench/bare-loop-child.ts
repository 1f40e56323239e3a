/**
 * The memory baseline of the benchmark: a bare tplink-smarthome-api polling loop, as a process of
 * its own, over the same simulated channels as the daemon. It loads nothing of kasa-monitor: only
 * the library, as someone would write the loop without the daemon. Every channel's realtime meter
 * is read once a second (udp, as the daemon polls by default; 64 in flight, its default
 * concurrency), until the process is killed.
 *
 * `node dist/scripts/bench/bare-loop-child.js <targets.json>`: a JSON array of
 * { host, port, childIds } (as the fleet child reports its devices). Prints `ready N` on stdout once
 * every channel's plug object exists.
 */
import { readFileSync } from 'node:fs';
import type { Plug } from 'tplink-smarthome-api';
import tplink from 'tplink-smarthome-api';

interface Target {
  readonly host: string;
  readonly port: number;
  readonly childIds: readonly string[];
}

const CONCURRENCY = 64;
const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

async function main(): Promise<void> {
  const targets = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as Target[];
  const client = new tplink.Client({ logger: silent });
  const plugs: Plug[] = [];
  for (const t of targets) {
    const ids = t.childIds.length === 0 ? [undefined] : t.childIds;
    for (const childId of ids) {
      const device = await client.getDevice({
        host: t.host,
        port: t.port,
        ...(childId === undefined ? {} : { childId }),
      });
      plugs.push(device as Plug);
    }
  }
  console.log(`ready ${plugs.length}`);
  let errors = 0;
  for (;;) {
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, plugs.length) }, async () => {
        while (next < plugs.length) {
          const plug = plugs[next++] as Plug;
          try {
            await plug.emeter.getRealtime({
              transport: 'udp',
              timeout: 900,
              useSharedSocket: true,
              sharedSocketTimeout: 60_000,
            });
          } catch {
            errors++;
          }
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - started))));
    if (errors < 0) console.log(errors);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
