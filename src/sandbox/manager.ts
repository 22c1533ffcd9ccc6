import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { alreadyExists, failedPrecondition, invalidArgument } from '../errors.js';
import { libc } from '../ffi/index.js';
import type { Logger } from '../log.js';
import { bindFile, unmount } from '../linux/mount.js';
import { HostNamespaces, type PodNamespace, type SwitchableNamespace } from '../linux/namespaces.js';
import { linkUp } from '../linux/netif.js';
import { isAlive, processesWithArgv } from '../linux/proc.js';
import type { Helpers } from '../linux/helpers.js';
import type { Reaper } from '../linux/reaper.js';
import type { PodNetwork } from '../network/status.js';
import type { ContainerEventType, EventBus } from '../util/events.js';
import { failpoint } from '../util/failpoint.js';
import { removeFlat } from '../util/fs.js';
import { matchIdPrefix, newId, resolveId } from '../util/ids.js';
import { KeyedMutex } from '../util/mutex.js';
import { RecordStore } from '../util/records.js';
import { Rollback } from '../util/rollback.js';
import { nowNs } from '../util/time.js';
import { awaitPause, pauseArgv, spawnPauseLauncher } from './pause.js';
import { podFiles, preparePodFiles, type PodFiles } from './podfiles.js';
import type { Sandbox, SandboxFilter, SandboxSpec, SandboxState } from './types.js';
import { validateSpec } from './validate.js';

export interface SandboxManagerDeps {
  root: string;
  state: string;
  nativeDir: string;
  log: Logger;
  hostNs: HostNamespaces;
  reaper: Reaper;
  /** Spawns the pause launcher (posix_spawn) and hears its report. */
  helpers: Helpers;
  /** The pod's containers go first: stopped before pause, removed before the sandbox. */
  beforeStop?: (id: string) => Promise<void>;
  beforeRemove?: (sb: Sandbox) => Promise<void>;
  /** Pod networking (CNI) for pods with their own network namespace; without it they have loopback only. */
  network?: PodNetwork;
  /** Lifecycle events (CRI GetContainerEvents), with the sandbox id as container id. */
  events?: EventBus;
  /** Where pods given no cgroup_parent get their cgroup (ServerConfig.podCgroupRoot). */
  podCgroupRoot: string;
}

/** The user pause runs as, like the upstream pause image. */
const PAUSE_USER = '65535:65535';

/**
 * Pod sandboxes: a pause process holding the pod's namespaces, the network
 * one also pinned by a bind mount so that it outlives pause. Answers reads
 * from memory; every change is written to disk before it is acknowledged.
 */
export class SandboxManager {
  private readonly sandboxes = new Map<string, Sandbox>();
  /** name_namespace_uid_attempt → id: the kubelet's retry guard. */
  private readonly names = new Map<string, string>();
  private readonly locks = new KeyedMutex();
  private readonly store: RecordStore<Sandbox>;
  /** Sandboxes whose pause died on its own, already told to event subscribers (the stop then tells nothing new). */
  private readonly stopReported = new Set<string>();
  /** Stops under way, by sandbox id (a count: they may overlap). */
  private readonly stopping = new Map<string, number>();

  constructor(private readonly deps: SandboxManagerDeps) {
    // A sandbox lives no longer than the boot (its pause and pins die with
    // it), so its record lives in the state dir too: on a node that is a
    // tmpfs under /run, and creating a pod touches no disk.
    this.store = new RecordStore<Sandbox>(deps.state, deps.state, 'sandboxes', (raw) => ({
      ...raw,
      createdAt: BigInt(raw.createdAt),
      // A record written before the field was: its pod is under today's root.
      cgroup: raw.cgroup ?? podCgroup(raw.spec, raw.id, deps.podCgroupRoot),
    }));
  }

  /**
   * Loads every sandbox recorded on disk; finishes the clean-up of half-built
   * ones. The network releases what sandboxes without a record held.
   */
  async load(): Promise<void> {
    const records = await this.store.loadAll(this.deps.log);
    await this.deps.network?.recover(new Set(records.map((sb) => sb.id)));
    for (const sb of records) {
      if (!sb.complete) {
        this.deps.log.warn('removing sandbox left half-built by a previous server', { id: sb.id });
        // A server killed before the launcher's report never recorded pause: find it by its argv.
        const pauses = sb.pause ? [sb.pause] : processesWithArgv(pauseArgv(this.deps.nativeDir, this.store.runtimeDir(sb.id)));
        for (const p of pauses) await this.deps.reaper.kill(p);
        await this.detachNetwork(sb).catch((err) => this.deps.log.error('network teardown failed', { id: sb.id, err }));
        if (sb.networkAttached) this.keepForTeardown(sb);
        else await this.store.removeFiles(sb.id);
        continue;
      }
      this.sandboxes.set(sb.id, sb);
      this.names.set(nameKey(sb.spec), sb.id);
      if (sb.pause) this.deps.reaper.watchProcess(sb.pause, () => this.pauseExited(sb));
    }
  }

  /**
   * Creates and starts a sandbox. `signal` (the client gave up) stops the CNI
   * plugin running and undoes everything, as containerd's context does: a
   * sandbox the kubelet never heard of would hold the pod's name.
   */
  async run(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    validateSpec(spec);
    const key = nameKey(spec);
    const existing = this.names.get(key);
    if (existing !== undefined) {
      throw alreadyExists(`pod sandbox name "${key}" is reserved by sandbox ${existing}`);
    }
    const id = newId();
    this.names.set(key, id);
    const undo = new Rollback();
    undo.add('release name', () => {
      if (!this.sandboxes.has(id)) this.names.delete(key); // kept for its network teardown: the name stays taken
    });
    try {
      const sb = await this.create(id, spec, undo, signal);
      undo.commit();
      return sb;
    } catch (err) {
      await undo.run((what, e) => this.deps.log.error('rollback step failed', { id, what, err: e }));
      throw err;
    }
  }

  private async create(id: string, spec: SandboxSpec, undo: Rollback, signal: AbortSignal | undefined): Promise<Sandbox> {
    const { log, hostNs, reaper } = this.deps;
    const owned = ownedNamespaces(spec);
    const network = owned.includes('net') ? this.deps.network : undefined;
    const netStatus = network?.status();
    if (netStatus && !netStatus.ready) throw failedPrecondition(`pod network is not ready: ${netStatus.message}`);
    const sb: Sandbox = {
      id,
      spec,
      createdAt: nowNs(),
      pause: null,
      namespaces: {},
      stopped: false,
      complete: false,
      network: { ip: '', additionalIps: [] },
      cgroup: podCgroup(spec, id, this.deps.podCgroupRoot),
    };
    const nsDir = this.nsDir(id);
    // Runs after the network's teardown (undo steps run last first): if that DEL failed, the record is what a retry needs.
    undo.add('remove files', () => (sb.networkAttached ? this.keepForTeardown(sb) : this.store.removeFiles(id)));
    mkdirSync(nsDir, { recursive: true });
    this.store.save(sb);
    failpoint('sandbox.after-record');

    const fresh = owned.filter((ns): ns is SwitchableNamespace => ns !== 'pid');
    const launcher = hostNs.inNew(fresh, () => {
      if (fresh.includes('uts') && spec.hostname) libc().sethostname(spec.hostname);
      if (fresh.includes('net')) linkUp('lo');
      applySysctls(spec.sysctls);
      failpoint('sandbox.in-namespaces');
      return spawnPauseLauncher({
        nativeDir: this.deps.nativeDir,
        helpers: this.deps.helpers,
        id,
        dir: this.store.runtimeDir(id),
        newPidNamespace: owned.includes('pid'),
        user: PAUSE_USER,
      });
    });
    const pause = await awaitPause(launcher);
    failpoint('sandbox.after-launch');
    reaper.watch(pause.pid, undefined, () => this.pauseExited(sb));
    undo.add('kill pause', () => reaper.kill(pause));
    sb.pause = pause;
    this.store.save(sb);
    failpoint('sandbox.after-pause');

    // Only the network namespace is pinned, as containerd does: CNI DEL needs
    // it after pause is gone. IPC, UTS and PID are joined through pause, as
    // containerd does too; a bind mount each would cost every container's
    // unshare(CLONE_NEWNS), which copies all the host's mounts.
    for (const ns of owned) {
      if (ns !== 'net') {
        sb.namespaces[ns] = `/proc/${pause.pid}/ns/${ns}`;
        continue;
      }
      const path = join(nsDir, ns);
      bindFile(`/proc/${pause.pid}/ns/${ns}`, path);
      sb.namespaces[ns] = path;
      failpoint(`sandbox.after-pin-${ns}`);
    }
    // The pin and the paths must name pause's namespaces, and pause must still
    // be the process we started (it could have died and its pid been reused).
    if (!isAlive(pause)) throw new Error(`pause (pid ${pause.pid}) died during start-up`);
    if (network) {
      // Recorded before ADD, so that a server dying mid-ADD still gets its DEL at load.
      sb.networkAttached = true;
      this.store.save(sb);
      let added = false;
      undo.add('tear down network', () =>
        this.detachNetwork(sb).catch((err: unknown) => {
          if (added) throw err; // the sandbox is kept, not ready, for the kubelet's stop to try again
          // As containerd: after an ADD that failed, a failing DEL does not keep the
          // sandbox, whose every StopPodSandbox would fail (the kubelet then never
          // makes the pod a new one). Each plugin's DEL has run; the CNI cache
          // keeps the entry, and the next server start tries the DEL again.
          log.warn('network teardown after a failed ADD failed; the sandbox goes all the same', { id, err });
          sb.networkAttached = false;
        }),
      );
      sb.network = await network.setUp(sb, signal);
      added = true;
      this.store.save(sb);
      failpoint('sandbox.after-network');
    }
    preparePodFiles(this.store.runtimeDir(id), sb, hostname());
    failpoint('sandbox.after-files');
    signal?.throwIfAborted();

    sb.complete = true;
    this.store.save(sb);
    failpoint('sandbox.after-commit');
    this.sandboxes.set(id, sb);
    // As containerd and CRI-O: the sandbox is created, then started.
    this.emit('CONTAINER_CREATED_EVENT', sb);
    this.emit('CONTAINER_STARTED_EVENT', sb);
    log.info('pod sandbox ready', { id, pod: `${spec.metadata.namespace}/${spec.metadata.name}`, pid: pause.pid });
    return sb;
  }

  /** Stops pause. The pinned namespaces stay until remove. Idempotent; a missing sandbox is fine. */
  async stop(idOrPrefix: string): Promise<void> {
    const id = this.find(idOrPrefix);
    if (id === undefined) return;
    this.stopping.set(id, (this.stopping.get(id) ?? 0) + 1);
    try {
      await this.stopLocked(id);
    } finally {
      const n = this.stopping.get(id)! - 1;
      if (n === 0) this.stopping.delete(id);
      else this.stopping.set(id, n);
    }
  }

  /** Whether a container may join `sb` now: ready, and no stop under way (it would not see the container). */
  acceptsContainers(sb: Sandbox): boolean {
    return !this.stopping.has(sb.id) && this.stateOf(sb) === 'READY';
  }

  private async stopLocked(id: string): Promise<void> {
    await this.deps.beforeStop?.(id);
    await this.locks.run(id, async () => {
      const sb = this.sandboxes.get(id);
      if (!sb) return;
      if (sb.pause) await this.deps.reaper.kill(sb.pause);
      if (!sb.stopped || sb.pause) {
        sb.stopped = true;
        sb.pause = null;
        this.store.save(sb);
        if (!this.stopReported.delete(id)) this.emit('CONTAINER_STOPPED_EVENT', sb);
        this.deps.log.info('pod sandbox stopped', { id });
      }
      // After the containers and pause: the netns stays pinned until remove. A failure fails
      // the stop, and the next stop (or remove) tries again.
      await this.detachNetwork(sb);
    });
  }

  /** Stops if needed, unpins the namespaces and deletes every trace. Idempotent. */
  async remove(idOrPrefix: string): Promise<void> {
    const id = this.find(idOrPrefix);
    if (id === undefined) return;
    await this.stop(id);
    // Looked up again: a remove running alongside may have finished meanwhile (then this one has nothing to do).
    const present = this.sandboxes.get(id);
    if (!present) return;
    await this.deps.beforeRemove?.(present);
    failpoint('sandbox.remove-after-containers');
    await this.locks.run(id, async () => {
      const sb = this.sandboxes.get(id);
      if (!sb) return;
      // Its own mounts first: then its directories are plain and go without a
      // read of the host's mount table. removeFiles unmounts whatever else is still there.
      for (const mp of this.ownMounts(sb)) unmount(mp);
      removeFlat(this.nsDir(id));
      failpoint('sandbox.remove-after-unmount');
      await this.store.removeFiles(id);
      this.sandboxes.delete(id);
      this.stopReported.delete(id);
      this.names.delete(nameKey(sb.spec));
      this.emit('CONTAINER_DELETED_EVENT', sb);
      this.deps.log.info('pod sandbox removed', { id });
    });
  }

  /**
   * Pause died without a stop (killed, OOM): the sandbox is NOTREADY now, and
   * an Evented PLEG kubelet hears it at once, as containerd's sandbox exit
   * monitor tells it, not at its next relist minutes later.
   */
  private pauseExited(sb: Sandbox): void {
    if (sb.stopped || this.stopping.has(sb.id) || !this.sandboxes.has(sb.id)) return;
    this.stopReported.add(sb.id);
    this.emit('CONTAINER_STOPPED_EVENT', sb);
    this.deps.log.warn('pod sandbox pause exited', { id: sb.id });
  }

  private emit(type: ContainerEventType, sb: Sandbox): void {
    this.deps.events?.emit({ type, id: sb.id, sandboxId: sb.id, at: nowNs(), subject: sb });
  }

  /**
   * A half-built sandbox whose CNI DEL failed is kept, stopped (NOTREADY),
   * as containerd keeps one (SANDBOX_UNKNOWN), instead of being forgotten
   * with the only record of what DEL needs (the cached result, the netns
   * pin): the kubelet's StopPodSandbox or RemovePodSandbox tries the DEL again.
   */
  private keepForTeardown(sb: Sandbox): void {
    sb.stopped = true;
    sb.pause = null;
    sb.complete = true;
    this.store.save(sb);
    this.sandboxes.set(sb.id, sb);
    this.names.set(nameKey(sb.spec), sb.id);
    this.deps.log.warn('pod sandbox kept, not ready, until its network is torn down', { id: sb.id });
  }

  /** CNI DEL once per ADD; idempotent. */
  private async detachNetwork(sb: Sandbox): Promise<void> {
    if (!sb.networkAttached || !this.deps.network) return;
    await this.deps.network.tearDown(sb);
    sb.networkAttached = false;
    // As containerd once the pod's netns is closed: the addresses are released, no longer the pod's.
    sb.network = { ip: '', additionalIps: [] };
    this.store.save(sb);
  }

  get(idOrPrefix: string): Sandbox {
    return this.sandboxes.get(resolveId(this.sandboxes.keys(), idOrPrefix, 'pod sandbox'))!;
  }

  /** Where the netns pin is made. */
  private nsDir(id: string): string {
    return join(this.store.runtimeDir(id), 'ns');
  }

  /** What create mounted under the pod's runtime dir: the netns pin and the shm tmpfs (a host namespace has neither there). */
  private ownMounts(sb: Sandbox): string[] {
    const dir = this.store.runtimeDir(sb.id) + '/';
    return [sb.namespaces.net, this.files(sb).shm].filter((p): p is string => p?.startsWith(dir) === true);
  }

  files(sb: Sandbox): PodFiles {
    return podFiles(this.store.runtimeDir(sb.id), sb);
  }

  stateOf(sb: Sandbox): SandboxState {
    return !sb.stopped && sb.pause !== null && isAlive(sb.pause) ? 'READY' : 'NOTREADY';
  }

  list(filter: SandboxFilter = {}): Sandbox[] {
    let candidates: Iterable<Sandbox> = this.sandboxes.values();
    if (filter.id) {
      const id = safeMatch(this.sandboxes.keys(), filter.id);
      candidates = id ? [this.sandboxes.get(id)!] : [];
    }
    const out: Sandbox[] = [];
    for (const sb of candidates) {
      if (filter.state && this.stateOf(sb) !== filter.state) continue;
      if (filter.labelSelector && !matchesLabels(sb.spec.labels, filter.labelSelector)) continue;
      out.push(sb);
    }
    return out;
  }

  private find(idOrPrefix: string): string | undefined {
    if (idOrPrefix === '') throw invalidArgument('pod sandbox id is required');
    return matchIdPrefix(this.sandboxes.keys(), idOrPrefix);
  }
}

/** The kubelet's cgroup_parent, else one of peapod's own under `root`. */
function podCgroup(spec: SandboxSpec, id: string, root: string): string {
  return spec.cgroupParent || `${root}/${id}`;
}

function nameKey(spec: SandboxSpec): string {
  const m = spec.metadata;
  return `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
}

/** Pod-level namespaces this sandbox creates (the rest are the host's). */
export function ownedNamespaces(spec: SandboxSpec): PodNamespace[] {
  const o = spec.namespaceOptions;
  const owned: PodNamespace[] = [];
  // Host network means host UTS too, as in containerd and CRI-O.
  if (o.network !== 'NODE') owned.push('net', 'uts');
  if (o.ipc !== 'NODE') owned.push('ipc');
  if (o.pid !== 'NODE') owned.push('pid');
  return owned;
}

/** Written from inside the namespace window: /proc/sys follows the writer's namespaces. */
function applySysctls(sysctls: Record<string, string>): void {
  for (const [name, value] of Object.entries(sysctls)) {
    try {
      writeFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, value);
    } catch (err) {
      throw invalidArgument(`sysctl ${name}=${value}: ${(err as Error).message}`);
    }
  }
}

export function matchesLabels(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** List filters never fail: an ambiguous prefix simply matches nothing. */
function safeMatch(ids: Iterable<string>, prefix: string): string | undefined {
  try {
    return matchIdPrefix(ids, prefix);
  } catch {
    return undefined;
  }
}
