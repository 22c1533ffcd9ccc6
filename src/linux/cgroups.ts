// The cgroupfs driver: creates pod and container cgroups, applies CRI
// resource limits, reads stats, kills and removes. Works on cgroup v1, v2 and
// hybrid hosts; the layout is read from /proc/self/mountinfo, never assumed.
//
// Every resource controller lives in exactly one place: its v1 hierarchy on
// v1 and hybrid hosts, the cgroup2 hierarchy on pure v2 ones. Limits are
// written there; processes join every hierarchy (procsDirs) so that v1
// bookkeeping and v2-only features (cgroup.kill) both see them.
//
// Device access is confined in the v1 devices controller where it is joined
// (rules written at create), else by a BPF program on the cgroup2 dir, which
// the container's monitor attaches (the kernel has no v2 devices controller).

import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PeapodError, type ErrorKind, deadlineExceeded, failedPrecondition, invalidArgument, notFound } from '../errors.js';

export interface CgroupResources {
  /** CRI cpu_shares, 2..262144 (0 = unset); on v2 becomes cpu.weight. */
  cpuShares?: number;
  /** µs per period; -1 or 0 = unlimited. */
  cpuQuota?: number;
  /** µs, 1000..1000000 (0 = unset). */
  cpuPeriod?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  /** 0 or -1 = unlimited. */
  memoryLimitBytes?: number;
  /** memory+swap (v1 memsw semantics, as CRI/runc); -1 = unlimited; unset = no swap when memory is limited. */
  memorySwapLimitBytes?: number;
  /** 0 or -1 = unlimited. */
  pidsLimit?: number;
  /** pageSize like "2MB"; sizes the host does not have are skipped. */
  hugepageLimits?: { pageSize: string; limit: number }[];
  /** Raw cgroup v2 files (pure v2 hosts only). */
  unified?: Record<string, string>;
}

export interface CgroupStats {
  cpuUsageNs: bigint;
  memoryWorkingSetBytes: number;
  memoryUsageBytes: number;
  /** The memory limit; undefined when there is none. */
  memoryLimitBytes: number | undefined;
  /** Anonymous memory: v1 total_rss, v2 anon (as cAdvisor on v2). */
  memoryRssBytes: number;
  pageFaults: number;
  majorPageFaults: number;
  pids: number;
  oomKills: number;
  /** Pressure stall information of the cgroup2 dir, where there is one and the kernel keeps it. */
  psi?: { cpu?: Pressure; memory?: Pressure; io?: Pressure };
  timestampNs: bigint;
}

/** One `*.pressure` file: the share of time some (or all, `full`) of the tasks stalled. */
export interface Pressure {
  some: PressureLine;
  /** Absent from cpu.pressure before Linux 5.13. */
  full?: PressureLine;
}

export interface PressureLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Stall time since the cgroup was made, in microseconds as the kernel counts it. */
  totalUs: bigint;
}

export interface Cgroup {
  /** Normalised relative path, e.g. "kubepods/besteffort/pod<uid>/<id>". */
  readonly path: string;
  /** One directory per hierarchy (v1 ones and the cgroup2 one); write a pid into each <dir>/cgroup.procs to join. */
  procsDirs(): string[];
  update(res: CgroupResources): void;
  stats(): CgroupStats;
  oomKilled(): boolean;
  /** Every pid in this cgroup or below it, in any hierarchy. */
  pids(): number[];
  killAll(timeoutMs?: number): Promise<void>;
  remove(): Promise<void>;
}

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

/** One device cgroup rule, as devices.allow takes it: type a (all), c or b; major and minor a number or '*'; access letters of rwm. */
export interface DeviceRule {
  type: 'a' | 'c' | 'b';
  major: number | '*';
  minor: number | '*';
  access: string;
}

/** Everything allowed (privileged), or nothing but `allow`. */
export type DeviceAccess = { allowAll: true } | { allowAll: false; allow: DeviceRule[] };

/** "c 1:3 rwm", as devices.allow and devices.list write a rule. */
export function formatDeviceRule(r: DeviceRule): string {
  return r.type === 'a' ? 'a' : `${r.type} ${r.major}:${r.minor} ${r.access}`;
}

export interface ControllerLocation {
  mount: string;
  version: 1 | 2;
}

/** What mountinfo says: v1 hierarchies (mount point → controllers, incl. "name=x") and the cgroup2 mount. */
export interface MountLayout {
  v1: { mount: string; controllers: string[] }[];
  unified?: string;
}

/**
 * What a container sees at /sys/fs/cgroup, as runc mounts it without a cgroup
 * namespace (libcontainer mountCgroupV1 / mountCgroupV2).
 */
export interface CgroupView {
  /**
   * For each of Cgroups.mounts: the name under /sys/fs/cgroup (a tmpfs) where
   * the container's dir in that hierarchy is bound, '.' for /sys/fs/cgroup
   * itself (pure v2), undefined for none (a hybrid host's cgroup2 mount: runc
   * binds the v1 hierarchies only).
   */
  names: ReadonlyArray<string | undefined>;
  /** [target, link] in that tmpfs: each controller of a comounted hierarchy (cpu -> cpu,cpuacct). */
  links: ReadonlyArray<readonly [string, string]>;
}

/** The controllers this driver writes to. */
const wanted = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'hugetlb'] as const;
const v1Subsystems = new Set([
  'cpuset', 'cpu', 'cpuacct', 'blkio', 'io', 'memory', 'devices', 'freezer', 'net_cls', 'perf_event',
  'net_prio', 'hugetlb', 'pids', 'rdma', 'misc', 'debug',
]);

/** Parses /proc/self/mountinfo into cgroup hierarchies; bind mounts of one hierarchy count once. */
export function parseMountinfo(text: string): MountLayout {
  const layout: MountLayout = { v1: [] };
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const device = pre[2]!;
    if (seen.has(device)) continue;
    seen.add(device);
    // mountinfo escapes space, tab, newline and backslash as octal.
    const mount = pre[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (fstype === 'cgroup2') {
      layout.unified ??= mount;
      continue;
    }
    const controllers = superOpts.split(',').filter((o) => v1Subsystems.has(o) || o.startsWith('name='));
    if (controllers.length > 0) layout.v1.push({ mount, controllers });
  }
  return layout;
}

/**
 * runc's names: the basename of each v1 mount point (the first of two alike),
 * and a link for each controller of a comma-separated name that is no name
 * itself; on pure v2 the cgroup2 dir is /sys/fs/cgroup.
 */
function containerView(v1Mounts: readonly string[], unified: string | undefined): CgroupView {
  if (v1Mounts.length === 0) return { names: unified === undefined ? [] : ['.'], links: [] };
  const names: (string | undefined)[] = [];
  for (const name of v1Mounts.map((m) => basename(m))) names.push(name !== '' && !names.includes(name) ? name : undefined);
  const links = new Map<string, string>();
  for (const name of names) {
    for (const c of name?.includes(',') ? name.split(',') : []) if (c !== '' && !names.includes(c) && !links.has(c)) links.set(c, name!);
  }
  if (unified !== undefined) names.push(undefined);
  return { names, links: [...links].map(([link, target]) => [target, link] as const) };
}

/** CRI cpu shares → cgroup v2 cpu.weight, the formula kubelet and runc use. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/**
 * A cgroupfs path relative to every hierarchy root: leading "/" optional,
 * empty and "." parts dropped; "..", NUL and systemd slice names rejected.
 */
export function normalizeCgroupPath(path: string): string {
  if (typeof path !== 'string') throw invalidArgument('cgroup path must be a string');
  if (path.includes('\0')) throw invalidArgument('cgroup path contains a NUL byte');
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw invalidArgument(`cgroup path ${JSON.stringify(path)} must not contain ".."`);
  if (parts.some((p) => /\.slice(:|$)/.test(p))) {
    throw invalidArgument(
      `cgroup path ${JSON.stringify(path)} is systemd slice syntax; peapod uses the cgroupfs driver ` +
        '(set kubelet cgroupDriver: cgroupfs, cgroup parents like /kubepods/burstable)',
    );
  }
  if (parts.length === 0) throw invalidArgument('cgroup path must name a cgroup below the root');
  return parts.join('/');
}

export class Cgroups {
  /** Every hierarchy a process joins: the v1 mounts (incl. named ones) and the cgroup2 mount. */
  readonly mounts: readonly string[];
  /** A container's /sys/fs/cgroup, from this layout: worked out once, not per create. */
  readonly view: CgroupView;

  constructor(
    readonly mode: CgroupMode,
    /** Where each controller this driver uses lives. */
    readonly controllers: ReadonlyMap<string, ControllerLocation>,
    v1Mounts: readonly string[],
    readonly unified: string | undefined,
    /** Where device access is confined: the v1 devices hierarchy, or (version 2) a BPF program on the cgroup2 dir; undefined: nowhere. */
    readonly devices: ControllerLocation | undefined,
  ) {
    this.mounts = unified === undefined ? [...v1Mounts] : [...v1Mounts, unified];
    this.view = containerView(v1Mounts, unified);
  }

  static detect(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): Cgroups {
    const layout = parseMountinfo(mountinfo);
    const inV1 = new Map<string, string>();
    for (const h of layout.v1) for (const c of h.controllers) inV1.set(c, h.mount);
    const hasV1 = layout.v1.some((h) => h.controllers.some((c) => !c.startsWith('name=')));
    if (!hasV1 && layout.unified === undefined) throw failedPrecondition('no cgroup hierarchy is mounted');
    // Only the controllers this driver writes to decide: a v1 hierarchy of another one (a stray
    // net_cls mount) does not make a v2 host hybrid, which would leave it no controller at all.
    const mode: CgroupMode = layout.unified === undefined ? 'v1' : wanted.some((c) => inV1.has(c)) ? 'hybrid' : 'v2';
    const controllers = new Map<string, ControllerLocation>();
    if (mode === 'v2') {
      const offered = readOr(join(layout.unified!, 'cgroup.controllers'), '').split(/\s+/);
      for (const c of wanted) if (offered.includes(c)) controllers.set(c, { mount: layout.unified!, version: 2 });
    } else {
      // On hybrid hosts the cgroup2 mount may offer leftovers (e.g. hugetlb), but enabling any of them
      // would impose v2's no-processes-in-inner-cgroups rule there; like runc, we use v1 only.
      for (const c of wanted) if (inV1.has(c)) controllers.set(c, { mount: inV1.get(c)!, version: 1 });
    }
    // A named-only v1 hierarchy next to pure v2 is not ours to populate.
    const v1Mounts = mode === 'v2' ? [] : layout.v1.map((h) => h.mount);
    // v1 devices where its hierarchy is joined; else a BPF filter, which works on any cgroup2 dir (hybrid too).
    const devicesV1 = inV1.get('devices');
    const devices: ControllerLocation | undefined =
      devicesV1 !== undefined && mode !== 'v2' ? { mount: devicesV1, version: 1 }
      : layout.unified !== undefined ? { mount: layout.unified, version: 2 }
      : undefined;
    return new Cgroups(mode, controllers, v1Mounts, layout.unified, devices);
  }

  /**
   * mkdir -p in every hierarchy, prepares cpuset / v2 controllers, applies res
   * and, in a v1 devices hierarchy, the device rules (a BPF filter is the
   * monitor's to attach). Rolls back new dirs on failure.
   */
  create(path: string, res?: CgroupResources, devices?: DeviceAccess): Cgroup {
    const rel = normalizeCgroupPath(path);
    if (res) validate(res, this.mode);
    const parts = rel.split('/');
    const created: string[] = [];
    try {
      // Every container's cgroup is new and its pod's exists: one mkdir per
      // hierarchy in the usual case, ancestors made only on ENOENT.
      let cpusetFrom = parts.length + 1;
      const cpusetMount = this.controllers.get('cpuset')?.version === 1 ? this.controllers.get('cpuset')!.mount : undefined;
      for (const mount of this.mounts) {
        const first = mkdirs(mount, parts, created);
        if (mount === cpusetMount) cpusetFrom = first;
      }
      this.prepare(parts, cpusetFrom);
      const cg = new CgroupHandle(this, rel);
      if (devices && this.devices?.version === 1) writeDeviceRules(join(this.devices.mount, rel), devices);
      if (res) cg.apply(res);
      return cg;
    } catch (err) {
      for (const dir of created.reverse()) try { rmdirSync(dir); } catch { /* best effort */ }
      throw err instanceof PeapodError ? err : fsError(err, `create cgroup ${rel}`);
    }
  }

  /**
   * Makes `path` if missing (as create) and has its v1 cpuset hand its cpus
   * and mems down to every new child at mkdir (cgroup.clone_children): for a
   * parent peapod owns, made by an earlier version without it.
   */
  ensureParent(path: string): void {
    const cg = this.create(path);
    const cpuset = this.dir('cpuset', cg.path);
    if (cpuset?.version === 1) write(join(cpuset.dir, 'cgroup.clone_children'), '1');
  }

  open(path: string): Cgroup {
    const rel = normalizeCgroupPath(path);
    if (!this.mounts.some((m) => existsSync(join(m, rel)))) throw notFound(`cgroup ${rel} does not exist`);
    return new CgroupHandle(this, rel);
  }

  /** Where a process joins the cgroup at `path` (its cgroup.procs dirs), whether or not it exists yet. */
  procsDirs(path: string): string[] {
    const rel = normalizeCgroupPath(path);
    return this.mounts.map((m) => join(m, rel));
  }

  /** The cgroup2 dir that gets the BPF device filter of the cgroup at `path`, when device access is confined that way. */
  deviceFilterDir(path: string): string | undefined {
    return this.devices?.version === 2 ? join(this.devices.mount, normalizeCgroupPath(path)) : undefined;
  }

  dir(controller: string, rel: string): { dir: string; version: 1 | 2 } | undefined {
    const loc = this.controllers.get(controller);
    return loc && { dir: join(loc.mount, rel), version: loc.version };
  }

  /** `cpusetFrom`: the first level of `parts` made just now in the v1 cpuset hierarchy. */
  private prepare(parts: string[], cpusetFrom: number): void {
    const cpuset = this.controllers.get('cpuset');
    if (cpuset?.version === 1 && cpusetFrom <= parts.length) {
      // A v1 cpuset starts empty and refuses tasks until cpus and mems are set: inherit the parent's.
      // The levels that existed were filled when made, unless someone else made them empty: then all.
      const above = join(cpuset.mount, ...parts.slice(0, cpusetFrom - 1));
      const filled = ['cpuset.cpus', 'cpuset.mems'].every((f) => read(join(above, f)) !== '');
      // A parent with cgroup.clone_children (each level filled here gets it) gave the new levels its values at mkdir.
      if (!filled || read(join(above, 'cgroup.clone_children')) !== '1') {
        for (let i = filled ? cpusetFrom : 1; i <= parts.length; i++) {
          const dir = join(cpuset.mount, ...parts.slice(0, i));
          for (const f of ['cpuset.cpus', 'cpuset.mems']) {
            if (read(join(dir, f)) === '') write(join(dir, f), read(join(dir, '..', f)));
          }
          if (i >= cpusetFrom) write(join(dir, 'cgroup.clone_children'), '1');
        }
      }
    }
    if (this.unified !== undefined) {
      // v2 controllers reach a cgroup only if every ancestor enables them in cgroup.subtree_control.
      const v2 = [...this.controllers].filter(([, l]) => l.version === 2).map(([c]) => c);
      for (let i = 0; i < parts.length && v2.length > 0; i++) {
        const dir = join(this.unified, ...parts.slice(0, i));
        const on = read(join(dir, 'cgroup.subtree_control')).split(' ');
        for (const c of v2) {
          if (on.includes(c)) continue;
          // Best effort (e.g. EBUSY if the parent holds processes); a missing limit file reports it later.
          try { write(join(dir, 'cgroup.subtree_control'), `+${c}`); } catch { /* see above */ }
        }
      }
    }
  }
}

class CgroupHandle implements Cgroup {
  constructor(
    private readonly cg: Cgroups,
    readonly path: string,
  ) {}

  procsDirs(): string[] {
    return this.cg.procsDirs(this.path);
  }

  update(res: CgroupResources): void {
    validate(res, this.cg.mode);
    if (!this.procsDirs().some((d) => existsSync(d))) throw notFound(`cgroup ${this.path} does not exist`);
    this.apply(res);
  }

  /** Writes already validated limits wherever each controller lives. */
  apply(r: CgroupResources): void {
    const cpu = this.cg.dir('cpu', this.path);
    const wantsCpu = !!r.cpuShares || r.cpuQuota !== undefined || !!r.cpuPeriod;
    if (wantsCpu && !cpu) throw failedPrecondition('the cpu cgroup controller is not available on this host');
    if (cpu?.version === 2) {
      if (r.cpuShares) write(join(cpu.dir, 'cpu.weight'), String(sharesToWeight(r.cpuShares)));
      if (r.cpuQuota !== undefined || r.cpuPeriod) {
        // cpu.max holds both; keep whichever half was not given.
        const [q, p] = read(join(cpu.dir, 'cpu.max')).split(' ');
        const quota = r.cpuQuota === undefined ? q : r.cpuQuota > 0 ? String(r.cpuQuota) : 'max';
        write(join(cpu.dir, 'cpu.max'), `${quota} ${r.cpuPeriod || p}`);
      }
    } else if (cpu) {
      if (r.cpuShares) write(join(cpu.dir, 'cpu.shares'), String(r.cpuShares));
      const quota = r.cpuQuota === undefined ? undefined : r.cpuQuota > 0 ? String(r.cpuQuota) : '-1';
      const period = r.cpuPeriod ? String(r.cpuPeriod) : undefined;
      const steps: [string, string | undefined][] = [['cpu.cfs_period_us', period], ['cpu.cfs_quota_us', quota]];
      try {
        for (const [f, v] of steps) if (v !== undefined) write(join(cpu.dir, f), v);
      } catch (err) {
        // quota/period must stay within the kernel's bounds at each step: retry the other order (as runc does).
        if (quota === undefined || period === undefined) throw err;
        for (const [f, v] of steps.reverse()) write(join(cpu.dir, f), v!);
      }
    }

    const cpuset = this.cg.dir('cpuset', this.path);
    if ((r.cpusetCpus || r.cpusetMems) && !cpuset) throw failedPrecondition('the cpuset cgroup controller is not available on this host');
    if (cpuset && r.cpusetCpus) write(join(cpuset.dir, 'cpuset.cpus'), r.cpusetCpus);
    if (cpuset && r.cpusetMems) write(join(cpuset.dir, 'cpuset.mems'), r.cpusetMems);

    if (r.memoryLimitBytes !== undefined) this.applyMemory(r.memoryLimitBytes, r.memorySwapLimitBytes);

    const pids = this.cg.dir('pids', this.path);
    if (r.pidsLimit !== undefined) {
      if (!pids) throw failedPrecondition('the pids cgroup controller is not available on this host');
      write(join(pids.dir, 'pids.max'), r.pidsLimit > 0 ? String(r.pidsLimit) : 'max');
    }

    // Without a hugetlb controller the limits cannot be enforced anywhere: skipped, like absent page sizes.
    const hugetlb = this.cg.dir('hugetlb', this.path);
    for (const h of (hugetlb && r.hugepageLimits) || []) {
      const size = hugepageSize(h.pageSize);
      if (!existsSync(`/sys/kernel/mm/hugepages/hugepages-${size.kB}kB`)) continue;
      const file = hugetlb!.version === 2 ? `hugetlb.${size.name}.max` : `hugetlb.${size.name}.limit_in_bytes`;
      write(join(hugetlb!.dir, file), String(h.limit));
    }

    for (const [key, value] of Object.entries(r.unified ?? {})) write(join(this.cg.unified!, this.path, key), value);
  }

  private applyMemory(memory: number, swapIn: number | undefined): void {
    const mem = this.cg.dir('memory', this.path);
    if (!mem) throw failedPrecondition('the memory cgroup controller is not available on this host');
    const limit = memory > 0 ? memory : -1;
    // Unset swap means "no swap" when memory is limited (kubelet's NoSwap), else unlimited.
    const swap = !swapIn ? limit : swapIn > 0 ? swapIn : -1;
    if (mem.version === 2) {
      write(join(mem.dir, 'memory.max'), limit > 0 ? String(limit) : 'max');
      const swapFile = join(mem.dir, 'memory.swap.max');
      if (existsSync(swapFile)) write(swapFile, swap < 0 ? 'max' : String(swap - limit));
      return;
    }
    const memFile = join(mem.dir, 'memory.limit_in_bytes');
    const writeLimit = () => {
      try {
        write(memFile, String(limit));
      } catch (err) {
        if (!(err instanceof PeapodError && errno(err) === 'EBUSY')) throw err;
        const usage = read(join(mem.dir, 'memory.usage_in_bytes'));
        throw failedPrecondition(
          `cannot lower the memory limit of cgroup ${this.path} to ${limit} bytes: the kernel could not reclaim its usage of ${usage} bytes`,
        );
      }
    };
    const swFile = join(mem.dir, 'memory.memsw.limit_in_bytes');
    if (!existsSync(swFile)) return writeLimit(); // no swap accounting (swapaccount=0): nothing to pair
    // The kernel keeps memory <= memsw at every step: raise memsw first when growing, last when shrinking.
    const grow = (limit < 0 ? Infinity : limit) > Number(read(swFile));
    if (grow) write(swFile, String(swap));
    writeLimit();
    if (!grow) write(swFile, String(swap));
  }

  stats(): CgroupStats {
    if (!this.procsDirs().some((d) => existsSync(d))) throw notFound(`cgroup ${this.path} does not exist`);
    const timestampNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
    let cpuUsageNs = 0n;
    const cpuacct = this.cg.dir('cpuacct', this.path);
    if (cpuacct) cpuUsageNs = BigInt(readOr(join(cpuacct.dir, 'cpuacct.usage'), '0'));
    else if (this.cg.unified !== undefined) {
      // cpu.stat's usage_usec is core v2 accounting, present even without the cpu controller.
      cpuUsageNs = BigInt(keyed(readOr(join(this.cg.unified, this.path, 'cpu.stat'), ''), 'usage_usec')) * 1000n;
    }
    let memoryUsageBytes = 0;
    let memoryLimitBytes: number | undefined;
    let memoryStat = '';
    const mem = this.cg.dir('memory', this.path);
    const v2 = mem?.version === 2;
    if (mem) {
      memoryUsageBytes = Number(readOr(join(mem.dir, v2 ? 'memory.current' : 'memory.usage_in_bytes'), '0'));
      const limit = Number(readOr(join(mem.dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'max'));
      // v2 says "max"; v1 a page-rounded near-2^63: containerd's bound for "unlimited" (isMemoryUnlimited).
      if (limit <= 2 ** 62) memoryLimitBytes = limit;
      memoryStat = readOr(join(mem.dir, 'memory.stat'), '');
    }
    // v1's total_ figures cover the subtree (the pod's containers), as v2's do by themselves.
    const stat = (v1Key: string, v2Key: string) => keyed(memoryStat, v2 ? v2Key : v1Key);
    const pidsDir = this.cg.dir('pids', this.path);
    const pidsCurrent = pidsDir && readOr(join(pidsDir.dir, 'pids.current'), '');
    return {
      cpuUsageNs,
      memoryUsageBytes,
      // cAdvisor's working set: usage minus the easily reclaimed inactive page cache.
      memoryWorkingSetBytes: Math.max(0, memoryUsageBytes - stat('total_inactive_file', 'inactive_file')),
      memoryLimitBytes,
      memoryRssBytes: stat('total_rss', 'anon'),
      pageFaults: stat('total_pgfault', 'pgfault'),
      majorPageFaults: stat('total_pgmajfault', 'pgmajfault'),
      pids: pidsCurrent ? Number(pidsCurrent) : this.pids().length,
      oomKills: this.oomKills(),
      psi: this.pressure(),
      timestampNs,
    };
  }

  /**
   * cpu, memory and io pressure from the cgroup2 dir: core files of cgroup2,
   * there without the controllers too (a hybrid host's unified dir has them).
   * None without PSI (`psi=0` at boot: the files fail to read).
   */
  private pressure(): CgroupStats['psi'] {
    if (this.cg.unified === undefined) return undefined;
    const dir = join(this.cg.unified, this.path);
    const [cpu, memory, io] = ['cpu', 'memory', 'io'].map((r) => parsePressure(readOr(join(dir, `${r}.pressure`), '')));
    return cpu || memory || io ? { cpu, memory, io } : undefined;
  }

  oomKilled(): boolean {
    return this.oomKills() > 0;
  }

  private oomKills(): number {
    const mem = this.cg.dir('memory', this.path);
    if (!mem) return 0;
    // v2 memory.events is hierarchical; v1 counts each cgroup's own kills, so sum the subtree.
    if (mem.version === 2) return keyed(readOr(join(mem.dir, 'memory.events'), ''), 'oom_kill');
    return subtree(mem.dir).reduce((n, d) => n + keyed(readOr(join(d, 'memory.oom_control'), ''), 'oom_kill'), 0);
  }

  pids(): number[] {
    const all = new Set<number>();
    for (const root of this.procsDirs()) {
      for (const dir of subtree(root)) {
        for (const line of readOr(join(dir, 'cgroup.procs'), '').split('\n')) if (line) all.add(Number(line));
      }
    }
    return [...all].sort((a, b) => a - b);
  }

  async killAll(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // cgroup.kill (v2, Linux 5.14+) kills the whole subtree atomically, forks included.
    const killFile = this.cg.unified !== undefined ? join(this.cg.unified, this.path, 'cgroup.kill') : undefined;
    if (killFile && existsSync(killFile)) {
      try { write(killFile, '1'); } catch { /* fall back to signalling below */ }
    }
    for (;;) {
      const pids = this.pids().filter((p) => p !== process.pid); // never the runtime itself
      if (pids.length === 0) return;
      if (Date.now() >= deadline) throw deadlineExceeded(`cgroup ${this.path} still has processes ${pids.join(',')} after ${timeoutMs} ms`);
      // Without cgroup.kill a process may fork between reading and signalling: repeat until empty.
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      await sleep(10);
    }
  }

  async remove(): Promise<void> {
    for (const root of this.procsDirs()) {
      for (const dir of subtree(root).reverse()) await rmdirRetry(dir, this.path);
    }
  }
}

/** Validates before anything is written, so a bad request changes nothing. */
function validate(r: CgroupResources, mode: CgroupMode): void {
  const int = (name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isSafeInteger(v) || v < min || v > max) throw invalidArgument(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  };
  const unlimitedOr = (name: string, v: number | undefined, min: number, max?: number) => {
    if (v !== undefined && v !== 0 && v !== -1) int(name, v, min, max);
  };
  if (r.cpuShares !== undefined && r.cpuShares !== 0) int('cpuShares', r.cpuShares, 2, 262144);
  // The kernel bounds both quota and period below by 1 ms and the period above by 1 s.
  unlimitedOr('cpuQuota', r.cpuQuota, 1000);
  if (r.cpuPeriod !== undefined && r.cpuPeriod !== 0) int('cpuPeriod', r.cpuPeriod, 1000, 1_000_000);
  for (const [name, v] of [['cpusetCpus', r.cpusetCpus], ['cpusetMems', r.cpusetMems]] as const) {
    if (v && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw invalidArgument(`${name} must be a list like "0-3,5", got ${JSON.stringify(v)}`);
  }
  unlimitedOr('memoryLimitBytes', r.memoryLimitBytes, 1);
  unlimitedOr('memorySwapLimitBytes', r.memorySwapLimitBytes, 1);
  if (r.memorySwapLimitBytes !== undefined && r.memoryLimitBytes === undefined) {
    throw invalidArgument('memorySwapLimitBytes needs memoryLimitBytes in the same request');
  }
  if ((r.memorySwapLimitBytes ?? 0) > 0 && !((r.memoryLimitBytes ?? 0) > 0 && r.memorySwapLimitBytes! >= r.memoryLimitBytes!)) {
    throw invalidArgument('memorySwapLimitBytes (memory+swap) must be at least memoryLimitBytes, which must be limited');
  }
  unlimitedOr('pidsLimit', r.pidsLimit, 1);
  for (const h of r.hugepageLimits ?? []) {
    hugepageSize(h.pageSize);
    int(`hugepage limit for ${h.pageSize}`, h.limit, 0);
  }
  if (r.unified && Object.keys(r.unified).length > 0) {
    if (mode !== 'v2') throw invalidArgument(`unified cgroup resources need a pure cgroup v2 host; this one is ${mode}`);
    for (const key of Object.keys(r.unified)) {
      if (!/^[a-z0-9_]+\.[a-z0-9_.]+$/i.test(key) || /^cgroup\.(procs|threads|kill|subtree_control)$/.test(key)) {
        throw invalidArgument(`unified key ${JSON.stringify(key)} is not a settable cgroup v2 file`);
      }
    }
  }
}

/**
 * A v1 devices cgroup as runc sets one: "a" allowed, or "a" denied and then
 * each rule allowed. A new cgroup has its parent's list: it can be narrowed,
 * and widened only as far as the parent allows (EPERM beyond).
 */
function writeDeviceRules(dir: string, access: DeviceAccess): void {
  if (access.allowAll) return write(join(dir, 'devices.allow'), 'a');
  write(join(dir, 'devices.deny'), 'a');
  for (const r of access.allow) write(join(dir, 'devices.allow'), formatDeviceRule(r));
}

/** "2MB" → the kernel's own name for the size and its kB count (hugepages-2048kB). */
function hugepageSize(pageSize: string): { name: string; kB: number } {
  const m = /^(\d+)(KB|MB|GB)$/i.exec(pageSize ?? '');
  if (!m) throw invalidArgument(`hugepage size ${JSON.stringify(pageSize)} must look like "2MB" or "1GB"`);
  const kB = Number(m[1]) * { KB: 1, MB: 1024, GB: 1024 * 1024 }[m[2]!.toUpperCase() as 'KB' | 'MB' | 'GB'];
  if (!kB) throw invalidArgument(`hugepage size ${pageSize} is zero`);
  const name = kB % 1048576 === 0 ? `${kB / 1048576}GB` : kB % 1024 === 0 ? `${kB / 1024}MB` : `${kB}KB`;
  return { name, kB };
}

// ---- file helpers ------------------------------------------------------------

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw fsError(err, `read ${path}`);
  }
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback;
  }
}

function write(path: string, value: string): void {
  try {
    // r+: cgroupfs files exist or the controller is absent; never create.
    writeFileSync(path, value, { flag: 'r+' });
  } catch (err) {
    throw fsError(err, `write ${JSON.stringify(value)} to ${path}`);
  }
}

/** A `*.pressure` file (`some avg10=0.12 avg60=… avg300=… total=1234`, then `full …`); undefined if it has no `some` line. */
export function parsePressure(text: string): Pressure | undefined {
  const line = (kind: string): PressureLine | undefined => {
    const m = new RegExp(`^${kind} avg10=([\\d.]+) avg60=([\\d.]+) avg300=([\\d.]+) total=(\\d+)$`, 'm').exec(text);
    return m ? { avg10: Number(m[1]), avg60: Number(m[2]), avg300: Number(m[3]), totalUs: BigInt(m[4]!) } : undefined;
  };
  const some = line('some');
  if (!some) return undefined;
  const full = line('full');
  return full ? { some, full } : { some };
}

/** "key value" lines (cpu.stat, memory.stat, memory.events, memory.oom_control). */
function keyed(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * mkdir -p of `parts` under `mount`, the deepest first: appends what it made
 * to `created` (parents first) and returns the first level it made
 * (parts.length + 1 when all existed).
 */
function mkdirs(mount: string, parts: string[], created: string[]): number {
  const dir = (level: number) => join(mount, ...parts.slice(0, level));
  // Up until a mkdir succeeds or finds its dir there; ENOENT means the parent is missing too.
  let level = parts.length;
  let first: number;
  for (;;) {
    try {
      mkdirSync(dir(level));
      created.push(dir(level));
      first = level;
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        first = level + 1;
        break;
      }
      if (code !== 'ENOENT' || level === 1) throw err;
      level--;
    }
  }
  for (let i = level + 1; i <= parts.length; i++) {
    mkdirSync(dir(i));
    created.push(dir(i));
  }
  return first;
}

/** dir and all cgroup directories below it, parents first; [] when dir is gone. */
function subtree(dir: string): string[] {
  let entries;
  try {
    // A cgroup directory's link count is 2 plus its subdirectories (kernfs):
    // a leaf needs no readdir, which lists every control file (dozens in v1).
    if (statSync(dir).nlink === 2) return [dir];
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return [dir, ...entries.filter((e) => e.isDirectory()).flatMap((e) => subtree(join(dir, e.name)))];
}

async function rmdirRetry(dir: string, rel: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      const procs = readOr(join(dir, 'cgroup.procs'), '');
      if (code === 'EBUSY' && procs !== '') {
        throw failedPrecondition(`cgroup ${rel} still has processes (${procs.split('\n').join(',')}) in ${dir}; kill them first`);
      }
      // Just-exited tasks can keep a cgroup busy for a moment.
      if (code !== 'EBUSY' || attempt >= 50) throw fsError(err, `rmdir ${dir}`);
      await sleep(20);
    }
  }
}

function fsError(err: unknown, what: string): PeapodError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const kinds: Record<string, ErrorKind> = { EINVAL: 'InvalidArgument', ERANGE: 'InvalidArgument', EBUSY: 'FailedPrecondition', ENOENT: 'FailedPrecondition' };
  const detail = code === 'ENOENT' ? ' (cgroup or controller missing)' : '';
  return new PeapodError(kinds[code ?? ''] ?? 'Internal', `cgroups: ${what}: ${code ?? String(err)}${detail}`, { cause: err });
}

function errno(err: PeapodError): string | undefined {
  return (err.cause as NodeJS.ErrnoException | undefined)?.code;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
