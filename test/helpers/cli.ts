import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

/** The built CLI, exactly what the `kasa-monitor` bin and the systemd unit run. */
export const CLI = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a one-shot command of the built CLI to completion, with only PATH (and `env`) in its environment. */
export async function runCliProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: { readonly cwd?: string } = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env['PATH'], ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A long-running `kasa-monitor run`, with its JSON log lines collected as they arrive. */
export class DaemonProcess {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, 'run', ...args], {
      env: { PATH: process.env['PATH'], ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (line.trim() === '') continue;
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: line, unparsed: true });
        }
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = once(this.child, 'exit').then(([code]) => code as number | null);
  }

  /** The first log line whose message is `msg`, if logged yet. */
  logged(msg: string): Record<string, unknown> | undefined {
    return this.lines.find((l) => l['msg'] === msg);
  }

  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }

  /** Asks the daemon to stop (SIGTERM), gives it `graceMs` to exit, then makes sure it is gone. */
  async stop(graceMs = 15_000): Promise<void> {
    this.signal('SIGTERM');
    await Promise.race([this.exited, sleep(graceMs)]);
    await this.kill();
  }

  /** Makes sure the process is gone (for `finally` blocks). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
