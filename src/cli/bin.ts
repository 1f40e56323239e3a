#!/usr/bin/env node
import { runCli } from './index.js';

// The entry point the `kasa-monitor` bin and the systemd unit run. Only the exit code is decided here;
// `run` keeps the process alive through its own handles until a signal stops it.
runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `kasa-monitor: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
