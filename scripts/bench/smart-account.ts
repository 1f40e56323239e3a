/** The TP-Link account the benchmark's simulated newer plugs accept. */
export const BENCH_ACCOUNT = { username: 'bench@example.com', password: 'bench-password' };
