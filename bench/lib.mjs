// Shared helpers for the bench scripts: start a peapod server on temporary
// roots under a chosen JavaScript runtime, and latency statistics.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { criClient } from '../dist/cri/client.js';

export const repoRoot = resolve(import.meta.dirname, '..');

export function runtimeCommand(rt) {
  const cli = join(repoRoot, 'dist', 'cli.js');
  const bin = (n) => join(repoRoot, 'node_modules', '.bin', n);
  return { node: [process.execPath, cli], bun: [bin('bun'), cli], deno: [bin('deno'), 'run', '-q', '-A', cli] }[rt];
}

/**
 * Mounts a fresh ext4 with a journal (a sparse loop file in /var/tmp) at
 * `dir`. This VM's root file system is ext4 *without* a journal, where every
 * new inode is found by skipping the ones deleted in the last minutes
 * (recently_deleted() in fs/ext4/ialloc.c): a cost that grows with churn and
 * that a node's journaled file system does not have. Returns the clean-up.
 */
export function mountJournaledFs(dir) {
  const img = join('/var/tmp', `${basename(dir)}-${process.pid}-${Date.now()}.img`);
  execFileSync('truncate', ['-s', '16G', img]);
  execFileSync('mkfs.ext4', ['-q', '-F', img]);
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-o', 'loop', img, dir]);
  return () => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    } catch {} // already gone with the mounts under it
    rmSync(img, { force: true });
  };
}

/**
 * Starts peapod on temporary roots. `stateTmpfs` puts the state dir on a
 * tmpfs, as /run is on every systemd host (here /run is on the root disk);
 * `journaledRoot` puts the root on a journaled file system (mountJournaledFs).
 */
export async function startPeapod(rt = 'node', extraArgs = [], { stateTmpfs = false, journaledRoot = false } = {}) {
  const base = mkdtempSync(join(tmpdir(), 'peapod-bench-'));
  const socket = join(base, 'peapod.sock');
  if (stateTmpfs) {
    mkdirSync(join(base, 'state'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700', 'peapod-bench-state', join(base, 'state')]);
  }
  const unmountRoot = journaledRoot ? mountJournaledFs(join(base, 'root')) : () => {};
  const [cmd, ...args] = runtimeCommand(rt);
  const child = spawn(cmd, [...args, 'serve', '--socket', socket, '--root', join(base, 'root'), '--state', join(base, 'state'), '--log-level', 'warn', ...extraArgs], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const release = () => {
    if (stateTmpfs) execFileSync('umount', ['-R', join(base, 'state')]);
    unmountRoot();
    rmSync(base, { recursive: true, force: true });
  };
  let exited = false;
  child.once('exit', () => (exited = true));
  const client = criClient(socket);
  for (let i = 0; ; i++) {
    if (existsSync(socket)) {
      try {
        await client.runtime.Version({});
        break;
      } catch {}
    }
    if (exited || i > 600) {
      // Nothing of a failed start stays mounted.
      client.close();
      child.kill('SIGKILL');
      if (!exited) await new Promise((r) => child.once('exit', r));
      release();
      throw new Error(exited ? 'server exited at start' : 'server did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    client,
    pid: child.pid,
    socket,
    base,
    async stop() {
      client.close();
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
      release();
    },
  };
}

/**
 * The containers' own program in every bench scenario. "Runtime" memory
 * leaves these processes out: what the runtime adds per pod (daemon, shim or
 * monitor, pause), whatever the workload is.
 */
export const WORKLOAD = 'sleep\x003600';
export const isWorkload = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith(WORKLOAD);
  } catch {
    return false;
  }
};

/**
 * Resident set size (or `measure`, e.g. pssKiB) of a process and all its
 * descendants, in KiB; `skip(pid)` leaves processes out.
 */
export function treeRssKiB(rootPid, measure = rssKiB, skip = () => false) {
  const parent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  let total = 0;
  for (const pid of parent.keys()) {
    let q = pid;
    while (q && q !== rootPid) q = parent.get(q);
    if (q === rootPid && !skip(pid)) total += measure(pid);
  }
  return total;
}

export function rssKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Proportional set size: shared pages (a binary's text, libc) divided among
 * the processes that map them, so N pods add what they really cost, not N
 * copies of every shared page as RSS counts.
 */
export function pssKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function stats(samplesMs) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, p50: q(0.5), p99: q(0.99), min: s[0], max: s[s.length - 1] };
}

export const fmt = (x) => x.toFixed(2).padStart(8);

export function podConfig(name, hostNetwork = false) {
  const meta = { metadata: { name, namespace: 'bench', uid: `uid-${name}`, attempt: 0 }, labels: {}, annotations: {} };
  // A host-network pod keeps the node's name, as the kubelet sends it.
  if (hostNetwork) return { ...meta, linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } };
  return { ...meta, hostname: name, linux: {} };
}

/** SIGKILLs every process whose command line contains `needle`, and all their descendants. */
export function killMatching(needle) {
  const parent = new Map();
  const roots = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(needle)) roots.push(Number(name));
    } catch {}
  }
  for (const pid of parent.keys()) {
    for (let q = pid; q; q = parent.get(q)) {
      if (roots.includes(q)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
        break;
      }
    }
  }
}

/** Every pid whose command line contains `needle`, with their descendants' RSS added, in KiB. */
export function rssOfMatching(needle, measure = rssKiB, skip = () => false) {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(needle)) total += treeRssKiB(Number(name), measure, skip);
    } catch {}
  }
  return total;
}

/** The machine's busy and total CPU time since boot, in clock ticks (all cores). */
function cpuTicks() {
  const f = readFileSync('/proc/stat', 'latin1').slice(0, 200).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * Waits until the machine is quiet (at most `busyMax` of its CPU busy over a
 * `windowMs` window), for at most `maxMs`: latency is then timed on an idle
 * node, not on the previous operation's tail (the workload's exec, a
 * runtime's own deferred work, or the other runtime's in an alternating run).
 */
export async function settle({ busyMax = 0.1, windowMs = 50, maxMs = 2000 } = {}) {
  const end = performance.now() + maxMs;
  let a = cpuTicks();
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, windowMs));
    const b = cpuTicks();
    if (b.total > a.total && (b.busy - a.busy) / (b.total - a.total) <= busyMax) return;
    a = b;
  }
}

export async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
