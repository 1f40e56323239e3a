import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * A stand-in for systemd's notification socket: an AF_UNIX datagram socket (Node has none, so a small
 * Python program holds it) that records every sd_notify message with the sender's PID, and answers the
 * BARRIER=1 that systemd-notify sends after each message by closing the passed file descriptor, as
 * PID 1 does. Lets a test watch exactly what the daemon tells systemd.
 */
const LISTENER = `
import array, json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": True}), flush=True)
while True:
    data, ancillary, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    text = data.decode("utf-8", "replace")
    if text.strip() == "BARRIER=1":
        continue
    print(json.dumps({"message": text, "pid": pid}), flush=True)
`;

export interface NotifyDatagram {
  /** The assignments of one datagram, in order (e.g. ['READY=1', 'STATUS=…']). */
  readonly assignments: readonly string[];
  /** The sending process (the systemd-notify child, not the daemon). */
  readonly pid: number | null;
}

export class NotifySocket {
  readonly path: string;
  readonly messages: NotifyDatagram[] = [];
  readonly #dir: string;
  readonly #child: ChildProcess;
  readonly #waiters = new Set<() => void>();
  stderr = '';

  private constructor(dir: string, child: ChildProcess) {
    this.#dir = dir;
    this.path = join(dir, 'notify');
    this.#child = child;
  }

  /** Starts the listener; resolves once the socket is bound. Needs python3. */
  static async start(): Promise<NotifySocket> {
    const dir = mkdtempSync(join(tmpdir(), 'kasa-notify-'));
    const child = spawn('python3', ['-c', LISTENER, join(dir, 'notify')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const socket = new NotifySocket(dir, child);
    child.stderr?.on('data', (d: Buffer) => {
      socket.stderr += d.toString();
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`notify listener exited (${code}): ${socket.stderr}`)));
      lines.on('line', (line) => {
        const record = JSON.parse(line) as { listening?: boolean; message?: string; pid?: number | null };
        if (record.listening === true) {
          resolve();
          return;
        }
        socket.messages.push({
          assignments: (record.message ?? '').split('\n').filter((a) => a !== ''),
          pid: record.pid ?? null,
        });
        for (const wake of [...socket.#waiters]) wake();
      });
    });
    return socket;
  }

  /** Every assignment received so far, flattened, in order. */
  assignments(): string[] {
    return this.messages.flatMap((m) => [...m.assignments]);
  }

  /** Resolves with the first message (from index `from`) that satisfies `match`. */
  waitFor(match: (m: NotifyDatagram) => boolean, from = 0): Promise<NotifyDatagram> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const found = this.messages.slice(from).find(match);
        if (found === undefined) return false;
        this.#waiters.delete(wake);
        resolve(found);
        return true;
      };
      const wake = (): void => {
        check();
      };
      if (!check()) this.#waiters.add(wake);
    });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      this.#child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
