/**
 * Cost on the dashboard, in a real browser (Debian's Chromium through puppeteer-core): a daemon with
 * a flat tariff and simulated plugs on 127.27.2.x (discovery port 27201, broadcast 127.255.255.255),
 * HTTP on 127.27.0.2 (a free port). The overview shows today's cost per channel and a total, with
 * the currency, equal to what /api/energy reports; the device page's daily energy carries the cost.
 * (Without a tariff there is no cost column: test/dashboard.test.ts.) Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type PageLog, screenshot, type TestBrowser } from './helpers/browser.js';
import { simulatedFleetConfig } from './helpers/daemon-config.js';
import { type DashboardRig, startDashboardRig } from './helpers/dashboard-rig.js';
import { sleep, waitFor } from './helpers/wait.js';

const PORT = 27201;
const HTTP_HOST = '127.27.0.2';
const KETTLE = 'C1B2C3D4E5F60718293A4B5C6D7E8F9011223344';
const STRIP = 'C3B2C3D4E5F60718293A4B5C6D7E8F90112233';

const root = mkdtempSync(join(tmpdir(), 'kasa-dashboard-cost-'));
let rig: DashboardRig | undefined;
let browser: TestBrowser;
let origin: string;
const logs: PageLog[] = [];

interface EnergyRow {
  period: string;
  device_id: string;
  cost: number | null;
  currency: string | null;
}

async function todaysCosts(): Promise<Map<string, number>> {
  const day = new Date().toISOString().slice(0, 10); // time_zone is UTC
  const response = await fetch(`${origin}/api/energy?period=day&from=${day}`);
  const body = (await response.json()) as { currency: string | null; rows: EnergyRow[] };
  assert.equal(body.currency, 'EUR');
  return new Map(
    body.rows.filter((r) => r.period === day && r.cost !== null).map((r) => [r.device_id, r.cost as number]),
  );
}

before(async () => {
  rig = await startDashboardRig({
    fleet: {
      port: PORT,
      devices: [
        {
          model: 'hs110v2',
          address: '127.27.2.1',
          deviceId: KETTLE,
          alias: 'kettle',
          realtime: { power_mw: 3_600_000, voltage_mv: 230_000, current_ma: 15_652, total_wh: 1000 },
        },
        {
          model: 'hs300',
          address: '127.27.2.2',
          deviceId: STRIP,
          alias: 'desk strip',
          realtime: { power_mw: 5_432, voltage_mv: 230_100, current_ma: 40, total_wh: 100 },
        },
      ],
    },
    config: simulatedFleetConfig(root, {
      'discovery.port': String(PORT),
      'discovery.interval': '2s',
      'storage.sqlite.path': join(root, 'kasa.db'),
      'storage.sqlite.synchronous': 'NORMAL',
      'http.listen': `${HTTP_HOST}:0`,
      'health.min_free_disk_mb': '0',
      time_zone: 'UTC',
      'tariff.currency': 'EUR',
      'tariff.periods': [{ from: '2020-01-01', rates: [{ price: 40 }] }],
    }),
    httpHost: HTTP_HOST,
    ready: async (started, plugs) => {
      // The kettle's counter advances 1 Wh a second (3.6 kW) for a few seconds, then stops: today's
      // cost is then fixed, so the page and the API can be compared exactly.
      await waitFor(
        () => (started.status()?.writer.written ?? 0) >= 2 * 7,
        'readings of every channel stored',
      );
      for (let wh = 1001; wh <= 1006; wh++) {
        plugs.setRealtime(KETTLE, {
          power_mw: 3_600_000,
          voltage_mv: 230_000,
          current_ma: 15_652,
          total_wh: wh,
        });
        await sleep(1000);
      }
      plugs.setRealtime(KETTLE, { power_mw: 0, voltage_mv: 230_000, current_ma: 0, total_wh: 1006 });
      const written = started.status()?.writer.written ?? 0;
      await waitFor(
        () => (started.status()?.writer.written ?? 0) >= written + 2 * 7,
        'readings after the last step',
      );
    },
  });
  ({ browser, origin } = rig);
});

after(async () => {
  await rig?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('cost on the dashboard in a real browser', () => {
  test('with a tariff, the overview shows today’s cost per channel and a total, with the currency, as /api/energy reports it', async () => {
    const { page, log } = await browser.open(origin);
    logs.push(log);
    await page.goto(`${origin}/`, { waitUntil: 'networkidle0' });
    await page.waitForSelector(`tr[data-channel="${KETTLE}"] td.cost[data-cost]`, { timeout: 20_000 });
    assert.equal(await page.$eval('#cost-head', (th) => th.hasAttribute('hidden')), false);
    const api = await todaysCosts();
    const kettle = api.get(KETTLE);
    assert.ok(kettle !== undefined && kettle > 0, `the kettle cost something today: ${kettle}`);
    const cell = async (selector: string) =>
      page.$eval(selector, (td) => ({
        text: td.textContent ?? '',
        cost: td.getAttribute('data-cost'),
      }));
    const shown = await cell(`tr[data-channel="${KETTLE}"] td.cost`);
    assert.equal(Number(shown.cost), kettle, 'the API’s figure');
    assert.equal(shown.text, `${kettle.toFixed(2)} EUR`);
    // A strip's row sums its outlets; each outlet has its own.
    const outlet = await cell(`tr[data-channel="${STRIP}00"] td.cost`);
    assert.equal(Number(outlet.cost), api.get(`${STRIP}00`));
    assert.match(outlet.text, /^\d+\.\d\d EUR$/);
    const total = await cell('#total-cost');
    const sum = [...api.values()].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(Number(total.cost) - sum) < 1e-9, `total ${total.cost}, API ${sum}`);
    assert.equal(total.text, `${sum.toFixed(2)} EUR`);
    assert.equal(await page.$eval('#totals', (foot) => foot.hasAttribute('hidden')), false);
    console.log(`overview with cost screenshot: ${await screenshot(page, 'dashboard-overview-cost')}`);
    await page.close();
  });

  test('with a tariff, the device page’s daily energy carries the cost', async () => {
    const { page, log } = await browser.open(origin);
    logs.push(log);
    await page.goto(`${origin}/device?id=${KETTLE}`, { waitUntil: 'networkidle0' });
    const kettle = (await todaysCosts()).get(KETTLE) as number;
    await page.waitForFunction(`/EUR/.test(document.getElementById('energy-total')?.textContent ?? '')`, {
      timeout: 20_000,
    });
    const text = await page.$eval('#energy-total', (p) => p.textContent ?? '');
    assert.match(text, new RegExp(`, ${kettle.toFixed(2).replace('.', '\\.')} EUR in 1 day`));
    // The bar's legend (which follows the cursor) shows energy and cost.
    // The middle of the plot: the one day's bar (there is room of half a day on each side).
    await (await page.$('#energy .u-over'))?.hover();
    await page.waitForFunction(
      `/Wh · \\d+\\.\\d\\d EUR/.test(document.querySelector('#energy .u-legend')?.textContent ?? '')`,
      {
        timeout: 10_000,
      },
    );
    console.log(`device page with cost screenshot: ${await screenshot(page, 'dashboard-device-cost')}`);
    await page.close();
  });

  test('no console errors, failed requests or requests to other origins', () => {
    for (const log of logs) {
      assert.deepEqual(log.consoleErrors, []);
      assert.deepEqual(log.pageErrors, []);
      assert.deepEqual(log.failedRequests, []);
      assert.deepEqual(log.badResponses, []);
      assert.deepEqual(log.foreignRequests, []);
    }
  });
});
