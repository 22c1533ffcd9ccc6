import type { ServerUnaryCall } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cdiRequests, type CdiDevices } from '../container/cdi.js';
import type { ContainerManager } from '../container/manager.js';
import type { Container, ContainerSpec, ContainerState, MountSpec, Propagation, ResourceSpec, SecuritySpec, SeccompMode } from '../container/types.js';
import { readSeccompProfile } from '../container/seccomp-profile.js';
import { expandDeviceDirs } from '../container/spec.js';
import { failedPrecondition, invalidArgument, unavailable } from '../errors.js';
import type { CgroupStats, Pressure, PressureLine } from '../linux/cgroups.js';
import { interfacesOf, type InterfaceCounters } from '../linux/netdev.js';
import { diskUsage, PeriodicUsage } from '../util/disk-usage.js';
import { nowNs } from '../util/time.js';
import type { Container as ContainerOut } from './generated/runtime/v1/Container.js';
import type { ContainerConfig__Output } from './generated/runtime/v1/ContainerConfig.js';
import type { ContainerFilter__Output } from './generated/runtime/v1/ContainerFilter.js';
import type { ContainerState as CriContainerState } from './generated/runtime/v1/ContainerState.js';
import type { ContainerStats } from './generated/runtime/v1/ContainerStats.js';
import type { ContainerStatsFilter__Output } from './generated/runtime/v1/ContainerStatsFilter.js';
import type { ContainerStatus } from './generated/runtime/v1/ContainerStatus.js';
import type { MountPropagation } from './generated/runtime/v1/MountPropagation.js';
import type { PodSandboxStats } from './generated/runtime/v1/PodSandboxStats.js';
import type { PodSandboxStatsFilter__Output } from './generated/runtime/v1/PodSandboxStatsFilter.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { Sandbox } from '../sandbox/types.js';
import type { LinuxContainerResources__Output } from './generated/runtime/v1/LinuxContainerResources.js';
import type { LinuxContainerSecurityContext__Output } from './generated/runtime/v1/LinuxContainerSecurityContext.js';
import { type Implementation, untilCancelled, writeEach } from './handlers.js';

const propagation: Record<string, Propagation> = {
  PROPAGATION_PRIVATE: 'PRIVATE',
  PROPAGATION_HOST_TO_CONTAINER: 'HOST_TO_CONTAINER',
  PROPAGATION_BIDIRECTIONAL: 'BIDIRECTIONAL',
};
const propagationName = Object.fromEntries(Object.entries(propagation).map(([k, v]) => [v, k]));

const stateName: Record<ContainerState, CriContainerState> = {
  CREATED: 'CONTAINER_CREATED',
  RUNNING: 'CONTAINER_RUNNING',
  EXITED: 'CONTAINER_EXITED',
  UNKNOWN: 'CONTAINER_UNKNOWN',
};
const stateOfName = Object.fromEntries(Object.entries(stateName).map(([k, v]) => [v, k as ContainerState]));

/** How old a writable layer's figures may grow before a new walk: containerd's snapshot usage period. */
const LAYER_USAGE_PERIOD_MS = 10_000;

function int(value: string | undefined, field: string, min = -Infinity, max = Infinity): number {
  const n = Number(value ?? 0);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalidArgument(`${field} ${value} is out of range`);
  return n;
}

const CPUSET = /^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/;

function cpuset(value: string | undefined, field: string): string {
  if (value && (value.length > 1024 || !CPUSET.test(value))) throw invalidArgument(`${field} "${value.slice(0, 80)}" is not a CPU/node list like 0-3,5`);
  return value ?? '';
}

/** CRI resources → peapod's, checked; `at` names the field in errors. */
export function toResources(r: LinuxContainerResources__Output | null | undefined, at = 'resources'): ResourceSpec {
  return {
    // The kernel's own bounds: period 1 ms..1 s, shares at most 262144, oom_score_adj -1000..1000.
    cpuPeriod: int(r?.cpuPeriod, `${at}.cpu_period`, 0, 1_000_000),
    cpuQuota: int(r?.cpuQuota, `${at}.cpu_quota`, -1),
    cpuShares: int(r?.cpuShares, `${at}.cpu_shares`, 0, 262_144),
    memoryLimitBytes: int(r?.memoryLimitInBytes, `${at}.memory_limit_in_bytes`, 0),
    cpusetCpus: cpuset(r?.cpusetCpus, `${at}.cpuset_cpus`),
    cpusetMems: cpuset(r?.cpusetMems, `${at}.cpuset_mems`),
    oomScoreAdj: int(r?.oomScoreAdj, `${at}.oom_score_adj`, -1000, 1000),
    memorySwapLimitBytes: int(r?.memorySwapLimitInBytes, `${at}.memory_swap_limit_in_bytes`, -1),
    hugepageLimits: (r?.hugepageLimits ?? []).map((h, i) => ({
      pageSize: h.pageSize,
      limit: int(h.limit, `${at}.hugepage_limits[${i}].limit`, 0),
    })),
    unified: { ...(r?.unified ?? {}) },
  };
}

/** The CRI seccomp fields (the profile and the deprecated path) → what the launcher applies. */
function seccompMode(sc: LinuxContainerSecurityContext__Output | null | undefined): SeccompMode {
  if (sc?.privileged) return 'unconfined'; // privileged ignores the profile
  const profile = sc?.seccomp;
  if (profile && profile.profileType) {
    if (profile.profileType === 'RuntimeDefault') return 'default';
    if (profile.profileType === 'Unconfined') return 'unconfined';
    if (profile.profileType === 'Localhost') return readSeccompProfile(profile.localhostRef);
    throw invalidArgument(`seccomp profile type ${profile.profileType} is not known`);
  }
  const path = sc?.seccompProfilePath ?? '';
  if (path === '' || path === 'unconfined') return 'unconfined';
  if (path === 'runtime/default' || path === 'docker/default') return 'default';
  if (path.startsWith('localhost/')) return readSeccompProfile(path.slice('localhost/'.length));
  throw invalidArgument(`seccomp_profile_path "${path.slice(0, 256)}" must be runtime/default, docker/default, unconfined or localhost/<path>`);
}

function security(sc: LinuxContainerSecurityContext__Output | null | undefined): SecuritySpec {
  const groups = (sc?.supplementalGroups ?? []).map((g) => int(g, 'supplemental_groups', 0));
  const ns = sc?.namespaceOptions;
  if (sc?.apparmor?.profileType === 'Localhost' || sc?.apparmorProfile.startsWith('localhost/')) {
    throw invalidArgument('AppArmor profiles are not supported: this host has no AppArmor');
  }
  return {
    privileged: sc?.privileged ?? false,
    capAdd: sc?.capabilities?.addCapabilities ?? [],
    capDrop: sc?.capabilities?.dropCapabilities ?? [],
    runAsUser: sc?.runAsUser ? int(sc.runAsUser.value, 'run_as_user', 0) : null,
    runAsUsername: sc?.runAsUsername ?? '',
    runAsGroup: sc?.runAsGroup ? int(sc.runAsGroup.value, 'run_as_group', 0) : null,
    supplementalGroups: groups,
    readonlyRootfs: sc?.readonlyRootfs ?? false,
    noNewPrivs: sc?.noNewPrivs ?? false,
    maskedPaths: sc?.maskedPaths.length ? sc.maskedPaths : null,
    readonlyPaths: sc?.readonlyPaths.length ? sc.readonlyPaths : null,
    seccomp: seccompMode(sc),
    pidMode: (ns?.pid as SecuritySpec['pidMode']) ?? 'POD',
  };
}

function stopSignal(s: unknown): string {
  if (s === undefined || s === null || s === '' || s === 'SIGNAL_RUNTIME_DEFAULT') return '';
  if (typeof s !== 'string' || !/^SIGNAL_SIG[A-Z0-9+-]+$/.test(s)) throw invalidArgument(`stop_signal ${String(s).slice(0, 40)} is not a known signal`);
  return s.replace(/^SIGNAL_/, '');
}

export function toContainerSpec(config: ContainerConfig__Output | null): ContainerSpec {
  if (!config) throw invalidArgument('config is required');
  if (!config.metadata) throw invalidArgument('config.metadata is required');
  if (!config.image?.image) throw invalidArgument('config.image.image is required');
  const mounts: MountSpec[] = config.mounts.map((m) => {
    if (m.image) throw invalidArgument('image volume mounts are not supported by peapod');
    if (m.propagation && !propagation[m.propagation]) throw invalidArgument(`mount ${m.containerPath} propagation ${m.propagation} is not valid`);
    // Refused, as containerd refuses it for a runtime without them (RuntimeHandlerFeatures say so), never bound merely read-only.
    if (m.recursiveReadOnly) {
      throw invalidArgument(`mount ${m.containerPath} (host path ${m.hostPath}) asks for recursive_read_only: peapod has no recursive read-only mounts`);
    }
    return {
      containerPath: m.containerPath,
      hostPath: m.hostPath,
      readonly: m.readonly,
      propagation: propagation[m.propagation] ?? 'PRIVATE',
    };
  });
  return {
    name: config.metadata.name,
    attempt: config.metadata.attempt,
    image: config.image.image,
    userSpecifiedImage: config.image.userSpecifiedImage,
    command: config.command,
    args: config.args,
    workingDir: config.workingDir,
    env: config.envs.map((e) => ({ key: e.key, value: Buffer.from(e.value).toString('utf8') })),
    mounts,
    // As containerd: an empty container path is the host path; empty permissions are rwm; a directory is its device nodes.
    devices: expandDeviceDirs(
      config.devices.map((d) => ({ containerPath: d.containerPath || d.hostPath, hostPath: d.hostPath, permissions: d.permissions || 'rwm' })),
    ),
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    logPath: config.logPath,
    stdin: config.stdin,
    stdinOnce: config.stdinOnce,
    tty: config.tty,
    security: security(config.linux?.securityContext),
    resources: toResources(config.linux?.resources),
    stopSignal: stopSignal(config.stopSignal),
  };
}

function resourcesOut(r: ResourceSpec) {
  return {
    linux: {
      cpuPeriod: String(r.cpuPeriod),
      cpuQuota: String(r.cpuQuota),
      cpuShares: String(r.cpuShares),
      memoryLimitInBytes: String(r.memoryLimitBytes),
      oomScoreAdj: String(r.oomScoreAdj),
      cpusetCpus: r.cpusetCpus,
      cpusetMems: r.cpusetMems,
      memorySwapLimitInBytes: String(r.memorySwapLimitBytes),
      hugepageLimits: r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: String(h.limit) })),
      unified: r.unified,
    },
  };
}

/** The image as the client sent it (what containerd's ListContainers returns). */
const sentImage = (c: Container) => ({ image: c.spec.image, userSpecifiedImage: c.spec.userSpecifiedImage ?? '' });

/** The CRI ContainerStatus of a container as it is now (shared by ContainerStatus, PodSandboxStatus and container events). */
export function containerStatus(containers: Pick<ContainerManager, 'stateOf' | 'currentImage'>, c: Container): ContainerStatus {
  const metadata = { name: c.spec.name, attempt: c.spec.attempt };
  // As containerd's: the image's tag where it has one (the kubelet sends the id).
  const image = containers.currentImage(c);
  return {
    id: c.id,
    metadata,
    state: stateName[containers.stateOf(c)],
    createdAt: c.createdAt.toString(),
    startedAt: c.startedAt.toString(),
    finishedAt: (c.exit?.finishedAt ?? 0n).toString(),
    exitCode: c.exit?.exitCode ?? 0,
    image: { ...sentImage(c), image: image.name },
    imageRef: image.ref,
    imageId: c.imageId,
    reason: c.exit?.reason ?? '',
    message: c.exit?.message ?? '',
    labels: c.spec.labels,
    annotations: c.spec.annotations,
    mounts: c.spec.mounts.map((m) => ({
      containerPath: m.containerPath,
      hostPath: m.hostPath,
      readonly: m.readonly,
      propagation: propagationName[m.propagation] as MountPropagation,
    })),
    logPath: c.logPath,
    resources: resourcesOut(c.spec.resources),
    user: { linux: { uid: String(c.process.uid), gid: String(c.process.gid), supplementalGroups: c.process.groups.map(String) } },
  };
}

/** The links of a pod's own network namespace but lo; none on the host's network or once pause is gone. */
export function podInterfaces(sb: Sandbox): InterfaceCounters[] {
  const links = sb.namespaces.net && sb.pause ? interfacesOf(sb.pause) : undefined;
  return (links ?? []).filter((l) => l.name !== 'lo');
}

/**
 * The PID namespace a `pid: TARGET` container joins (kubectl debug --target):
 * its target's, which must be a running container of the same pod, as
 * containerd's validateTargetContainer checks (a missing one is NOT_FOUND).
 */
function pidTarget(containers: ContainerManager, sandboxId: string, targetId: string): { id: string; namespace: string } {
  if (!targetId) throw invalidArgument('namespace_options.target_id is required with pid TARGET');
  const target = containers.get(targetId);
  if (target.sandboxId !== sandboxId) throw invalidArgument(`target container ${target.id} is not in pod sandbox ${sandboxId}`);
  const state = containers.stateOf(target);
  if (state !== 'RUNNING' || !target.init) throw failedPrecondition(`target container ${target.id} is ${state}, not RUNNING`);
  return { id: target.id, namespace: `/proc/${target.init.pid}/ns/pid` };
}

export function containerHandlers(
  containers: ContainerManager,
  sandboxes: SandboxManager,
  recordDir: (id: string) => string,
  cdi: CdiDevices,
): Implementation {
  const metadata = (c: Container) => ({ name: c.spec.name, attempt: c.spec.attempt });

  /** What ListContainers, ListContainerStats and ListPodSandboxStats (and their Stream twins) cover. */
  const listed = (f: ContainerFilter__Output | null) =>
    containers.list({
      id: f?.id || undefined,
      state: f?.state ? stateOfName[f.state.state] : undefined,
      sandboxId: f?.podSandboxId || undefined,
      labelSelector: f?.labelSelector,
    });
  const running = (f: ContainerStatsFilter__Output | null) =>
    containers
      .list({ id: f?.id || undefined, sandboxId: f?.podSandboxId || undefined, labelSelector: f?.labelSelector })
      .filter((c) => containers.stateOf(c) === 'RUNNING');
  const readyPods = (f: PodSandboxStatsFilter__Output | null) => sandboxes.list({ id: f?.id || undefined, labelSelector: f?.labelSelector, state: 'READY' });
  const container = (c: Container): ContainerOut => ({
    id: c.id,
    podSandboxId: c.sandboxId,
    metadata: metadata(c),
    image: sentImage(c),
    imageRef: c.imageRef,
    imageId: c.imageId,
    state: stateName[containers.stateOf(c)],
    createdAt: c.createdAt.toString(),
    labels: c.spec.labels,
    annotations: c.spec.annotations,
  });

  const u64 = (v: number | bigint | string) => ({ value: v.toString() });

  /** The last CPU sample of each container and pod, for usage_nano_cores (gone with its object). */
  const cpuSamples = new WeakMap<Container | Sandbox, { usageNs: bigint; atNs: bigint }>();
  /**
   * As containerd's getUsageNanoCores: the rate since the previous sample,
   * whichever call took it; none for the first.
   */
  const cpuUsage = (ts: string, of: Container | Sandbox, cg: CgroupStats) => {
    const prev = cpuSamples.get(of);
    cpuSamples.set(of, { usageNs: cg.cpuUsageNs, atNs: cg.timestampNs });
    const rate =
      prev && cg.timestampNs > prev.atNs && cg.cpuUsageNs >= prev.usageNs
        ? ((cg.cpuUsageNs - prev.usageNs) * 1_000_000_000n) / (cg.timestampNs - prev.atNs)
        : undefined;
    return { timestamp: ts, usageCoreNanoSeconds: u64(cg.cpuUsageNs), usageNanoCores: rate === undefined ? null : u64(rate), psi: psi(cg.psi?.cpu) };
  };

  /** As containerd gives cgroup2 PSI: the kernel's microsecond totals in nanoseconds. */
  const psi = (p: Pressure | undefined) => {
    const line = (l: PressureLine) => ({ Total: (l.totalUs * 1000n).toString(), Avg10: l.avg10, Avg60: l.avg60, Avg300: l.avg300 });
    return p ? { Some: line(p.some), Full: p.full ? line(p.full) : null } : null;
  };
  /** I/O usage: only its pressure, as in the CRI. */
  const ioUsage = (ts: string, cg: CgroupStats | undefined) => (cg?.psi?.io ? { timestamp: ts, psi: psi(cg.psi.io) } : null);

  const memoryUsage = (ts: string, cg: CgroupStats) => ({
    timestamp: ts,
    workingSetBytes: u64(cg.memoryWorkingSetBytes),
    // As the kubelet's cAdvisor figures: limit minus working set, none without a limit.
    availableBytes: cg.memoryLimitBytes === undefined ? null : u64(Math.max(0, cg.memoryLimitBytes - cg.memoryWorkingSetBytes)),
    usageBytes: u64(cg.memoryUsageBytes),
    rssBytes: u64(cg.memoryRssBytes),
    pageFaults: u64(cg.pageFaults),
    majorPageFaults: u64(cg.majorPageFaults),
    psi: psi(cg.psi?.memory),
  });

  const layerUsage = new WeakMap<Container, PeriodicUsage>();
  /**
   * The container's writable layer, walked in the background at most once a
   * period (containerd's snapshot usage): the last figures with when they
   * were measured; only a container's first call waits for its walk. The
   * overlay's upper dir or, without overlay, the copied rootfs, all of which
   * is the container's own (as containerd's native snapshotter counts it).
   */
  const writableLayer = async (c: Container) => {
    let usage = layerUsage.get(c);
    if (!usage) {
      const dir = recordDir(c.id);
      usage = new PeriodicUsage(() => diskUsage(existsSync(join(dir, 'upper')) ? join(dir, 'upper') : join(dir, 'rootfs')), LAYER_USAGE_PERIOD_MS);
      layerUsage.set(c, usage);
    }
    const u = await usage.latest();
    return {
      timestamp: u.timestampNs.toString(),
      // One file system id for every container's layer, as containerd names its snapshotter's root: the kubelet looks each id up.
      fsId: { mountpoint: dirname(recordDir(c.id)) },
      usedBytes: u64(u.usedBytes),
      inodesUsed: u64(u.inodesUsed),
    };
  };

  const stats = async (c: Container): Promise<ContainerStats> => {
    const ts = nowNs().toString();
    const cg = containers.stats(c);
    return {
      attributes: { id: c.id, metadata: metadata(c), labels: c.spec.labels, annotations: c.spec.annotations },
      cpu: cg ? cpuUsage(ts, c, cg) : null,
      memory: cg ? memoryUsage(ts, cg) : null,
      io: ioUsage(ts, cg),
      writableLayer: await writableLayer(c),
    };
  };

  /**
   * As containerd: every link of the pod's network namespace but lo, eth0 (else
   * the first) the default one; a pod on the host's network has none. Nor has
   * one with lo alone (`--network none`): the kubelet reads the default
   * interface's fields unchecked.
   */
  const network = (ts: string, sb: Sandbox) => {
    const interfaces = podInterfaces(sb)
      .map((l) => ({ name: l.name, rxBytes: u64(l.rxBytes), rxErrors: u64(l.rxErrors), txBytes: u64(l.txBytes), txErrors: u64(l.txErrors) }));
    if (interfaces.length === 0) return null;
    return { timestamp: ts, defaultInterface: interfaces.find((i) => i.name === 'eth0') ?? interfaces[0]!, interfaces };
  };

  const podStats = async (sb: Sandbox): Promise<PodSandboxStats> => {
    const ts = nowNs().toString();
    const cg = containers.podStats(sb);
    const running = containers.inSandbox(sb.id).filter((c) => containers.stateOf(c) === 'RUNNING');
    return {
      attributes: { id: sb.id, metadata: { ...sb.spec.metadata }, labels: sb.spec.labels, annotations: sb.spec.annotations },
      linux: {
        cpu: cg ? cpuUsage(ts, sb, cg) : null,
        memory: cg ? memoryUsage(ts, cg) : null,
        io: ioUsage(ts, cg),
        network: network(ts, sb),
        process: cg ? { timestamp: ts, processCount: u64(cg.pids) } : null,
        containers: await Promise.all(running.map(stats)),
      },
    };
  };

  return {
    async PodSandboxStats(req) {
      const sb = sandboxes.get(req.podSandboxId);
      // As containerd: a pod that is not ready has no figures to give, for now (ListPodSandboxStats leaves it out).
      if (sandboxes.stateOf(sb) !== 'READY') throw unavailable(`pod sandbox ${sb.id} is not ready: no stats`);
      return { stats: await podStats(sb) };
    },
    async ListPodSandboxStats(req) {
      return { stats: await Promise.all(readyPods(req.filter).map(podStats)) };
    },
    async StreamPodSandboxStats(req, call) {
      await writeEach(call, readyPods(req.filter), async (sb) => ({ podSandboxStats: [await podStats(sb)] }));
    },
    async CreateContainer(req) {
      const config = req.config as ContainerConfig__Output | null;
      const spec = toContainerSpec(config);
      if (spec.security.pidMode === 'TARGET') {
        const sandboxId = sandboxes.get(req.podSandboxId).id;
        spec.security.pidTarget = pidTarget(containers, sandboxId, config?.linux?.securityContext?.namespaceOptions?.targetId ?? '');
      }
      // As containerd: the CDI_devices field and the cdi.k8s.io/ annotations, resolved now (the record keeps the result).
      const requested = cdiRequests(config!.CDIDevices.map((d) => d.name), spec.annotations);
      const c = await containers.create(req.podSandboxId, cdi.inject(spec, requested));
      return { containerId: c.id };
    },
    async StartContainer(req) {
      // As containerd, the target is checked again: gone since the create, its PID namespace went with it.
      const target = containers.get(req.containerId).spec.security.pidTarget;
      if (target) {
        const state = containers.list({ id: target.id }).map((t) => containers.stateOf(t))[0] ?? 'removed';
        if (state !== 'RUNNING') throw failedPrecondition(`target container ${target.id} is ${state}, not RUNNING`);
      }
      await containers.start(req.containerId);
      return {};
    },
    async StopContainer(req, call?: ServerUnaryCall<unknown, unknown>) {
      // A client that gives up ends the wait; a signal sent stays sent.
      await untilCancelled(call, (signal) => containers.stop(req.containerId, Number(req.timeout), signal));
      return {};
    },
    async RemoveContainer(req) {
      await containers.remove(req.containerId);
      return {};
    },
    async ContainerStatus(req) {
      const c = containers.get(req.containerId);
      return {
        status: containerStatus(containers, c),
        info: req.verbose
          ? { info: JSON.stringify({ pid: c.init?.pid ?? 0, monitorPid: c.monitor?.pid ?? 0, sandboxId: c.sandboxId, process: c.process, cgroup: c.cgroup, spec: c.spec }, (_k, v) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v)) }
          : {},
      };
    },
    async ListContainers(req) {
      return { containers: listed(req.filter).map(container) };
    },
    async StreamContainers(req, call) {
      await writeEach(call, listed(req.filter), (c) => ({ containers: [container(c)] }));
    },
    async UpdateContainerResources(req) {
      containers.updateResources(req.containerId, toResources(req.linux));
      return {};
    },
    async ReopenContainerLog(req) {
      await containers.reopenLog(req.containerId);
      return {};
    },
    async ExecSync(req, call) {
      if (Number(req.timeout) < 0) throw invalidArgument(`timeout ${req.timeout} must be >= 0`);
      for (const [i, a] of req.cmd.entries()) {
        // The kernel's limit on one argument (MAX_ARG_STRLEN); NUL would cut it short.
        if (a.length >= 128 * 1024 || a.includes('\0')) throw invalidArgument(`cmd[${i}] is longer than 128 KiB or contains a NUL byte`);
      }
      const r = await untilCancelled(call, (signal) => containers.execSync(req.containerId, req.cmd, Number(req.timeout), signal));
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    },
    async ContainerStats(req) {
      return { stats: await stats(containers.get(req.containerId)) };
    },
    async ListContainerStats(req) {
      return { stats: await Promise.all(running(req.filter).map(stats)) };
    },
    async StreamContainerStats(req, call) {
      await writeEach(call, running(req.filter), async (c) => ({ containerStats: [await stats(c)] }));
    },
  };
}
