/**
 * Errors of the smart transports, branded with a code that says what happened and whether a retry
 * can help. Messages never contain credentials (only which kind of candidate was tried).
 */
export type SmartErrorCode =
  /** No credential candidate matches the device's proof, or the device refused our login. */
  | 'auth'
  /** 403 on the first handshake: firmware that needs "Third-Party Compatibility" enabled. */
  | 'third-party-compat'
  /** The device advertises a transport we do not speak. */
  | 'unsupported'
  | 'timeout'
  | 'refused'
  | 'network'
  /** The device answered something that does not follow the protocol (garbage, short body, bad status). */
  | 'protocol'
  /** The device answered with an error code (`detail` has it). */
  | 'device-error';

const BRAND = Symbol.for('kasa-monitor.SmartError');

export class SmartError extends Error {
  readonly [BRAND] = true;
  override readonly name = 'SmartError';

  constructor(
    readonly code: SmartErrorCode,
    message: string,
    options?: { cause?: unknown; readonly deviceCode?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.deviceCode = options?.deviceCode ?? null;
  }

  /** The device's error_code when `code` is 'device-error'. */
  readonly deviceCode: number | null;

  /** A retry after a pause can help (the device may answer next time). */
  get transient(): boolean {
    return (
      this.code === 'timeout' ||
      this.code === 'refused' ||
      this.code === 'network' ||
      this.code === 'protocol'
    );
  }
}

export function isSmartError(value: unknown): value is SmartError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
