import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normaliseRealtime, PLAUSIBLE_LIMITS, thousandths } from '../src/poller/normalise.js';

const CH = 'ABCDEF0123456789ABCDEF0123456789ABCDEF01';
const TS = 1_764_165_785_120;

function realtime(fields: Record<string, unknown>): unknown {
  return { emeter: { get_realtime: { ...fields, err_code: 0 } } };
}

function rejected(raw: unknown): { reason: string; detail: string } {
  const result = normaliseRealtime(raw, CH, TS);
  assert.equal(result.ok, false, `expected a rejection for ${JSON.stringify(raw)}`);
  return result.ok ? { reason: '', detail: '' } : { reason: result.reason, detail: result.detail };
}

describe('normaliseRealtime', () => {
  test('old firmware W/V/A/kWh floats become rounded integer mW/mV/mA/Wh', () => {
    const result = normaliseRealtime(
      realtime({ power: 12.3456, voltage: 230.1234, current: 0.0535, total: 1.0005 }),
      CH,
      TS,
    );
    assert.deepEqual(result, {
      ok: true,
      reading: { channel: CH, tsMs: TS, powerMw: 12_346, voltageMv: 230_123, currentMa: 54, totalWh: 1_001 },
    });
  });

  test('new firmware mW/mV/mA/Wh pass through as integers (rounded if fractional)', () => {
    const result = normaliseRealtime(
      realtime({ power_mw: 1_500_123, voltage_mv: 231_456, current_ma: 6_789.5, total_wh: 98_765 }),
      CH,
      TS,
    );
    assert.ok(result.ok);
    assert.deepEqual(
      [result.reading.powerMw, result.reading.voltageMv, result.reading.currentMa, result.reading.totalWh],
      [1_500_123, 231_456, 6_790, 98_765],
    );
  });

  test('the decoded text is accepted as well as parsed JSON; newer fields win when both are present', () => {
    const text = JSON.stringify({
      emeter: {
        get_realtime: {
          power: 1,
          power_mw: 1234,
          voltage: 230,
          voltage_mv: 229_999,
          current: 0.1,
          current_ma: 99,
          total: 0.5,
          total_wh: 501,
          err_code: 0,
        },
      },
    });
    const result = normaliseRealtime(text, CH, TS);
    assert.ok(result.ok);
    assert.deepEqual(
      [result.reading.powerMw, result.reading.voltageMv, result.reading.currentMa, result.reading.totalWh],
      [1234, 229_999, 99, 501],
    );
  });

  test('rounding is half up on the decimal value, not truncation nor binary artefacts', () => {
    assert.equal(thousandths(1.0005), 1001);
    assert.equal(thousandths(0.0535), 54);
    assert.equal(thousandths(0.0534), 53);
    assert.equal(thousandths(3.14), 3140);
    assert.equal(thousandths(122.049119), 122_049);
    assert.equal(thousandths(1e-7), 0);
    assert.equal(thousandths(0), 0);
  });

  test('malformed shapes are rejected as malformed', () => {
    const cases: unknown[] = [
      undefined,
      null,
      42,
      'not json at all',
      '{"emeter":',
      '[]',
      [],
      {},
      { emeter: null },
      { emeter: [] },
      { emeter: {} },
      { emeter: { get_realtime: 'x' } },
      { emeter: { get_realtime: { power: 1, voltage: 2, current: 3, total: 4 } } }, // no err_code
      realtime({ power: 1, voltage: 2, current: 3 }), // total missing
      realtime({ power_mw: 1, voltage_mv: 2, current_ma: 3 }),
      realtime({ power: '1', voltage: 2, current: 3, total: 4 }),
      realtime({ power: null, voltage: 2, current: 3, total: 4 }),
      realtime({ power: Number.NaN, voltage: 2, current: 3, total: 4 }),
      realtime({ power_mw: Number.POSITIVE_INFINITY, voltage_mv: 2, current_ma: 3, total_wh: 4 }),
    ];
    for (const raw of cases) {
      assert.equal(rejected(raw).reason, 'malformed', `malformed: ${String(JSON.stringify(raw))}`);
    }
  });

  test('error codes are rejected as error-code, at module or method level', () => {
    const moduleError = rejected({ emeter: { err_code: -1, err_msg: 'module not support' } });
    assert.equal(moduleError.reason, 'error-code');
    assert.match(moduleError.detail, /module not support/);
    const methodError = rejected({ emeter: { get_realtime: { err_code: -14, err_msg: 'entry not exist' } } });
    assert.equal(methodError.reason, 'error-code');
    assert.match(methodError.detail, /-14/);
    assert.equal(
      rejected({ emeter: { get_realtime: { power: 1, voltage: 2, current: 3, total: 4, err_code: '0' } } })
        .reason,
      'error-code',
    );
  });

  test('negative and absurd values are rejected as implausible', () => {
    const cases: Record<string, unknown>[] = [
      { power: -0.5, voltage: 230, current: 0.1, total: 1 },
      { power: 1, voltage: -1, current: 0.1, total: 1 },
      { power_mw: 1, voltage_mv: 230_000, current_ma: -3, total_wh: 1 },
      { power_mw: 1, voltage_mv: 230_000, current_ma: 3, total_wh: -1 },
      { power: 10_000.001, voltage: 230, current: 0.1, total: 1 }, // > 10 kW
      { power_mw: 1, voltage_mv: PLAUSIBLE_LIMITS.voltageMv + 1, current_ma: 3, total_wh: 1 }, // > 300 V
      { power: 1, voltage: 230, current: 50.001, total: 1 }, // > 50 A
      { power: 1, voltage: 230, current: 1, total: 1e7 }, // > 1 GWh
    ];
    for (const fields of cases) {
      assert.equal(rejected(realtime(fields)).reason, 'implausible', JSON.stringify(fields));
    }
    // The bounds themselves are still plausible.
    const edge = normaliseRealtime(
      realtime({ power: 10_000, voltage: 300, current: 50, total: 1_000_000 }),
      CH,
      TS,
    );
    assert.equal(edge.ok, true);
  });

  test('zero is a valid reading (plug switched off)', () => {
    const result = normaliseRealtime(
      realtime({ power_mw: 0, voltage_mv: 0, current_ma: 0, total_wh: 0 }),
      CH,
      TS,
    );
    assert.equal(result.ok, true);
  });
});
