// `peapod doctor`: what this host offers against what peapod needs. Every
// check reads its facts from a DoctorInputs, never from fixed paths, so tests
// can point a check at a fake /proc, an empty CNI directory or a namespace
// that "fails" (see hostInputs for the real ones).

import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, statfsSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { packageRoot, type ServerConfig } from '../config.js';
import { loadLibc } from '../ffi/index.js';
import { Cgroups } from '../linux/cgroups.js';
import { loadNetwork } from '../network/cni-config.js';

export type CheckStatus = 'OK' | 'WARN' | 'ERROR';

export interface CheckResult {
  /** Short stable id ("kernel", "ns-net", "overlayfs", …), also the table's CHECK column. */
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a WARN or ERROR. */
  fix?: string;
}

export type NamespaceType = 'net' | 'ipc' | 'uts' | 'pid' | 'mnt';
export const namespaceTypes: readonly NamespaceType[] = ['net', 'ipc', 'uts', 'pid', 'mnt'];

/** Everything the checks look at. hostInputs() gives the real host; tests override fields. */
export interface DoctorInputs {
  config: ServerConfig;
  /** The proc file system: filesystems, self/status, self/mountinfo, sys/kernel/osrelease, config.gz, <pid>/stat. */
  proc: string;
  /** sysfs: dev/block/<major:minor> links and fs/ext4/<device>/journal_task. */
  sys: string;
  /** Where kernel build configs (config-<release>) and modules (/lib/modules) live. */
  bootDir: string;
  modulesDir: string;
  cniBinDirs: string[];
  cniConfDir: string;
  /** The package (for examples/cni and the provisioning script named in fixes). */
  packageRoot: string;
  /** Creates a namespace of this type in a short-lived child; resolves to an error message or undefined. */
  unshare(ns: NamespaceType): Promise<string | undefined>;
  /** Loads libc through this runtime's FFI; resolves to the backend's name. */
  ffiBackend(): Promise<string>;
  runtime: { name: string; version: string };
  /** Free bytes for an unprivileged writer at this path (statfs). */
  freeBytes(path: string): number;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const provisionFix = 'run scripts/provision.sh (as root), which installs and sets up what peapod needs';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The JavaScript runtime running this code, and its version. */
export function currentRuntime(): { name: string; version: string } {
  const g = globalThis as unknown as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (g.Bun !== undefined) return { name: 'bun', version: g.Bun.version };
  if (g.Deno !== undefined) return { name: 'deno', version: g.Deno.version.deno };
  return { name: 'node', version: process.versions.node };
}

/** `unshare --<ns> true` from util-linux; without it, the namespace's /proc/self/ns entry. */
export function unshareInChild(ns: NamespaceType, proc = '/proc'): Promise<string | undefined> {
  const flag = ns === 'mnt' ? '--mount' : ns === 'pid' ? '--pid --fork' : `--${ns}`;
  return new Promise((resolve) => {
    const child = spawn('unshare', [...flag.split(' '), 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code !== 'ENOENT') return resolve(`cannot run unshare: ${e.message}`);
      // No util-linux unshare: the kernel has the type when /proc/self/ns has it.
      resolve(existsSync(join(proc, 'self', 'ns', ns)) ? undefined : `${proc}/self/ns/${ns} does not exist`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(undefined);
      else resolve(err.trim().split('\n').pop() || `unshare --${ns} exited with ${code ?? signal}`);
    });
  });
}

/** The inputs of the real host for a configuration. */
export function hostInputs(config: ServerConfig): DoctorInputs {
  return {
    config,
    proc: '/proc',
    sys: '/sys',
    bootDir: '/boot',
    modulesDir: '/lib/modules',
    cniBinDirs: config.cniBinDirs,
    cniConfDir: config.cniConfDir,
    packageRoot,
    unshare: (ns) => unshareInChild(ns),
    ffiBackend: async () => (await loadLibc()).backend,
    runtime: currentRuntime(),
    freeBytes: (path) => {
      const s = statfsSync(path);
      return Number(s.bavail) * Number(s.bsize);
    },
  };
}

// ------------------------------------------------------------------ checks

function kernel(inp: DoctorInputs): CheckResult {
  const release = read(join(inp.proc, 'sys/kernel/osrelease'))?.trim() ?? '';
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return { name: 'kernel', status: 'WARN', detail: `cannot parse the kernel release "${release}"`, fix: 'peapod needs Linux 5.6 or newer' };
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major > 5 || (major === 5 && minor >= 6)) return { name: 'kernel', status: 'OK', detail: `Linux ${release}` };
  return {
    name: 'kernel',
    status: 'ERROR',
    // The newest system call peapod cannot do without; pidfd_open (5.3) is older.
    detail: `Linux ${release}: openat2(2) needs 5.6, which the container set-up uses to resolve every path inside the container's root`,
    fix: 'boot a kernel 5.6 or newer (Debian 12 ships 6.1)',
  };
}

function capabilities(inp: DoctorInputs): CheckResult[] {
  const status = read(join(inp.proc, 'self/status')) ?? '';
  const hex = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1];
  if (hex === undefined) {
    return [{ name: 'privileges', status: 'WARN', detail: `no CapEff in ${inp.proc}/self/status`, fix: 'run peapod as root' }];
  }
  const eff = BigInt(`0x${hex}`);
  const has = (bit: number) => (eff >> BigInt(bit)) & 1n;
  const out: CheckResult[] = [];
  out.push(
    has(21)
      ? { name: 'privileges', status: 'OK', detail: `CAP_SYS_ADMIN present (uid ${process.getuid?.() ?? '?'})` }
      : {
          name: 'privileges',
          status: 'ERROR',
          detail: 'no CAP_SYS_ADMIN: peapod cannot create namespaces, mounts or cgroups',
          fix: 'run peapod (and this check) as root: sudo peapod doctor',
        },
  );
  out.push(
    has(24)
      ? { name: 'cap-sys-resource', status: 'OK', detail: 'CAP_SYS_RESOURCE present' }
      : {
          name: 'cap-sys-resource',
          status: 'WARN',
          detail: "no CAP_SYS_RESOURCE: a container's oom_score_adj below the server's (a Guaranteed pod's -997) is not applied; the server's log warns at each such create",
          fix: 'run as root without dropping CAP_SYS_RESOURCE (the systemd unit keeps it)',
        },
  );
  return out;
}

async function namespaces(inp: DoctorInputs): Promise<CheckResult[]> {
  const errors = await Promise.all(namespaceTypes.map((ns) => inp.unshare(ns)));
  return namespaceTypes.map((ns, i) => {
    const err = errors[i];
    if (err === undefined) return { name: `ns-${ns}`, status: 'OK', detail: `a new ${ns} namespace can be created` };
    return {
      name: `ns-${ns}`,
      status: 'ERROR',
      detail: `cannot create a ${ns} namespace: ${err}`,
      fix:
        `run as root on a kernel with CONFIG_${ns === 'mnt' ? 'NAMESPACES' : `${ns.toUpperCase()}_NS`}=y; ` +
        'inside a container, give it CAP_SYS_ADMIN and no seccomp filter on unshare (e.g. --privileged)',
    };
  });
}

function overlayfs(inp: DoctorInputs): CheckResult {
  const fs = read(join(inp.proc, 'filesystems')) ?? '';
  const onOverlay = mountOf(inp, inp.config.root);
  if (onOverlay?.fstype === 'overlay') {
    // Its upper and work dirs would be on overlay, which the kernel refuses (EINVAL).
    return {
      name: 'overlayfs',
      status: 'ERROR',
      detail: `${inp.config.root} is on overlayfs (${onOverlay.dir}): every container's overlay root would fail to mount (Invalid argument)`,
      fix: 'put --root on a file system that is not overlay (in a container: a volume, e.g. docker run -v /var/lib/peapod)',
    };
  }
  if (/\toverlay$/m.test(fs)) return { name: 'overlayfs', status: 'OK', detail: `overlay listed in ${inp.proc}/filesystems` };
  const release = read(join(inp.proc, 'sys/kernel/osrelease'))?.trim() ?? '';
  const modDir = join(inp.modulesDir, release, 'kernel/fs/overlayfs');
  const module = existsSync(modDir) && readdirSync(modDir).some((f) => f.startsWith('overlay.ko'));
  if (module) {
    return {
      name: 'overlayfs',
      status: 'WARN',
      detail: 'the overlay module is not loaded yet (the kernel loads it on the first overlay mount)',
      fix: 'modprobe overlay (or list it in /etc/modules-load.d/peapod.conf)',
    };
  }
  return {
    name: 'overlayfs',
    status: 'ERROR',
    detail: `overlay is not in ${inp.proc}/filesystems and no overlay module was found: container root file systems are overlay mounts`,
    fix: 'modprobe overlay, or boot a kernel with CONFIG_OVERLAY_FS',
  };
}

function cgroups(inp: DoctorInputs): CheckResult[] {
  let cg: Cgroups;
  const mountinfo = read(join(inp.proc, 'self/mountinfo')) ?? '';
  try {
    cg = Cgroups.detect(mountinfo);
  } catch (err) {
    return [
      {
        name: 'cgroups',
        status: 'ERROR',
        detail: (err as Error).message,
        fix: 'mount cgroup2: mount -t cgroup2 none /sys/fs/cgroup (systemd does at boot)',
      },
    ];
  }
  const where = cg.mode === 'v2' ? `v2 at ${cg.unified}` : cg.mode === 'v1' ? 'v1' : `hybrid (v1 controllers, cgroup2 at ${cg.unified})`;
  const out: CheckResult[] = [];
  // Read-only mounts (as in an unprivileged container): the mount options in mountinfo say so.
  const readOnlyMounts = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const pre = line.split(' - ')[0]!.split(' ');
    if (pre[4] !== undefined && pre[5]?.split(',').includes('ro')) readOnlyMounts.add(pre[4]);
    else if (pre[4] !== undefined) readOnlyMounts.delete(pre[4]); // a later mount on top wins
  }
  const readOnly = cg.mounts.filter((m) => readOnlyMounts.has(m));
  if (readOnly.length > 0) {
    out.push({
      name: 'cgroups',
      status: 'ERROR',
      detail: `${where}; not writable: ${readOnly.join(', ')}`,
      fix: 'run as root with the cgroup file system mounted read-write (in a container: --cgroupns=private --privileged)',
    });
  }
  const missing = ['memory', 'cpu', 'pids'].filter((c) => !cg.controllers.has(c));
  const have = [...cg.controllers.keys()].sort().join(' ');
  if (missing.length > 0) {
    out.push({
      name: 'cgroup-controllers',
      status: 'WARN',
      detail: `${where}: ${missing.join(', ')} missing (have: ${have || 'none'}); limits on them fail`,
      fix:
        cg.mode === 'v2'
          ? `enable them for children: echo "${missing.map((c) => `+${c}`).join(' ')}" > ${cg.unified}/cgroup.subtree_control (and in every ancestor)`
          : `mount the v1 hierarchies (e.g. mount -t cgroup -o ${missing.join(',')} none /sys/fs/cgroup/${missing[0]}); memory may need cgroup_enable=memory on the kernel command line`,
    });
  } else if (readOnly.length === 0) {
    out.push({ name: 'cgroups', status: 'OK', detail: `${where}: ${have}; driver cgroupfs (kubelet cgroupDriver: cgroupfs)` });
  }
  return out;
}

function kernelConfig(inp: DoctorInputs): string | undefined {
  try {
    return gunzipSync(readFileSync(join(inp.proc, 'config.gz'))).toString('utf8');
  } catch {
    const release = read(join(inp.proc, 'sys/kernel/osrelease'))?.trim() ?? '';
    return read(join(inp.bootDir, `config-${release}`));
  }
}

function seccomp(inp: DoctorInputs): CheckResult {
  const status = read(join(inp.proc, 'self/status')) ?? '';
  const config = kernelConfig(inp);
  const filter = config === undefined ? undefined : /^CONFIG_SECCOMP_FILTER=y/m.test(config);
  const mode = /^Seccomp:\s*(\d)/m.exec(status)?.[1];
  if (mode !== undefined && filter !== false) {
    const cfg = filter === undefined ? 'kernel config not readable' : 'CONFIG_SECCOMP_FILTER=y';
    return { name: 'seccomp', status: 'OK', detail: `available (Seccomp field in status; ${cfg})` };
  }
  return {
    name: 'seccomp',
    status: 'WARN',
    detail:
      mode === undefined
        ? `no Seccomp field in ${inp.proc}/self/status: the kernel has no seccomp`
        : 'the kernel config lacks CONFIG_SECCOMP_FILTER',
    fix: 'boot a kernel with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER; until then containers asking for a seccomp profile fail to start',
  };
}

function propagation(inp: DoctorInputs): CheckResult {
  let fields: string[] | undefined;
  for (const line of (read(join(inp.proc, 'self/mountinfo')) ?? '').split('\n')) {
    const pre = line.split(' - ')[0]!.split(' ');
    if (pre[4] === '/') fields = pre.slice(6); // the last mount on / is the one in use
  }
  const fix = 'mount --make-rshared / (systemd does at boot; scripts/provision.sh does too)';
  if (fields === undefined) return { name: 'mount-propagation', status: 'WARN', detail: `no mount on / in ${inp.proc}/self/mountinfo`, fix };
  if (fields.some((f) => f.startsWith('shared:'))) return { name: 'mount-propagation', status: 'OK', detail: '/ is shared' };
  const kind = fields.some((f) => f.startsWith('master:')) ? 'slave' : 'private';
  return {
    name: 'mount-propagation',
    status: 'WARN',
    detail: `/ is ${kind}: Bidirectional and HostToContainer mounts will not propagate`,
    fix,
  };
}

/**
 * Moving a process into a cgroup takes a global lock whose writer waits for
 * an RCU grace period (about 10 ms on these hosts) unless a cgroup2 mount
 * has favordynmods (Linux 6.0+), which keeps the lock in its slow-reader
 * mode. Every container start moves its init into its cgroups.
 */
function favordynmods(inp: DoctorInputs): CheckResult {
  const name = 'cgroup-favordynmods';
  const mounts: Array<{ path: string; opts: string[] }> = [];
  for (const line of (read(join(inp.proc, 'self/mountinfo')) ?? '').split('\n')) {
    const [pre, post] = line.split(' - ');
    const [fstype, , superOpts = ''] = (post ?? '').split(' ');
    if (fstype === 'cgroup2') mounts.push({ path: pre!.split(' ')[4]!, opts: superOpts.split(',') });
  }
  if (mounts.length === 0) return { name, status: 'OK', detail: 'no cgroup2 mount (nothing to tune)' };
  if (mounts.some((m) => m.opts.includes('favordynmods'))) return { name, status: 'OK', detail: `favordynmods on ${mounts.find((m) => m.opts.includes('favordynmods'))!.path}` };
  return {
    name,
    status: 'WARN',
    detail: 'every container start waits for an RCU grace period (~10 ms) to move its process into its cgroups',
    fix: `mount -o remount,favordynmods ${mounts[0]!.path} (Linux 6.0+; scripts/provision.sh does it)`,
  };
}

/** What the server's CNI loader makes of the config: the network pods get, or why they get none. */
function cni(inp: DoctorInputs): CheckResult {
  const name = 'cni';
  if (inp.config.network === 'none') return { name, status: 'OK', detail: 'network "none": pods get loopback only; CNI is not used' };
  const loaded = loadNetwork(inp.cniConfDir, inp.cniBinDirs);
  if (loaded.ok) {
    const plugins = loaded.list.plugins.map((p, i) => `${p.type} (${loaded.binaries[i]})`).join(', ');
    return { name, status: 'OK', detail: `network "${loaded.list.name}" from ${loaded.list.file}: ${plugins}` };
  }
  const detail = `${loaded.message}: the server reports NetworkReady false and pods that need a network fail (--network none gives them loopback only)`;
  // The loader names missing plugins "CNI plugin(s) …"; otherwise no config was usable.
  if (/^CNI plugins? /.test(loaded.message)) {
    return {
      name,
      status: 'WARN',
      detail,
      fix: `apt-get install containernetworking-plugins (${provisionFix}), or put the plugins in ${inp.cniBinDirs.join(' or ')}`,
    };
  }
  // The first file in name order is the network, as go-cni takes it: a bad one is not skipped.
  const invalid = /^invalid CNI network config: (\/\S+?):/.exec(loaded.message);
  if (invalid) return { name, status: 'WARN', detail, fix: `fix ${invalid[1]} or remove it` };
  const example = join(inp.packageRoot, 'examples/cni/10-peapod.conflist');
  return {
    name,
    status: 'WARN',
    detail,
    fix: existsSync(example)
      ? `${provisionFix}, or: mkdir -p ${inp.cniConfDir} && cp ${example} ${inp.cniConfDir}/`
      : `${provisionFix}, or write a .conflist (bridge, host-local, portmap) into ${inp.cniConfDir}`,
  };
}

function socketLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (live: boolean) => {
      s.destroy();
      resolve(live);
    };
    s.setTimeout(1000, () => done(false));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

async function socket(inp: DoctorInputs): Promise<CheckResult> {
  const path = inp.config.socket;
  const dir = dirname(path);
  let st;
  try {
    st = lstatSync(path);
  } catch {
    try {
      if (!statSync(dir).isDirectory()) {
        return { name: 'socket', status: 'ERROR', detail: `${dir} is not a directory`, fix: `remove ${dir} or choose another --socket` };
      }
      return { name: 'socket', status: 'OK', detail: `${path} does not exist yet; the server creates it (mode 0660)` };
    } catch {
      return { name: 'socket', status: 'OK', detail: `${dir} does not exist yet; the server creates it (mode 0750) and ${path} (0660)` };
    }
  }
  if (!st.isSocket()) {
    return { name: 'socket', status: 'ERROR', detail: `${path} exists and is not a socket`, fix: `remove ${path} or choose another --socket` };
  }
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const live = await socketLive(path);
  const state = live ? 'a server is listening' : 'nothing is listening (a stale socket; the server replaces it)';
  if (mode !== '0660') {
    return { name: 'socket', status: 'WARN', detail: `${path} has mode ${mode}, not 0660; ${state}`, fix: `chmod 0660 ${path} (the server sets it at start)` };
  }
  return { name: 'socket', status: 'OK', detail: `${path} mode 0660; ${state}` };
}

/** Warns under `min` free bytes: GiBs for images and layers under the root, little for the state dir (a tmpfs /run). */
function disk(inp: DoctorInputs, name: string, path: string, min: number): CheckResult {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  let free: number;
  try {
    free = inp.freeBytes(p);
  } catch (err) {
    return { name, status: 'WARN', detail: `cannot statfs ${p}: ${(err as Error).message}`, fix: `check that ${path} is on a mounted file system` };
  }
  const amount = free >= GiB ? `${(free / GiB).toFixed(1)} GiB` : `${Math.floor(free / MiB)} MiB`;
  if (free >= min) return { name, status: 'OK', detail: `${amount} free under ${path}${p === path ? '' : ` (on ${p})`}` };
  return {
    name,
    status: 'WARN',
    detail: `only ${amount} free under ${path}${p === path ? '' : ` (on ${p})`}`,
    fix: `free space on that file system or point ${name === 'disk-root' ? '--root' : '--state'} elsewhere`,
  };
}

/** The mount holding `path` (the longest mount point above it; the last of equals, which is on top). */
function mountOf(inp: DoctorInputs, path: string): { dir: string; fstype: string; dev: string } | undefined {
  let best: { dir: string; fstype: string; dev: string } | undefined;
  for (const line of (read(join(inp.proc, 'self/mountinfo')) ?? '').split('\n')) {
    const [pre, post] = line.split(' - ');
    const f = (pre ?? '').split(' ');
    const dir = (f[4] ?? '').replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const under = dir === '/' || path === dir || path.startsWith(`${dir}/`);
    if (f.length < 5 || !under || (best && best.dir.length > dir.length)) continue;
    best = { dir, fstype: (post ?? '').split(' ')[0] ?? '', dev: f[2]! };
  }
  return best;
}

/**
 * ext4 without a journal finds every new inode by skipping those deleted in
 * the last seconds to minutes (recently_deleted() in fs/ext4/ialloc.c), a scan
 * that grows as containers come and go; each create makes about ten inodes
 * in the root (its writable layer, and overlayfs' own checks at mount).
 */
function rootJournal(inp: DoctorInputs): CheckResult {
  const name = 'root-journal';
  const best = mountOf(inp, inp.config.root);
  if (!best) return { name, status: 'OK', detail: `no mount found for ${inp.config.root}` };
  if (best.fstype !== 'ext4') return { name, status: 'OK', detail: `${inp.config.root} is on ${best.fstype} (${best.dir})` };
  let device: string;
  try {
    device = basename(readlinkSync(join(inp.sys, 'dev/block', best.dev)));
  } catch {
    return { name, status: 'OK', detail: `${inp.config.root} is on ext4 (${best.dir}); its journal could not be looked up` };
  }
  const task = read(join(inp.sys, 'fs/ext4', device, 'journal_task'))?.trim();
  if (task !== '<none>') return { name, status: 'OK', detail: `${inp.config.root} is on ext4 with a journal (${device})` };
  return {
    name,
    status: 'WARN',
    detail: `${inp.config.root} is on ext4 without a journal (${device}): every new inode skips those deleted in the last minutes, so container creation slows as containers come and go`,
    fix: 'put --root on a journaled file system (a node\'s /var/lib is one), or add a journal: tune2fs -O has_journal on the unmounted device',
  };
}

async function runtime(inp: DoctorInputs): Promise<CheckResult> {
  const rt = `${inp.runtime.name} ${inp.runtime.version}`;
  try {
    const backend = await inp.ffiBackend();
    return { name: 'runtime', status: 'OK', detail: `${rt}; FFI backend ${backend} loads libc` };
  } catch (err) {
    return {
      name: 'runtime',
      status: 'ERROR',
      detail: `${rt}; FFI does not load: ${(err as Error).message}`,
      fix: inp.runtime.name === 'node' ? 'npm ci (installs koffi), or run peapod under bun or deno' : 'reinstall this runtime, or run peapod under node',
    };
  }
}

const helpers = ['pause', 'peapod-sandbox', 'peapod-monitor', 'peapod-exec'];

function native(inp: DoctorInputs): CheckResult {
  const dir = inp.config.nativeDir;
  const bad = helpers.filter((h) => {
    try {
      accessSync(join(dir, h), constants.X_OK);
      return !statSync(join(dir, h)).isFile();
    } catch {
      return true;
    }
  });
  if (bad.length === 0) return { name: 'native-helpers', status: 'OK', detail: `${helpers.join(', ')} in ${dir}` };
  return {
    name: 'native-helpers',
    status: 'ERROR',
    detail: `missing or not executable in ${dir}: ${bad.join(', ')}`,
    fix: `make -C ${join(inp.packageRoot, 'native')} (needs gcc, make, libc6-dev, libseccomp-dev; ${provisionFix})`,
  };
}

function pid1(inp: DoctorInputs): CheckResult {
  const comm = read(join(inp.proc, '1/comm'))?.trim() ?? '?';
  let zombies = 0;
  let names: string[] = [];
  try {
    names = readdirSync(inp.proc).filter((n) => /^\d+$/.test(n));
  } catch {
    /* no proc */
  }
  for (const n of names) {
    const stat = read(join(inp.proc, n, 'stat'));
    if (stat === undefined) continue;
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' && ppid === '1') zombies++;
  }
  if (zombies === 0) return { name: 'pid1-reaper', status: 'OK', detail: `PID 1 is ${comm}; no orphaned zombies (the server also reaps its pods as a subreaper)` };
  return {
    name: 'pid1-reaper',
    status: 'WARN',
    detail: `PID 1 (${comm}) has ${zombies} zombie child(ren): it does not seem to reap orphans`,
    fix: 'run under an init that reaps (systemd, tini, dumb-init, docker run --init); pods are unaffected',
  };
}

/** Runs every check; the order is the table's. */
export async function runChecks(inp: DoctorInputs): Promise<CheckResult[]> {
  const [ns, sock, rt] = await Promise.all([namespaces(inp), socket(inp), runtime(inp)]);
  return [
    kernel(inp),
    ...capabilities(inp),
    ...ns,
    overlayfs(inp),
    ...cgroups(inp),
    seccomp(inp),
    propagation(inp),
    favordynmods(inp),
    cni(inp),
    sock,
    disk(inp, 'disk-root', inp.config.root, GiB),
    rootJournal(inp),
    disk(inp, 'disk-state', inp.config.state, 64 * MiB),
    rt,
    native(inp),
    pid1(inp),
  ];
}

/** The table: CHECK, STATUS, DETAIL / FIX (a fix on its own line under its detail). */
export function formatTable(results: CheckResult[]): string {
  const w = Math.max(5, ...results.map((r) => r.name.length));
  const lines = [`${'CHECK'.padEnd(w)}  STATUS  DETAIL / FIX`];
  for (const r of results) {
    lines.push(`${r.name.padEnd(w)}  ${r.status.padEnd(6)}  ${r.detail}`);
    if (r.fix !== undefined && r.status !== 'OK') lines.push(`${''.padEnd(w)}          fix: ${r.fix}`);
  }
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  lines.push('', `${count('OK')} ok, ${count('WARN')} warning(s), ${count('ERROR')} error(s)`);
  return lines.join('\n') + '\n';
}
