/**
 * Types for the `systemd-notify` npm package (1.0.0, no bundled types). It spawns the
 * `systemd-notify` binary with `--ready`, `--pid=`, `--status=` and `--booted`, and resolves with the
 * finished child process (or rejects with its stderr text, or the spawn error).
 */
declare module 'systemd-notify' {
  import type { ChildProcess } from 'node:child_process';

  interface SystemdNotifyOptions {
    readonly ready?: boolean;
    readonly status?: string;
    readonly pid?: number;
    readonly booted?: boolean;
  }

  function systemdNotify(options?: SystemdNotifyOptions): Promise<ChildProcess>;

  export = systemdNotify;
}
