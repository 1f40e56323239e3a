/**
 * End to end through the built daemon: a reading belongs to the device that answered, whoever holds
 * an address; identities claimed twice are reported, not obeyed; device replies are bounded.
 * Simulated plugs (and hand-made fake plugs) on 127.31.x.x; ports 31100-31199 belong to this file.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DaemonProcess } from './helpers/cli.js';
import { type ExportRow, readExport } from './helpers/export-csv.js';
import { type FakePlug, plugSysinfo, startFakePlug } from './helpers/fake-plug.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { tempDirs } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const tempDir = tempDirs('kasa-identity-');

function writeConfig(dir: string, port: number, discovery: string, polling = ''): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    `discovery:
  port: ${port}
  timeout: 300ms
${discovery}
polling:
  interval: 1s
  timeout: 500ms
${polling}
storage:
  sqlite:
    path: ${join(dir, 'kasa.db')}
writer:
  flush_interval: 200ms
http:
  listen: 127.31.0.1:${port + 1}
health:
  interval: 1s
log:
  level: info
`,
  );
  return file;
}

async function exportCsv(config: string): Promise<ExportRow[]> {
  return (await readExport(config)).rows;
}

interface Health {
  status: string;
  checks: Record<string, { status: string; reason?: string; details?: Record<string, unknown> }>;
}

async function health(port: number): Promise<Health | null> {
  try {
    const response = await fetch(`http://127.31.0.1:${port + 1}/health`);
    return (await response.json()) as Health;
  } catch {
    return null;
  }
}

/** Rows of `id` stored after `sinceMs`. */
function rowsAfter(rows: readonly ExportRow[], id: string, sinceMs: number): ExportRow[] {
  return rows.filter((r) => r.device_id === id && Date.parse(r.time) > sinceMs);
}

/** Identity-conflict warnings (warn or above) that name `id`. */
const conflictWarnings = (daemon: DaemonProcess, id: string) =>
  daemon.lines.filter(
    (l) => (l['level'] as number) >= 40 && /conflict/.test(String(l['msg'])) && String(l['msg']).includes(id),
  );

describe('a reading belongs to the device that answered', () => {
  const A = 'ID9A000000000000000000000000000000000001';
  const B = 'ID9B000000000000000000000000000000000002';

  async function swapWhilePolled(port: number, net: string, discovery: (a: string, b: string) => string) {
    const [addrA, addrB] = [`${net}.1`, `${net}.2`];
    const fleet = await startSimulators({
      port,
      devices: [
        { model: 'hs110v2', address: addrA, deviceId: A, alias: 'Plug A' },
        { model: 'hs110v2', address: addrB, deviceId: B, alias: 'Plug B' },
      ],
    });
    fleet.setRealtime(A, { power_mw: 11_111, voltage_mv: 230_000, current_ma: 50, total_wh: 100 });
    fleet.setRealtime(B, { power_mw: 22_222, voltage_mv: 231_000, current_ma: 90, total_wh: 200 });
    const dir = tempDir();
    const config = writeConfig(dir, port, discovery(addrA, addrB));
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(
        async () => {
          const rows = await exportCsv(config).catch(() => []);
          return [A, B].every((id) => rows.some((r) => r.device_id === id));
        },
        'readings of both plugs',
        40_000,
        200,
      );

      // DHCP gives each plug the other's address: A leaves, B takes A's address, A takes B's.
      await fleet.pause(A);
      await fleet.move(B, addrA);
      await fleet.move(A, addrB);
      const swappedAt = Date.now();

      await waitFor(
        async () => {
          const rows = await exportCsv(config).catch(() => []);
          return [A, B].every((id) => rowsAfter(rows, id, swappedAt + 1_000).length >= 3);
        },
        'readings of both plugs after the swap, each under its own id',
        40_000,
        200,
      );
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);

      const rows = await exportCsv(config);
      const powers = (id: string) => new Set(rows.filter((r) => r.device_id === id).map((r) => r.power_w));
      assert.deepEqual(powers(A), new Set(['11.111']), "no row of A carries B's values");
      assert.deepEqual(powers(B), new Set(['22.222']), "no row of B carries A's values");
    } finally {
      await daemon.kill();
      await fleet.stop();
    }
  }

  it('two plugs swap addresses while polled (broadcast discovery, rounds far apart): each keeps its own readings', async () => {
    await swapWhilePolled(31101, '127.31.1', () => '  broadcast: 127.255.255.255\n  interval: 1h');
  });

  it('the same with discovery off and the plugs listed under discovery.hosts', async () => {
    await swapWhilePolled(
      31111,
      '127.31.2',
      (a, b) => `  enabled: false\n  interval: 1h\n  hosts: ['${a}:31111', '${b}:31111']`,
    );
  });
});

describe('conflicting identities are reported, not obeyed', () => {
  it('a second device claiming a known deviceId at another address: history intact, one warning, shown in /health', async () => {
    const port = 31121;
    const id = 'ID9C000000000000000000000000000000000003';
    const real = await startSimulators({
      port,
      devices: [{ model: 'hs110v2', address: '127.31.3.1', deviceId: id, alias: 'Real plug' }],
    });
    real.setRealtime(id, { power_mw: 33_333, voltage_mv: 230_000, current_ma: 150, total_wh: 300 });
    let spoof: SimulatorFleet | null = null;
    const dir = tempDir();
    const config = writeConfig(dir, port, '  broadcast: 127.255.255.255\n  interval: 1s');
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(
        async () => (await exportCsv(config).catch(() => [])).some((r) => r.device_id === id),
        'a reading',
        40_000,
        200,
      );
      spoof = await startSimulators({
        port,
        devices: [{ model: 'hs110v2', address: '127.31.3.2', deviceId: id, alias: 'Impostor' }],
      });
      spoof.setRealtime(id, { power_mw: 44_444, voltage_mv: 120_000, current_ma: 370, total_wh: 1 });
      const spoofedAt = Date.now();

      // Several discovery rounds and polls with both answering.
      await waitFor(
        async () => rowsAfter(await exportCsv(config).catch(() => []), id, spoofedAt + 3_000).length >= 3,
        'more readings of the real plug',
        40_000,
        200,
      );
      const report = await health(port);
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);

      const rows = await exportCsv(config);
      assert.deepEqual(
        new Set(rows.filter((r) => r.device_id === id).map((r) => r.power_w)),
        new Set(['33.333']),
      );
      assert.deepEqual(
        new Set(rows.filter((r) => r.device_id === id).map((r) => r.alias)),
        new Set(['Real plug']),
      );
      const warned = conflictWarnings(daemon, id);
      assert.equal(warned.length, 1, JSON.stringify(warned));
      const text = JSON.stringify(warned[0]);
      assert.match(text, /127\.31\.3\.1:31121/);
      assert.match(text, /127\.31\.3\.2:31121/);
      assert.equal(report?.checks['identity']?.status, 'degraded', 'shown in /health');
      assert.match(report?.checks['identity']?.reason ?? '', /127\.31\.3\.1:31121.*127\.31\.3\.2:31121/);
      assert.match(report?.checks['identity']?.reason ?? '', new RegExp(id));
    } finally {
      await daemon.kill();
      await spoof?.stop();
      await real.stop();
    }
  });

  it("a strip outlet whose child id equals a plug's deviceId leaves the plug's history alone", async () => {
    const port = 31131;
    const strip = 'ID9D000000000000000000000000000000000004';
    const plug = `${strip}00`;
    const plugFleet = await startSimulators({
      port,
      devices: [{ model: 'hs110v2', address: '127.31.4.1', deviceId: plug, alias: 'Plug P' }],
    });
    plugFleet.setRealtime(plug, { power_mw: 55_555, voltage_mv: 230_000, current_ma: 240, total_wh: 500 });
    let stripFleet: SimulatorFleet | null = null;
    const dir = tempDir();
    const config = writeConfig(dir, port, '  broadcast: 127.255.255.255\n  interval: 1s');
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(
        async () => (await exportCsv(config).catch(() => [])).some((r) => r.device_id === plug),
        'a reading',
        40_000,
        200,
      );
      stripFleet = await startSimulators({
        port,
        devices: [
          {
            model: 'hs300',
            address: '127.31.4.2',
            deviceId: strip,
            alias: 'Strip T',
            realtime: { power_mw: 66_666, voltage_mv: 120_000, current_ma: 555, total_wh: 6 },
          },
        ],
      });
      const joinedAt = Date.now();
      await waitFor(
        async () => {
          const rows = await exportCsv(config).catch(() => []);
          return (
            rowsAfter(rows, `${strip}01`, joinedAt).length >= 3 &&
            rowsAfter(rows, plug, joinedAt + 1_000).length >= 3
          );
        },
        'readings of the other outlets and of the plug',
        40_000,
        200,
      );
      const report = await health(port);
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);

      const rows = (await exportCsv(config)).filter((r) => r.device_id === plug);
      assert.deepEqual(new Set(rows.map((r) => r.power_w)), new Set(['55.555']));
      assert.deepEqual(new Set(rows.map((r) => r.alias)), new Set(['Plug P']));
      const warned = conflictWarnings(daemon, plug);
      assert.equal(warned.length, 1, JSON.stringify(warned));
      const text = JSON.stringify(warned[0]);
      assert.match(text, /127\.31\.4\.1:31131/);
      assert.match(text, /127\.31\.4\.2:31131/);
      assert.equal(report?.checks['identity']?.status, 'degraded', 'shown in /health');
      assert.match(report?.checks['identity']?.reason ?? '', new RegExp(plug));
    } finally {
      await daemon.kill();
      await stripFleet?.stop();
      await plugFleet.stop();
    }
  });
});

describe('device replies are bounded', () => {
  /** Waits for the daemon's first "poll failed" line about `deviceId`. */
  async function firstPollFailure(daemon: DaemonProcess, deviceId: string): Promise<Record<string, unknown>> {
    let line: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        line = daemon.lines.find(
          (l) => l['deviceId'] === deviceId && String(l['msg']).startsWith('poll failed'),
        );
        return line !== undefined;
      },
      'a poll failure',
      40_000,
      200,
    );
    return line as Record<string, unknown>;
  }

  it('a TCP plug announcing a 2 GiB frame: the connection is closed at the header, a malformed reply', async () => {
    const port = 31141;
    const id = 'ID9E000000000000000000000000000000000005';
    let sent = 0;
    let closedEarly = 0;
    const fake: FakePlug = await startFakePlug({
      address: '127.31.5.1',
      port,
      sysinfo: plugSysinfo(id, 'Huge frame'),
      tcp(socket) {
        const header = Buffer.alloc(4);
        header.writeUInt32BE(2 ** 31); // 2 GiB
        socket.write(header);
        const chunk = Buffer.alloc(16 * 1024, 0x41);
        let open = true;
        socket.on('close', () => {
          open = false;
          if (sent < 64 * 1024 * 1024) closedEarly++;
        });
        const pump = (): void => {
          while (open && sent < 64 * 1024 * 1024) {
            sent += chunk.length;
            if (!socket.write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        pump();
      },
    });
    const dir = tempDir();
    const config = writeConfig(
      dir,
      port,
      `  enabled: false\n  interval: 1h\n  hosts: ['127.31.5.1:${port}']`,
      '  transport: tcp',
    );
    const daemon = new DaemonProcess(['-c', config]);
    try {
      const failure = await firstPollFailure(daemon, id);
      assert.equal(failure['reason'], 'malformed', JSON.stringify(failure));
      assert.match(String(failure['detail']), /2147483648 bytes/);
      await waitFor(() => closedEarly > 0, 'the daemon closed the connection', 40_000, 200);
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);
    } finally {
      await daemon.kill();
      await fake.stop();
    }
  });

  it('a reply nesting JSON thousands deep is a malformed reply: nothing recorded', async () => {
    const port = 31151;
    const id = 'ID9F000000000000000000000000000000000006';
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const fake = await startFakePlug({
      address: '127.31.6.1',
      port,
      sysinfo: plugSysinfo(id, 'Deep'),
      answer: () =>
        `{"system":{"get_sysinfo":${JSON.stringify(plugSysinfo(id, 'Deep')).replace(/}$/, `,"x":${deep}}`)}},` +
        '"emeter":{"get_realtime":{"power_mw":1000,"voltage_mv":230000,"current_ma":5,"total_wh":10,"err_code":0}}}',
    });
    const dir = tempDir();
    const config = writeConfig(
      dir,
      port,
      `  enabled: false\n  interval: 1h\n  hosts: ['127.31.6.1:${port}']`,
    );
    const daemon = new DaemonProcess(['-c', config]);
    try {
      await waitFor(
        () => fake.requests.filter((r) => r.includes('get_realtime')).length >= 3,
        'three polls',
        40_000,
        200,
      );
      const failure = daemon.lines.find(
        (l) => l['deviceId'] === id && String(l['msg']).startsWith('poll failed'),
      );
      assert.equal(failure?.['reason'], 'malformed', JSON.stringify(failure));
      assert.match(String(failure?.['detail']), /nests deeper/);
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);
      assert.equal((await exportCsv(config)).filter((r) => r.device_id === id).length, 0);
    } finally {
      await daemon.kill();
      await fake.stop();
    }
  });
});

describe('a plug that answers is online', () => {
  it('a plug whose readings are all implausible stays online through discovery rounds; the rejections are counted', async () => {
    const port = 31161;
    const id = 'ID9M000000000000000000000000000000000013';
    const fleet = await startSimulators({
      port,
      devices: [{ model: 'hs110', address: '127.31.11.1', deviceId: id, alias: 'Broken meter' }],
    });
    fleet.setRealtime(id, { power: -5, voltage: 230, current: 0.1, total: 1 });
    const dir = tempDir();
    const config = writeConfig(
      dir,
      port,
      '  broadcast: 127.255.255.255\n  interval: 1s\n  offline_tolerance: 1',
    );
    const daemon = new DaemonProcess(['-c', config]);
    try {
      let metrics = '';
      await waitFor(
        async () => {
          metrics = await fetch(`http://127.31.0.1:${port + 1}/metrics`)
            .then((r) => r.text())
            .catch(() => '');
          const match = /kasa_monitor_polls_total\{result="implausible"\} (\d+)/.exec(metrics);
          return match !== null && Number(match[1]) >= 6;
        },
        'six rejected readings',
        40_000,
        200,
      );
      const flaps = daemon.lines.filter(
        (l) => String(l['msg']).startsWith('device offline') || l['msg'] === 'device back online',
      );
      assert.deepEqual(flaps, [], 'never offline, never back online');
      const rejected = daemon.lines.filter(
        (l) =>
          l['deviceId'] === id && String(l['msg']).startsWith('poll failed') && l['reason'] === 'implausible',
      );
      assert.equal(rejected.length, 1, 'logged once per episode');
      daemon.signal('SIGTERM');
      assert.equal(await daemon.exited, 0, daemon.stderr);
    } finally {
      await daemon.kill();
      await fleet.stop();
    }
  });
});
