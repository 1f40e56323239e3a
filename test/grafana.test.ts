/**
 * The Grafana dashboards under config/grafana/ query only what the daemon really writes. A daemon
 * polls simulated plugs (127.38.2.x, discovery port 38003) and forwards to a real VictoriaMetrics;
 * its /metrics text is imported into the same VictoriaMetrics, so every PromQL target of the
 * Prometheus and VictoriaMetrics dashboards runs there against real data. Flux cannot run here (no
 * InfluxDB 2 in Debian): the InfluxDB dashboard's measurement, fields and tags are checked against
 * the points the forwarder wrote.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon } from '../src/main.js';
import { simulatedFleetConfig } from './helpers/daemon-config.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { startVictoria, type Victoria, victoriaSkip } from './helpers/victoria.js';
import { sleep, waitFor } from './helpers/wait.js';

const GRAFANA_DIR = resolve(import.meta.dirname, '..', '..', 'config', 'grafana');
const PORT = 38003;

interface Target {
  readonly refId: string;
  readonly expr?: string;
  readonly query?: string;
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly targets?: readonly Target[];
  readonly datasource?: { readonly uid: string };
}
interface DashboardModel {
  readonly uid: string;
  readonly title: string;
  readonly panels: readonly Panel[];
  readonly templating: {
    readonly list: readonly { name: string; type: string; query?: unknown; definition?: string }[];
  };
}

function load(name: string): DashboardModel {
  return JSON.parse(readFileSync(join(GRAFANA_DIR, name), 'utf8')) as DashboardModel;
}

const targets = (d: DashboardModel) =>
  d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, target: t })));

/** The Grafana variables replaced as Grafana would for a query of the last hour. */
const expand = (expr: string) => expr.replaceAll('$alias', '.*').replaceAll('$__rate_interval', '1m');

let vm: Victoria;
let fleet: SimulatorFleet;
let daemon: Daemon;
let metricsText = '';
const root = mkdtempSync(join(tmpdir(), 'kasa-grafana-'));

async function query(expr: string): Promise<{ status: string; data: { result: unknown[] }; error?: string }> {
  const response = await fetch(`${vm.url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  return (await response.json()) as { status: string; data: { result: unknown[] }; error?: string };
}

describe('Grafana dashboards', { skip: victoriaSkip() }, () => {
  before(async () => {
    vm = await startVictoria();
    fleet = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110', address: '127.38.2.1', alias: 'kettle' },
        { model: 'hs300', address: '127.38.2.2', alias: 'strip' },
      ],
    });
    const config = simulatedFleetConfig(root, {
      'discovery.port': String(PORT),
      'discovery.interval': '2s',
      'storage.sqlite.path': join(root, 'kasa.db'),
      'storage.influx.url': vm.url,
      'storage.influx.token': 'grafana-test',
      'storage.influx.flush_interval': '200ms',
      'http.listen': '127.38.2.100:0',
      'health.interval': '500ms',
      'health.min_free_disk_mb': '0',
    });
    daemon = new Daemon(config, createSilentLogger());
    await daemon.start();
    await waitFor(
      () => (daemon.status()?.influx?.written ?? 0) >= 3 * 7,
      'readings forwarded to VictoriaMetrics',
    );
    const address = daemon.httpAddress;
    assert.ok(address !== null);
    // Two scrapes, a few seconds apart, so rate() and increase() have two samples.
    for (let scrape = 0; scrape < 2; scrape++) {
      if (scrape > 0) await sleep(3000);
      metricsText = await (await fetch(`http://127.38.2.100:${address.port}/metrics`)).text();
      const imported = await fetch(`${vm.url}/api/v1/import/prometheus`, {
        method: 'POST',
        body: metricsText,
      });
      assert.ok(imported.ok, await imported.text());
    }
    await fetch(`${vm.url}/internal/force_flush`);
  });

  after(async () => {
    await daemon?.stop();
    await fleet?.stop();
    await vm?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('each file is a dashboard model that imports as it is: top-level panels, a datasource variable', () => {
    const files = readdirSync(GRAFANA_DIR).filter((f) => f.endsWith('.json'));
    assert.deepEqual(files.sort(), [
      'kasa-monitor-influxdb.json',
      'kasa-monitor-prometheus.json',
      'kasa-monitor-victoriametrics.json',
    ]);
    for (const file of files) {
      const d = load(file) as DashboardModel & { dashboard?: unknown };
      assert.equal(d.dashboard, undefined, `${file} is not wrapped in {"dashboard": ...}`);
      assert.ok(Array.isArray(d.panels) && d.panels.length > 0, file);
      assert.match(d.uid, /^kasa-monitor-/);
      assert.ok(d.templating.list.some((v) => v.type === 'datasource' && v.name === 'datasource'));
      const ids = d.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `${file}: unique panel ids`);
      for (const p of d.panels.filter((panel) => panel.type !== 'row')) {
        assert.equal(p.datasource?.uid, `\${datasource}`, `${file}: ${p.title} uses the chosen data source`);
        assert.ok((p.targets ?? []).length > 0, `${file}: ${p.title} has a query`);
      }
    }
    const titles = (file: string) => load(file).panels.map((p) => p.title);
    for (const file of files) {
      assert.ok(titles(file).includes('Power per device'), file);
      assert.ok(titles(file).includes('Energy per day'), file);
    }
    for (const health of ['Queue', 'Readings dropped', 'Retries', 'Circuit breakers']) {
      assert.ok(titles('kasa-monitor-prometheus.json').includes(health), health);
    }
  });

  test('every metric the Prometheus dashboard queries is one /metrics serves', () => {
    const d = load('kasa-monitor-prometheus.json');
    const texts = [
      ...targets(d).map(({ target }) => target.expr ?? ''),
      ...d.templating.list.map((v) => v.definition ?? ''),
    ];
    const names = new Set(texts.flatMap((t) => t.match(/\bkasa_[a-z0-9_]+/g) ?? []));
    assert.ok(names.size >= 12, [...names].join(', '));
    for (const name of names) {
      assert.match(metricsText, new RegExp(`^${name}[{ ]`, 'm'), `${name} is on /metrics`);
    }
  });

  test('every Prometheus dashboard query runs on the daemon’s real metrics and returns data', async () => {
    for (const { panel, target } of targets(load('kasa-monitor-prometheus.json'))) {
      const expr = expand(target.expr ?? '');
      const answer = await query(expr);
      assert.equal(answer.status, 'success', `${panel}: ${expr}: ${answer.error}`);
      // "Checks not ok" is empty while every check is ok; everything else has data now. A rate()
      // is empty for a series that first appeared in the second scrape: then its metrics must be.
      if (panel === 'Checks not ok' || answer.data.result.length > 0) continue;
      assert.match(expr, /\b(rate|increase)\(/, `${panel}: ${expr} returned nothing`);
      for (const name of expr.match(/\bkasa_[a-z0-9_]+/g) ?? []) {
        assert.ok((await query(name)).data.result.length > 0, `${panel}: ${name} has no samples`);
      }
    }
  });

  test('every kasa_energy field the VictoriaMetrics dashboard queries is stored, and each query returns data', async () => {
    const d = load('kasa-monitor-victoriametrics.json');
    const stored = new Set((await vm.exportSeries()).map((s) => s.metric['__name__']));
    const texts = [
      ...targets(d).map(({ target }) => target.expr ?? ''),
      ...d.templating.list.map((v) => v.definition ?? ''),
    ];
    for (const name of new Set(texts.flatMap((t) => t.match(/\bkasa_[a-z0-9_]+/g) ?? []))) {
      assert.ok(stored.has(name), `${name} is written (stored: ${[...stored].join(', ')})`);
    }
    for (const { panel, target } of targets(d)) {
      const expr = expand(target.expr ?? '');
      const answer = await query(expr);
      assert.equal(answer.status, 'success', `${panel}: ${expr}: ${answer.error}`);
      assert.ok(answer.data.result.length > 0, `${panel}: ${expr} returned nothing`);
    }
  });

  test('the InfluxDB dashboard queries only the measurement, fields and tags the forwarder writes', async () => {
    const series = await vm.exportSeries();
    const fields = new Set(series.map((s) => (s.metric['__name__'] ?? '').replace(/^kasa_energy_/, '')));
    const tags = new Set(series.flatMap((s) => Object.keys(s.metric)));
    const flux = targets(load('kasa-monitor-influxdb.json')).map(({ target }) => target.query ?? '');
    let checked = 0;
    for (const q of flux) {
      for (const [, measurement] of q.matchAll(/r\._measurement == "([^"]+)"/g)) {
        assert.equal(measurement, 'kasa_energy');
        checked++;
      }
      for (const [, field] of q.matchAll(/r\._field == "([^"]+)"/g)) {
        assert.ok(
          fields.has(field as string),
          `field ${field} is written (written: ${[...fields].join(', ')})`,
        );
        checked++;
      }
      for (const [, columns] of q.matchAll(/group\(columns: \[([^\]]*)\]\)/g)) {
        for (const [, tag] of (columns as string).matchAll(/"([^"]+)"/g)) {
          assert.ok(tags.has(tag as string), `tag ${tag} is written`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 8);
  });
});
