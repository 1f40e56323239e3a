/**
 * Why a request to a device produced no answer. Shared by the device transports (which report it)
 * and the resilience layer (which decides from it whether a retry can help), so neither imports the
 * other.
 */
export type RequestFailure = 'timeout' | 'refused' | 'network';
