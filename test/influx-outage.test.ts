/**
 * The whole daemon (discovery, poller, queue, writer, SQLite, InfluxDB forwarder) against simulated
 * plugs and a real VictoriaMetrics that goes away for 30 s while the plugs are polled every second.
 * When it is back, every reading SQLite holds arrives exactly once (counts per device through
 * /api/v1/export), and the accounting of both sinks adds up.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createSilentLogger } from '../src/log/logger.js';
import { Daemon, type SinkAccounting } from '../src/main.js';
import { daemonStatus, simulatedFleetConfig } from './helpers/daemon-config.js';
import { type SimulatorFleet, startSimulators } from './helpers/simulator.js';
import { storedPerChannel } from './helpers/stored.js';
import { tempRoot } from './helpers/temp.js';
import { settledSamplesPerDevice, startVictoria, victoriaSkip } from './helpers/victoria.js';
import { sleep, waitFor } from './helpers/wait.js';

const PORT = 22200;
const OUTAGE_MS = 30_000;

const root = tempRoot('kasa-influx-outage-');

const skip = victoriaSkip();

function assertAccounting(name: string, sink: SinkAccounting | null): void {
  assert.ok(sink !== null, `${name} accounting present`);
  assert.equal(
    sink.added,
    sink.written + sink.dropped + sink.rejected + sink.queued,
    `${name}: added = written + dropped + rejected + queued (${JSON.stringify(sink)})`,
  );
}

describe('an InfluxDB outage while plugs are polled', { skip }, () => {
  test('VictoriaMetrics stopped for 30 s: afterwards every reading in SQLite arrives exactly once', async () => {
    const vm = await startVictoria();
    let fleet: SimulatorFleet | null = await startSimulators({
      port: PORT,
      devices: [
        { model: 'hs110', address: '127.0.40.1', alias: 'kettle' },
        { model: 'hs110v2', address: '127.0.40.2', alias: 'fridge' },
        { model: 'hs110', address: '127.0.40.3', alias: 'desk' },
        { model: 'hs300', address: '127.0.40.4', alias: 'strip' },
      ],
    });
    const dbPath = join(root, 'outage.db');
    const config = simulatedFleetConfig(root, {
      'discovery.port': String(PORT),
      'discovery.interval': '5s',
      'writer.flush_interval': '200ms',
      'storage.sqlite.path': dbPath,
      'storage.sqlite.synchronous': 'NORMAL',
      'storage.influx.url': vm.url,
      'storage.influx.token': 'outage-test-token',
      'storage.influx.flush_interval': '200ms',
      'retry.network.base_delay': '100ms',
      'retry.network.max_delay': '1s',
      'retry.network.timeout': '2s',
      'retry.network.breaker_threshold': '3',
      'retry.network.breaker_half_open_after': '2s',
      'http.listen': '127.0.0.1:0',
    });
    const daemon = new Daemon(config, createSilentLogger());
    try {
      await daemon.start();
      await waitFor(
        () => (daemonStatus(daemon).influx?.written ?? 0) >= 40,
        'readings forwarded before the outage',
      );

      await vm.stop();
      const atOutage = daemonStatus(daemon);
      await sleep(OUTAGE_MS);
      const during = daemonStatus(daemon);
      assert.ok(during.poller.pollsOk > atOutage.poller.pollsOk + 100, 'polling went on');
      assert.ok((during.influx?.queued ?? 0) > 100, 'readings wait in SQLite for InfluxDB');
      assert.ok((during.influx?.lagMs ?? 0) > 0, 'the lag is visible');
      const influxOp = during.retries.operations['influx.write'];
      assert.ok((influxOp?.breaker.transitions.opened ?? 0) >= 1, 'the breaker opened');
      assert.equal(during.retries.operations['sqlite.write']?.breaker.state, 'closed', 'SQLite unaffected');
      assertAccounting('sqlite', during.accounting.sqlite);
      assertAccounting('influx', during.accounting.influx);

      await vm.start();
      // Stop the plugs so the backlog can drain to zero, then let it.
      await fleet.stop();
      fleet = null;
      await waitFor(() => {
        const s = daemonStatus(daemon);
        return s.queue.size === 0 && s.writer.inFlight === 0 && s.influx?.queued === 0;
      }, 'the backlog delivered');
      const caughtUp = daemonStatus(daemon);
      assert.equal(caughtUp.retries.operations['influx.write']?.breaker.state, 'closed');
      assertAccounting('sqlite', caughtUp.accounting.sqlite);
      assertAccounting('influx', caughtUp.accounting.influx);
      assert.equal(caughtUp.influx?.rejected, 0);
    } finally {
      await daemon.stop();
      await fleet?.stop();
    }

    const stored = storedPerChannel(dbPath);
    const total = [...stored.values()].reduce((a, b) => a + b, 0);
    assert.equal(stored.size, 9, 'three plugs and six outlets');
    assert.equal(
      daemonStatus(daemon).influx?.added,
      total,
      'every committed reading went to the InfluxDB queue',
    );
    const inVm = await settledSamplesPerDevice(
      vm,
      (counts) => [...counts.values()].reduce((a, b) => a + b, 0) >= total,
      `${total} samples`,
    );
    await vm.close();
    assert.deepEqual(
      new Map([...inVm].sort(([a], [b]) => a.localeCompare(b))),
      new Map([...stored].sort(([a], [b]) => a.localeCompare(b))),
      'every reading exactly once, per device',
    );
  });
});
