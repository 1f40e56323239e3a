/**
 * MQTT at scale: the whole Daemon polling 1,000 simulated channels at 1 Hz (plugs in a child
 * process, as in daemon.ts), in alternating windows without MQTT and with MQTT publishing every
 * committed reading to a local Mosquitto (a separate process, as a real broker is). The figure is
 * CPU seconds (every thread of this process) per 1,000 readings; the target is with / without ≤ 1.2.
 *
 * Needs /usr/sbin/mosquitto (Debian package mosquitto). Loopback only: plugs on 127.39.50.x,
 * port 39500; the broker on 127.39.0.50:39501.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, loadConfig } from '../../src/config/index.js';
import { createRootLogger, type Logger } from '../../src/log/logger.js';
import { Daemon, type DaemonStatus } from '../../src/main.js';
import { Mosquitto } from '../../test/helpers/mosquitto.js';
import { cpuSeconds, median, round, startChildFleet } from './fleet.js';

export interface MqttBenchOptions {
  /** Alternating with/without windows each (default 3). */
  readonly repeats?: number;
  /** Length of one window (default 30 s). */
  readonly windowS?: number;
  readonly warmupS?: number;
  /**
   * The MQTT windows with a tariff: every state carries `cost`, refreshed from stored data every
   * 60 s (the reader pool's CPU counts: its workers are threads of this process).
   */
  readonly tariff?: boolean;
}

export interface MqttBenchResult {
  readonly channels: number;
  readonly windowS: number;
  /** CPU seconds per 1,000 readings, each window. */
  readonly without: readonly number[];
  readonly with: readonly number[];
  readonly withoutMedian: number;
  readonly withMedian: number;
  /** withMedian / withoutMedian; target ≤ 1.2. */
  readonly ratio: number;
  /** States published / readings committed in the MQTT windows (1 = one message per reading). */
  readonly statesPerReading: number;
  readonly dropped: number;
}

const PORT = 39500;
const BROKER = { host: '127.39.0.50', port: 39501 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function config(databasePath: string, mqttUrl: string | null, tariff = false): Config {
  return loadConfig({
    env: {},
    defaultFile: '/nonexistent/kasa-monitor.yaml',
    overrides: {
      'discovery.broadcast': ['127.255.255.255'],
      'discovery.port': PORT,
      'polling.interval': '1s',
      'polling.timeout': '900ms',
      'storage.sqlite.path': databasePath,
      'http.listen': '127.0.0.1:0',
      'log.level': 'warn',
      ...(mqttUrl === null ? {} : { 'mqtt.url': mqttUrl }),
      ...(tariff
        ? {
            'tariff.currency': 'EUR',
            'tariff.periods': [
              { from: '2020-01-01', rates: [{ from: '07:00', to: '23:00', price: 0.31 }, { price: 0.18 }] },
            ],
          }
        : {}),
    },
  }).config;
}

export async function benchMqtt(options: MqttBenchOptions = {}): Promise<MqttBenchResult> {
  const repeats = options.repeats ?? 3;
  const windowS = options.windowS ?? 30;
  const warmupS = options.warmupS ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'kasa-bench-mqtt-'));
  const logger: Logger = createRootLogger({ level: 'warn', format: 'json', destination: process.stderr });
  const broker = new Mosquitto(BROKER);
  await broker.start();
  const fleet = await startChildFleet({ port: PORT, count: 500, stripEvery: 5, firstAddress: '127.39.50.1' });
  try {
    const without: number[] = [];
    const withMqtt: number[] = [];
    let states = 0;
    let committed = 0;
    let dropped = 0;
    for (let r = 0; r < repeats * 2; r++) {
      const mqtt = r % 2 === 1;
      const daemon = new Daemon(
        config(join(dir, `run-${r}.db`), mqtt ? broker.url : null, mqtt && options.tariff === true),
        logger,
      );
      await daemon.start();
      try {
        const status = () => daemon.status() as DaemonStatus;
        const end = Date.now() + 30_000;
        while (status().devices.onlineChannels < fleet.channels) {
          if (Date.now() > end) throw new Error('the daemon did not find every plug');
          await sleep(50);
        }
        await sleep(warmupS * 1000);
        const s0 = status();
        const cpu0 = process.cpuUsage();
        await sleep(windowS * 1000);
        const spent = cpuSeconds(cpu0);
        const s1 = status();
        const readings = s1.poller.pollsOk - s0.poller.pollsOk;
        (mqtt ? withMqtt : without).push(round((spent / readings) * 1000));
        if (mqtt) {
          states += (s1.mqtt?.statesPublished ?? 0) - (s0.mqtt?.statesPublished ?? 0);
          committed += s1.writer.written - s0.writer.written;
          dropped += (s1.mqtt?.dropped ?? 0) - (s0.mqtt?.dropped ?? 0);
        }
      } finally {
        await daemon.stop();
      }
    }
    const withoutMedian = median(without);
    const withMedian = median(withMqtt);
    return {
      channels: fleet.channels,
      windowS,
      without,
      with: withMqtt,
      withoutMedian,
      withMedian,
      ratio: round(withMedian / withoutMedian, 3),
      statesPerReading: committed === 0 ? 0 : round(states / committed, 3),
      dropped,
    };
  } finally {
    await fleet.stop();
    await broker.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
