import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { criClient, type ImageApi, type RuntimeApi } from './cri-client.js';

export const repoRoot = resolve(import.meta.dirname, '../..');
export type Runtime = 'node' | 'bun' | 'deno';

/** The JavaScript runtime the server runs under, chosen by the test matrix. */
export const runtime: Runtime = (process.env.PEAPOD_TEST_RUNTIME as Runtime) ?? 'node';

function command(rt: Runtime): [string, ...string[]] {
  const cli = join(repoRoot, 'dist', 'cli.js');
  const bin = (name: string) => join(repoRoot, 'node_modules', '.bin', name);
  switch (rt) {
    case 'node':
      return [process.execPath, cli];
    case 'bun':
      return [bin('bun'), cli];
    case 'deno':
      return [bin('deno'), 'run', '-q', '-A', cli]; // -q: no progress bar on a terminal's stderr
  }
}

/** `peapod` under the matrix runtime: the server and the CLI the tests run (argv before the subcommand). */
export const peapodCommand = command(runtime);

export interface TestServer {
  runtime: RuntimeApi;
  image: ImageApi;
  socket: string;
  root: string;
  state: string;
  pid: number;
  /** Everything the server printed so far. */
  output(): string;
  /** kill -9 the server and start it again on the same roots; `args` replace the extra `serve` flags. */
  restart(env?: Record<string, string>, args?: string[]): Promise<void>;
  kill9(): Promise<void>;
  /** Removes every sandbox, stops the server, deletes the roots. */
  cleanup(): Promise<void>;
}

export interface ServerOptions {
  /** Prefix to the server command, e.g. `unshare --net --` to give it a network namespace of its own. */
  wrapper?: string[];
  /** More `peapod serve` flags. */
  args?: string[];
  /** Pod networking; 'none' (loopback-only pods, the default here) unless a test asks for CNI. */
  network?: 'cni' | 'none';
}

/** Starts `peapod serve` under the matrix runtime on fresh temporary roots. */
export async function startServer(
  env: Record<string, string> = {},
  prepare?: (root: string) => Promise<void>,
  opts: ServerOptions = {},
): Promise<TestServer> {
  const base = mkdtempSync(join(tmpdir(), 'peapod-test-'));
  const socket = join(base, 'peapod.sock');
  const root = join(base, 'root');
  const state = join(base, 'state');
  let child!: ChildProcess;
  let out = '';
  let client = criClient(socket);
  // A server that dies on its own mid-test: its last words, for the failure report (the tests only see a refused socket).
  let died: string | undefined;
  let killing = false;
  let extraArgs = opts.args ?? [];

  const launch = async (extraEnv: Record<string, string>) => {
    died = undefined; // a test that restarts the server meant it to go (fault points kill it)
    const [cmd, ...args] = peapodCommand;
    const serve = ['serve', '--socket', socket, '--root', root, '--state', state, '--log-level', 'debug'];
    serve.push('--network', opts.network ?? 'none', ...extraArgs);
    const argv = [...(opts.wrapper ?? []), cmd!, ...args, ...serve];
    child = spawn(argv[0]!, argv.slice(1), {
      env: { ...process.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.once('exit', (code, sig) => {
      if (!killing && code !== 0) died = `server (${runtime}) died on its own (${code ?? sig}); its last output:\n${out.slice(-6000)}`;
    });
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, sig) => reject(new Error(`server (${runtime}) exited early: ${code ?? sig}\n${out}`))),
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (existsSync(socket)) {
        try {
          await Promise.race([client.runtime.Version({}), exited]);
          return;
        } catch (err) {
          if (child.exitCode !== null || child.signalCode !== null) throw err;
        }
      }
      if (Date.now() > deadline) throw new Error(`server (${runtime}) did not come up\n${out}`);
      await Promise.race([new Promise((r) => setTimeout(r, 25)), exited]);
    }
  };

  const kill9 = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    killing = true;
    child.kill('SIGKILL');
    await gone;
    killing = false;
    client.close();
    client = criClient(socket);
  };

  if (prepare) await prepare(root);
  await launch(env);
  const server: TestServer = {
    get runtime() {
      return client.runtime;
    },
    get image() {
      return client.image;
    },
    socket,
    root,
    state,
    get pid() {
      return child.pid!;
    },
    output: () => out,
    async restart(extraEnv = {}, args) {
      await kill9();
      if (args) extraArgs = args;
      await launch(extraEnv);
    },
    kill9,
    async cleanup() {
      try {
        if (child.exitCode === null && child.signalCode === null) {
          const { items } = await client.runtime.ListPodSandbox({});
          for (const sb of items) await client.runtime.RemovePodSandbox({ podSandboxId: sb.id });
        }
      } finally {
        await kill9();
        client.close();
        reclaim(base);
      }
      if (died) throw new Error(died);
    },
  };
  return server;
}

/**
 * Whatever a failed test left under `base` goes, so one failure (or a server
 * that died) does not leak onto the machine: every process whose command line
 * names `base` (pauses name their sandbox dir, monitors their container dir),
 * every process in the PID namespace of such a pause, and every descendant of
 * any of them (a container with a PID namespace of its own is its monitor's
 * child); then the cgroups of its pods, then its mounts. After a clean
 * RemovePodSandbox there is nothing to do.
 */
export function reclaim(base: string): void {
  const hostPidNs = statSync('/proc/self/ns/pid').ino;
  const procs = new Map<number, { ppid: number; named: boolean; pauseNs?: number; ns?: number }>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      const argv = readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0');
      const ns = statSync(`/proc/${p}/ns/pid`).ino;
      const named = argv.some((a) => a.includes(base));
      const pauseNs = named && argv[0]!.endsWith('/pause') && ns !== hostPidNs ? ns : undefined;
      procs.set(Number(p), { ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), named, pauseNs, ns });
    } catch {
      // gone, or not ours to read
    }
  }
  const pidNs = new Set([...procs.values()].flatMap((x) => (x.pauseNs ? [x.pauseNs] : [])));
  const doomed = new Set([...procs].filter(([, x]) => x.named || pidNs.has(x.ns!)).map(([pid]) => pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, x] of procs) {
      if (!doomed.has(pid) && doomed.has(x.ppid)) {
        doomed.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of doomed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  removeCgroups(base, [...doomed]);
  for (const mp of mountsContaining(base).reverse()) spawnSync('umount', ['-l', mp]);
  rmSync(base, { recursive: true, force: true });
}

/** Whether `pid` exists and is not a zombie; one that vanishes while its stat is read is gone. */
function runsStill(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

/** The cgroup directories named after the pods and containers recorded under `base`, in every hierarchy, once `dying` are gone. */
function removeCgroups(base: string, dying: number[]): void {
  const ids = new Set(['sandboxes', 'containers'].flatMap((d) => (existsSync(join(base, 'state', d)) ? readdirSync(join(base, 'state', d)) : [])));
  if (ids.size === 0) return;
  const deadline = Date.now() + 5000;
  while (dying.some(runsStill) && Date.now() < deadline) {
    spawnSync('sleep', ['0.02']);
  }
  const hierarchies = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4]!);
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (ids.has(e.name)) found.push(join(dir, e.name));
      else if (depth < 4) walk(join(dir, e.name), depth + 1);
    }
  };
  for (const h of hierarchies) walk(h, 0);
  for (const top of found) {
    // Deepest first: a pod's containers, then the pod.
    const dirs: string[] = [];
    const below = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) below(join(d, e.name));
      dirs.push(d);
    };
    below(top);
    for (const d of dirs) spawnSync('rmdir', [d]);
  }
}

/** Namespace inode of /proc/<pid>/ns/<ns> (for a thread: pass "pid/task/tid"). */
export function nsOf(proc: string | number, ns: string): string {
  return readlinkSync(`/proc/${proc}/ns/${ns}`);
}

/** Every process in the PID namespace of `pid` (itself too), zombies included: a zombie's link still names it. */
export function pidNamespaceMembers(pid: number): number[] {
  const ns = nsOf(pid, 'pid');
  return readdirSync('/proc').flatMap((p) => {
    if (!/^\d+$/.test(p)) return [];
    try {
      return nsOf(p, 'pid') === ns ? [Number(p)] : [];
    } catch {
      return []; // gone, or not ours to read
    }
  });
}

/** The namespaces of every thread of a process: all must stay the host's. */
export function threadNamespaces(pid: number): Set<string> {
  const seen = new Set<string>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    for (const ns of ['net', 'ipc', 'uts', 'pid_for_children', 'mnt']) {
      try {
        seen.add(`${ns}=${readlinkSync(`/proc/${pid}/task/${tid}/ns/${ns}`)}`);
      } catch {
        // thread exited meanwhile
      }
    }
  }
  return seen;
}

export function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** Mount points whose path contains `fragment` in this process's view. */
export function mountsContaining(fragment: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.includes(fragment));
}
