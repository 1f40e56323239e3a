/**
 * A real systemd 252 to test the unit against: a Debian bookworm root file system made once with
 * debootstrap (cached in ROOTFS_DIR and reused by later runs), booted with systemd-nspawn. See
 * ../../../shared/notes/systemd-testing.md for what was measured here.
 *
 * - The cached tree is never written to: `--volatile=overlay` puts a tmpfs over it for each boot.
 * - `--register=no --keep-unit` because there is no systemd (machined) on the host; nspawn then
 *   makes its `payload/` and `supervisor/` cgroups under its own cgroup, so it is started inside a
 *   cgroup of this test's own, removed at shutdown.
 * - `--private-network`: the container has only its loopback, so simulated plugs and broadcasts to
 *   127.255.255.255 stay inside.
 * - Commands run in the guest through `nsenter -t <guest PID 1> -a` (machinectl and `systemctl -M`
 *   do not work without machined).
 *
 * Everything that goes wrong throws with what to do about it: this helper never skips.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const CACHE_DIR = '/var/cache/kasa-monitor-test';
export const ROOTFS_DIR = join(CACHE_DIR, 'rootfs');
/** procps: minbase has no /bin/kill, which ExecReload= runs. */
export const ROOTFS_PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'libstdc++6', 'procps'];
const STAMP = '.kasa-monitor-rootfs';
const SUITE = 'bookworm';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function execFileResult(file: string, args: readonly string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) || (error?.message ?? '') });
      },
    );
  });
}

function which(tool: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((dir) => existsSync(join(dir, tool)));
}

/** Throws with the fix when this machine cannot run the container at all. */
export function checkPrerequisites(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (the test boots a container)');
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter']) if (!which(tool)) missing.push(tool);
  if (missing.length > 0) {
    throw new Error(
      `the real-systemd test cannot run here: missing ${missing.join(', ')}. ` +
        'Install with: apt-get install -y systemd-container debootstrap (as .ci/run does), and run as root.',
    );
  }
}

/** The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org. */
export function debianMirror(): string {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822?.[1] !== undefined && !deb822[1].includes('security')) return deb822[1];
    const line = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/m.exec(text);
    if (line?.[1] !== undefined) return line[1];
  }
  return 'http://deb.debian.org/debian';
}

export interface RootfsResult {
  readonly dir: string;
  /** False when an earlier run's tree was reused. */
  readonly built: boolean;
  readonly ms: number;
}

/** The cached root file system, made with debootstrap when missing (about 40 s, 250 MB). */
export async function ensureRootfs(log: (line: string) => void = () => {}): Promise<RootfsResult> {
  const started = performance.now();
  const wanted = ROOTFS_PACKAGES.join(',');
  const stamp = join(ROOTFS_DIR, STAMP);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === wanted) {
    return { dir: ROOTFS_DIR, built: false, ms: performance.now() - started };
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  const building = `${ROOTFS_DIR}.tmp-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const mirror = debianMirror();
  log(`debootstrap ${SUITE} from ${mirror} into ${building} (once; later runs reuse ${ROOTFS_DIR})`);
  const result = await execFileResult(
    'debootstrap',
    ['--variant=minbase', `--include=${wanted}`, SUITE, building, mirror],
    15 * 60_000,
  );
  if (result.code !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(
      `debootstrap failed (exit ${result.code}); the real-systemd test needs a Debian ${SUITE} tree from ${mirror}:\n` +
        `${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`,
    );
  }
  writeFileSync(join(building, STAMP), `${wanted}\n`);
  // Another run may have finished first: then keep its tree. An outdated tree is replaced.
  if (existsSync(ROOTFS_DIR)) {
    const current = join(ROOTFS_DIR, STAMP);
    if (existsSync(current) && readFileSync(current, 'utf8').trim() === wanted) {
      rmSync(building, { recursive: true, force: true });
      return { dir: ROOTFS_DIR, built: true, ms: performance.now() - started };
    }
    rmSync(ROOTFS_DIR, { recursive: true, force: true });
  }
  renameSync(building, ROOTFS_DIR);
  return { dir: ROOTFS_DIR, built: true, ms: performance.now() - started };
}

/** Cgroup directories for nspawn: one per mounted hierarchy it uses (cgroup v2, or hybrid). */
function cgroupDirs(name: string): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return [join('/sys/fs/cgroup', name)];
  return ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']
    .filter((root) => existsSync(root))
    .map((root) => join(root, name));
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  }
  rmdirSync(dir);
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((p) => p !== '')
      .map(Number);
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export interface BootOptions {
  readonly rootfs: string;
  /** host path → guest path, mounted read-only. */
  readonly bindReadOnly: Readonly<Record<string, string>>;
  readonly bootTimeoutMs?: number;
}

export class Container {
  /** The guest's PID 1 as the host sees it. */
  readonly leader: number;
  readonly bootMs: number;
  readonly #nspawn: ChildProcess;
  readonly #cgroups: readonly string[];
  readonly #console: string[];

  private constructor(
    nspawn: ChildProcess,
    leader: number,
    cgroups: string[],
    console: string[],
    bootMs: number,
  ) {
    this.#nspawn = nspawn;
    this.leader = leader;
    this.#cgroups = cgroups;
    this.#console = console;
    this.bootMs = bootMs;
  }

  /** Boots the container and waits until its systemd reports the system running. */
  static async boot(options: BootOptions): Promise<Container> {
    const started = performance.now();
    const name = `kasa-monitor-test-${process.pid}-${Date.now()}`;
    const cgroups = cgroupDirs(name);
    if (cgroups.length === 0) throw new Error('no cgroup hierarchy found under /sys/fs/cgroup');
    for (const dir of cgroups) mkdirSync(dir);
    const binds = Object.entries(options.bindReadOnly).map(([host, guest]) => `--bind-ro=${host}:${guest}`);
    const args = [
      '-b',
      '--register=no',
      '--keep-unit',
      '--volatile=overlay',
      '--private-network',
      '--console=pipe',
      `--machine=${name.slice(0, 60)}`,
      '-D',
      options.rootfs,
      ...binds,
    ];
    // The shell moves itself into the test's cgroups, then becomes nspawn.
    const script =
      'for f in "$@"; do case "$f" in --) break;; esac; echo $$ > "$f/cgroup.procs"; shift; done; shift; exec systemd-nspawn "$@"';
    const nspawn = spawn('sh', ['-c', script, 'sh', ...cgroups, '--', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    });
    const console: string[] = [];
    const collect = (d: Buffer) => {
      console.push(d.toString());
      if (console.length > 2000) console.splice(0, 1000);
    };
    nspawn.stdout?.on('data', collect);
    nspawn.stderr?.on('data', collect);
    let exited: string | null = null;
    nspawn.once('exit', (code, signal) => {
      exited = `systemd-nspawn exited (${code ?? signal})`;
    });
    const fail = async (why: string): Promise<never> => {
      if (nspawn.exitCode === null && nspawn.signalCode === null) nspawn.kill('SIGKILL');
      await sleep(200);
      for (const dir of cgroups) {
        try {
          removeCgroupTree(dir);
        } catch {
          // Best effort; reported below with the rest.
        }
      }
      throw new Error(
        `the test container did not boot: ${why}\n--- nspawn output ---\n${console.join('').slice(-6000)}`,
      );
    };

    const deadline = performance.now() + (options.bootTimeoutMs ?? 60_000);
    let leader = 0;
    while (leader === 0) {
      if (exited !== null) return fail(exited);
      if (performance.now() > deadline) return fail('no systemd process appeared in the container');
      const pid = nspawn.pid ?? 0;
      leader = childrenOf(pid).find((child) => comm(child) === 'systemd') ?? 0;
      if (leader === 0) await sleep(50);
    }
    const container = new Container(nspawn, leader, cgroups, console, 0);
    for (;;) {
      if (exited !== null) return fail(exited);
      const state = await container.exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: 30_000 });
      const text = state.stdout.trim();
      if (text === 'running' || text === 'degraded') break;
      if (performance.now() > deadline)
        return fail(`systemctl is-system-running says '${text}' ${state.stderr}`);
      await sleep(100);
    }
    return new Container(nspawn, leader, cgroups, console, performance.now() - started);
  }

  /** Runs a command inside the guest (all its namespaces, root). */
  exec(command: readonly string[], options: { timeoutMs?: number } = {}): Promise<ExecResult> {
    return execFileResult(
      'nsenter',
      ['-t', String(this.leader), '-a', ...command],
      options.timeoutMs ?? 60_000,
    );
  }

  /** Like exec, but throws (with the output) unless the command exits 0; resolves to its stdout. */
  async run(command: readonly string[], options: { timeoutMs?: number } = {}): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code !== 0) {
      throw new Error(
        `in the container, '${command.join(' ')}' exited ${result.code}:\n${result.stdout}\n${result.stderr}`,
      );
    }
    return result.stdout;
  }

  /** Writes a file inside the guest. */
  async writeFile(path: string, text: string): Promise<void> {
    await this.run(['mkdir', '-p', dirname(path)]);
    const result = await new Promise<ExecResult>((resolve) => {
      const child = execFile(
        'nsenter',
        ['-t', String(this.leader), '-a', 'sh', '-c', 'cat > "$1"', 'sh', path],
        { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : 1, stdout: String(stdout), stderr: String(stderr) }),
      );
      child.stdin?.end(text);
    });
    if (result.code !== 0) throw new Error(`could not write ${path} in the container: ${result.stderr}`);
  }

  /** What the container printed on its console (boot messages), for failure reports. */
  consoleOutput(): string {
    return this.#console.join('');
  }

  /** Powers the guest off (SIGTERM to nspawn halts it), then removes the test's cgroups. */
  async shutdown(): Promise<void> {
    const nspawn = this.#nspawn;
    if (nspawn.exitCode === null && nspawn.signalCode === null) {
      const exited = new Promise((resolve) => nspawn.once('exit', resolve));
      nspawn.kill('SIGTERM');
      const timer = setTimeout(() => nspawn.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    for (const dir of this.#cgroups) {
      for (let attempt = 0; ; attempt++) {
        try {
          removeCgroupTree(dir);
          break;
        } catch (error) {
          if (attempt >= 50) throw new Error(`could not remove the test cgroup ${dir}: ${String(error)}`);
          await sleep(100);
        }
      }
    }
  }
}
