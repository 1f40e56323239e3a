/**
 * The smart protocol's JSON envelope over a SmartTransport: single calls, `multipleRequest` batches,
 * and `control_child` for strip outlets. Responses carry no ids: a batch's answers are matched by
 * method name. Devices stop a batch at the first failing method and omit the rest; those are asked
 * again one by one. A device that rejects batches altogether is asked one method at a time from then on.
 */
import { createHash, randomUUID } from 'node:crypto';
import { SmartError } from './errors.js';
import type { SmartTransport } from './transport.js';

export interface SmartCall {
  readonly method: string;
  readonly params?: Readonly<Record<string, unknown>>;
}

/** One method's outcome: its result object, or the device's error code for it. */
export type CallOutcome =
  | { readonly ok: true; readonly result: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly code: number };

/** −1002 unknown method, −1008 bad params: both mean "this device does not have it". */
export const UNSUPPORTED_CODES: ReadonlySet<number> = new Set([-1002, -1008]);
/** Answers to a whole batch that mean "no batches here". */
const BATCH_REJECTED: ReadonlySet<number> = new Set([-1003, -1001]);
const MAX_BATCH = 5;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseAnswer(text: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SmartError('protocol', `answer is not JSON (${text.length} chars)`);
  }
  if (!isRecord(json)) throw new SmartError('protocol', 'answer is not an object');
  return json;
}

function outcomeOf(json: Record<string, unknown>): CallOutcome {
  const code = json['error_code'];
  if (code !== 0) return { ok: false, code: typeof code === 'number' && Number.isInteger(code) ? code : -1 };
  const result = json['result'];
  return { ok: true, result: isRecord(result) ? result : {} };
}

export class SmartProtocol {
  /** Fixed per client, as the app does: b64(md5(uuid4)). */
  readonly #terminalUuid = createHash('md5').update(randomUUID()).digest('base64');
  #batches = true;

  constructor(readonly transport: SmartTransport) {}

  envelope(call: SmartCall): Record<string, unknown> {
    return {
      method: call.method,
      ...(call.params === undefined ? {} : { params: call.params }),
      request_time_milis: Date.now(),
      terminal_uuid: this.#terminalUuid,
    };
  }

  /** One call; resolves with its outcome (device errors are outcomes, transport errors reject). */
  async call(call: SmartCall, timeoutMs: number): Promise<CallOutcome> {
    const text = await this.transport.send(JSON.stringify(this.envelope(call)), timeoutMs);
    return outcomeOf(parseAnswer(text));
  }

  /**
   * Several calls, batched (5 at a time) where the device allows it; resolves with one outcome per
   * method name. `child` sends them to a strip outlet through `control_child`.
   */
  async many(
    calls: readonly SmartCall[],
    timeoutMs: number,
    child: string | null = null,
  ): Promise<Map<string, CallOutcome>> {
    const out = new Map<string, CallOutcome>();
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    if (!this.#batches) {
      for (const call of calls) out.set(call.method, await this.#single(call, left(), child));
      return out;
    }
    for (let i = 0; i < calls.length; i += MAX_BATCH) {
      const chunk = calls.slice(i, i + MAX_BATCH);
      const batch: SmartCall = {
        method: 'multipleRequest',
        params: { requests: chunk.map((c) => this.#inner(c)) },
      };
      const outcome = await this.#wrapped(batch, left(), child);
      if (!outcome.ok) {
        if (BATCH_REJECTED.has(outcome.code)) {
          this.#batches = false;
          for (const call of chunk) out.set(call.method, await this.#single(call, left(), child));
          continue;
        }
        throw new SmartError('device-error', `multipleRequest error_code ${outcome.code}`, {
          deviceCode: outcome.code,
        });
      }
      const responses = outcome.result['responses'];
      if (Array.isArray(responses)) {
        for (const entry of responses.slice(0, chunk.length)) {
          if (!isRecord(entry) || typeof entry['method'] !== 'string') continue;
          if (!chunk.some((c) => c.method === entry['method'])) continue;
          out.set(entry['method'], outcomeOf(entry));
        }
      }
      // The device stops at the first failing method: ask the omitted ones one by one.
      for (const call of chunk) {
        if (!out.has(call.method)) out.set(call.method, await this.#single(call, left(), child));
      }
    }
    return out;
  }

  /** False once the device rejected a batch: it is then asked one method at a time. */
  get batches(): boolean {
    return this.#batches;
  }

  #inner(call: SmartCall): Record<string, unknown> {
    return call.params === undefined ? { method: call.method } : { method: call.method, params: call.params };
  }

  #single(call: SmartCall, timeoutMs: number, child: string | null): Promise<CallOutcome> {
    return this.#wrapped(call, timeoutMs, child);
  }

  /** Sends `call` to the device, or to its child through control_child, and unwraps the answer. */
  async #wrapped(call: SmartCall, timeoutMs: number, child: string | null): Promise<CallOutcome> {
    if (child === null) return this.call(call, timeoutMs);
    const outer = await this.call(
      { method: 'control_child', params: { device_id: child, requestData: this.#inner(call) } },
      timeoutMs,
    );
    if (!outer.ok) return outer;
    const data = outer.result['responseData'];
    if (!isRecord(data)) throw new SmartError('protocol', 'control_child answer without responseData');
    return outcomeOf(data);
  }
}

/** Decodes a base64 `nickname` as UTF-8 ("Küche ☕"); a value that is not base64 is kept as sent. */
export function decodeNickname(value: unknown): string {
  if (typeof value !== 'string') return '';
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return value;
  const bytes = Buffer.from(value, 'base64');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  // Control characters would corrupt logs and CSV cells: dropped.
  return [...text]
    .filter((ch) => {
      const code = ch.codePointAt(0) ?? 0;
      return code >= 0x20 && code !== 0x7f;
    })
    .join('')
    .slice(0, 128);
}
