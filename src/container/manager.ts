import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { alreadyExists, deadlineExceeded, failedPrecondition, invalidArgument, isKind, notFound } from '../errors.js';
import { libc } from '../ffi/index.js';
import { SIGKILL, SIGTERM, signalNumber } from '../ffi/constants.js';
import { precreateMountTargets } from '../image/rootfs.js';
import type { ImageService } from '../image/service.js';
import type { Logger } from '../log.js';
import type { Cgroups, Cgroup, CgroupStats } from '../linux/cgroups.js';
import type { Reaper } from '../linux/reaper.js';
import { spreadSubdirectories } from '../linux/fsflags.js';
import type { Helpers } from '../linux/helpers.js';
import { identify, isAlive, processesWithArgv, type ProcessIdentity } from '../linux/proc.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { Sandbox } from '../sandbox/types.js';
import { matchesLabels } from '../sandbox/manager.js';
import type { ContainerEventType, EventBus } from '../util/events.js';
import { failpoint, failpointAsync } from '../util/failpoint.js';
import { matchIdPrefix, newId, resolveId } from '../util/ids.js';
import { KeyedMutex } from '../util/mutex.js';
import { RecordStore } from '../util/records.js';
import { Rollback } from '../util/rollback.js';
import { nowNs, sleep } from '../util/time.js';
import { awaitCreated, control, monitorArgs, readExit, readStartedAt, spawnMonitor, startedAtOf } from './monitor.js';
import { addCgroups, addFilesystem, INIT_ANNOTATION, INIT_PATH, podFileMounts } from './mounts.js';
import { SPARE_TARGETS, SpareLayers } from './spares.js';
import { SpareMonitors } from './spare-monitors.js';
import { buildProcess, layerFileReader } from './process.js';
import { addDeviceFilter, addDevices, addProcess, deviceAccess, NativeSpec, pidNamespace } from './spec.js';
import { validateContainerSpec } from './validate.js';
import type { Container, ContainerSpec, ContainerState, ExitStatus, ResourceSpec } from './types.js';

export interface ContainerManagerDeps {
  root: string;
  state: string;
  nativeDir: string;
  log: Logger;
  sandboxes: SandboxManager;
  images: ImageService;
  cgroups: Cgroups;
  /** Lifecycle events (CRI GetContainerEvents). */
  events?: EventBus;
  /** Reaps container inits re-parented to the server when their monitor dies, and spare monitors let go. */
  reaper: Reaper;
  /** Spawns monitors (posix_spawn) and hears their reports and exits. */
  helpers: Helpers;
}

export interface ContainerFilter {
  id?: string;
  state?: ContainerState;
  sandboxId?: string;
  labelSelector?: Record<string, string>;
}

/** Caps ExecSync output per stream, as the kubelet expects (16 MiB). */
const EXEC_OUTPUT_LIMIT = 16 * 1024 * 1024;

function reviveContainer(raw: any): Container {
  return {
    ...raw,
    createdAt: BigInt(raw.createdAt),
    startedAt: BigInt(raw.startedAt),
    process: { ...raw.process, capabilities: BigInt('0x' + raw.process.capabilities) },
    exit: raw.exit && { ...raw.exit, finishedAt: BigInt(raw.exit.finishedAt) },
    // A record written before these were kept.
    spec: { ...raw.spec, resources: { memorySwapLimitBytes: 0, hugepageLimits: [], unified: {}, ...raw.spec.resources } },
  };
}

/**
 * Containers: each one a native monitor (its own process, outliving the
 * server) that forks the container init into the pod's namespaces.
 */
export class ContainerManager {
  private readonly containers = new Map<string, Container>();
  /** name_sandbox_attempt → id. */
  private readonly names = new Map<string, string>();
  private readonly locks = new KeyedMutex();
  /** Containers whose StartContainer is under way: their stop event waits for the start's. */
  private readonly starting = new Set<string>();
  /** Containers a stop has signalled: later stops send no second stop signal, and no start follows. */
  private readonly signalled = new Set<string>();
  /** Creates under way, by sandbox id (see settleCreates). */
  private readonly creating = new Map<string, Set<Promise<void>>>();
  private readonly store: RecordStore<Container>;
  private readonly spares: SpareLayers;
  private readonly monitors: SpareMonitors;
  /** Parents of peapod's own pod cgroups that hand cpuset values down (ensureParent) by now. */
  private readonly ownParentsReady = new Set<string>();

  constructor(private readonly deps: ContainerManagerDeps) {
    // Records live in the state dir like the sandboxes they belong to (neither
    // outlives the boot), so a create or start touches no disk metadata but
    // the writable layer's, which stays under <root>/containers/<id>.
    this.store = new RecordStore<Container>(deps.state, deps.state, 'containers', reviveContainer);
    this.spares = new SpareLayers(deps.root, deps.log);
    this.monitors = new SpareMonitors(join(deps.state, 'spare-monitors'), join(deps.nativeDir, 'peapod-monitor'), deps.helpers, deps.reaper, deps.log);
  }

  async load(): Promise<void> {
    for (const c of await this.store.loadAll(this.deps.log)) {
      if (c.init === null && c.exit === null) {
        // Create died before the monitor reported: its monitor (if it was
        // spawned) is killed with the rest.
        c.monitor ??= processesWithArgv(monitorArgs(this.specPath(c.id), this.runtimeDir(c.id)), 'suffix')[0] ?? null;
        await this.cleanup(c);
        continue;
      }
      // Its start is in monitor.json (the start saves no record).
      if (c.startedAt === 0n && c.init) c.startedAt = readStartedAt(this.runtimeDir(c.id)) ?? 0n;
      this.containers.set(c.id, c);
      this.names.set(nameKey(c), c.id);
      // Leases live in memory: a container's image stays in use across restarts.
      if (this.deps.images.resolve(c.imageId)) this.deps.images.retain(c.imageId, c.id);
      // A monitor started by an earlier server reports its exit to this one.
      this.deps.helpers.subscribe(c.id, () => this.refresh(c));
      this.refresh(c);
    }
    // Writable layers of containers whose records are gone (a reboot emptied the state dir).
    await mkdir(this.layersDir(), { recursive: true });
    spreadSubdirectories(this.layersDir());
    for (const id of await readdir(this.layersDir())) {
      if (!this.containers.has(id)) await rm(this.layerDir(id), { recursive: true, force: true });
    }
    await this.spares.load();
    this.monitors.load();
  }

  /** Containers outlive the server; the spare monitors do not. */
  async close(): Promise<void> {
    await this.monitors.close();
  }

  runtimeDir(id: string): string {
    return this.store.runtimeDir(id);
  }

  private specPath(id: string): string {
    return join(this.store.runtimeDir(id), 'spec');
  }

  private layersDir(): string {
    return join(this.deps.root, 'containers');
  }

  /** The container's writable overlay layer (upper, work), on the persistent disk. */
  private layerDir(id: string): string {
    return join(this.layersDir(), id);
  }

  async create(sandboxId: string, spec: ContainerSpec): Promise<Container> {
    const sb = this.deps.sandboxes.get(sandboxId);
    if (!this.deps.sandboxes.acceptsContainers(sb)) throw failedPrecondition(`pod sandbox ${sb.id} is not ready`);
    let pending = this.creating.get(sb.id);
    if (!pending) this.creating.set(sb.id, (pending = new Set()));
    const made = this.build(sb, spec);
    const settled = made.then(
      () => undefined,
      () => undefined,
    );
    pending.add(settled);
    void settled.then(() => {
      pending.delete(settled);
      if (pending.size === 0 && this.creating.get(sb.id) === pending) this.creating.delete(sb.id);
    });
    return made;
  }

  /** Waits until the creates under way in the sandbox have registered their container or failed (its stop then lists them). */
  async settleCreates(sandboxId: string): Promise<void> {
    await Promise.all([...(this.creating.get(sandboxId) ?? [])]);
  }

  private async build(sb: Sandbox, spec: ContainerSpec): Promise<Container> {
    const { sandboxes, images, log } = this.deps;
    if (!spec.name) throw invalidArgument('config.metadata.name is required');
    if (!spec.image) throw invalidArgument('config.image.image is required');
    validateContainerSpec(spec);
    const devices = deviceAccess(spec);
    // Never a container with the host's devices open to it.
    if (!devices.allowAll && !this.deps.cgroups.devices) {
      throw failedPrecondition('device access cannot be confined on this host: it has neither a v1 devices cgroup hierarchy nor a cgroup2 one');
    }
    const image = images.resolve(spec.image);
    if (!image) throw notFound(`image "${spec.image}" not found`);

    const id = newId();
    const c: Container = {
      id,
      sandboxId: sb.id,
      spec,
      imageId: image.id,
      imageRef: image.repoDigests[0] ?? image.id,
      process: undefined!,
      createdAt: nowNs(),
      startedAt: 0n,
      logPath: sb.spec.logDirectory && spec.logPath ? join(sb.spec.logDirectory, spec.logPath) : '',
      cgroup: join(sb.cgroup, id),
      monitor: null,
      init: null,
      exit: null,
    };
    const key = nameKey(c);
    const holder = this.names.get(key);
    if (holder !== undefined) throw alreadyExists(`container name "${key}" is reserved by container ${holder}`);
    this.names.set(key, id);

    const undo = new Rollback();
    undo.add('release name', () => this.names.delete(key));
    try {
      const layerDir = this.layerDir(id);
      const runDir = this.store.runtimeDir(id);
      undo.add('remove files', () => this.removeFiles(id));
      const spareLayer = this.spares.take(layerDir);
      if (!spareLayer) mkdirSync(layerDir, { recursive: true });
      mkdirSync(join(runDir, 'rootfs'), { recursive: true });
      images.retain(image.id, id);
      undo.add('release image', () => images.release(id));
      const rootfs = await images.rootfsSpec(image.id, layerDir);
      if (rootfs.type === 'overlay') {
        const targets = podFileMounts(spec, sandboxes.files(sb)).map(([, target]) => target);
        precreateMountTargets(rootfs, targets, spareLayer ? SPARE_TARGETS : []);
      }
      const reader = rootfs.type === 'overlay' ? layerFileReader(rootfs.lowerdir, true) : layerFileReader([rootfs.rootfs]);
      c.process = buildProcess(spec, image.config, reader, sb.spec.hostname);
      const wantsInit = spec.annotations[INIT_ANNOTATION] === 'true';
      if (wantsInit) c.process.args = [INIT_PATH, '--', ...c.process.args];
      // As containerd does: a terminal gets TERM unless the container sets it.
      if (spec.tty && !c.process.env.some((e) => e.startsWith('TERM='))) c.process.env.push('TERM=xterm');
      failpoint('container.after-prepare');

      if (c.logPath) mkdirSync(dirname(c.logPath), { recursive: true });

      const native = new NativeSpec();
      native.add('pidns', pidNamespace(spec.security, sb.namespaces.pid));
      // The monitor joins the pod's net/IPC/UTS (those it has of its own) and the init inherits them.
      for (const [directive, path] of [['netns', sb.namespaces.net], ['ipcns', sb.namespaces.ipc], ['utsns', sb.namespaces.uts]] as const) {
        if (path) native.add(directive, path);
      }
      const initBinary = wantsInit ? join(this.deps.nativeDir, 'peapod-init') : undefined;
      addFilesystem(native, spec, join(runDir, 'rootfs'), rootfs, sandboxes.files(sb), initBinary);
      addDevices(native, spec);
      addProcess(native, c.process);
      // Always, 0 too: the monitor has the server's score (-999 under the service unit).
      native.add('oom-score-adj', spec.resources.oomScoreAdj);
      addCgroups(native, spec, this.deps.cgroups.procsDirs(c.cgroup), this.deps.cgroups.view);
      // The monitor attaches it before the init joins that dir (a v1 devices cgroup gets its rules at create below).
      const filterDir = this.deps.cgroups.deviceFilterDir(c.cgroup);
      if (filterDir) addDeviceFilter(native, filterDir, devices);
      if (c.logPath) native.add('log', c.logPath);
      // Attach (native/monitor.c): stdin a pipe the monitor feeds, tty a pty of the container's devpts.
      if (spec.stdin) native.add('stdin', 1);
      if (spec.stdin && spec.stdinOnce) native.add('stdin-once');
      if (spec.tty) native.add('tty', 1);
      const specPath = this.specPath(id);
      writeFileSync(specPath, native.toString(), { mode: 0o600 });
      // A spare is recorded as the monitor before it is handed the container.
      const spareMonitor = this.monitors.take();
      if (spareMonitor) {
        c.monitor = spareMonitor.identity;
        undo.add('release spare monitor', () => this.monitors.release(spareMonitor));
      }
      this.store.save(c);
      failpoint('container.after-record');
      // Undone after the monitor is killed (below; a rollback runs backwards):
      // the monitor puts the init into the cgroups after its report, so a
      // cgroup emptied and removed while it lives could gain the init in between.
      undo.add('end the init, remove cgroup', async () => {
        if (c.init) {
          signal(c.init, SIGKILL);
          // Its monitor gone, the init is this server's child (the nearest subreaper): reap it.
          this.deps.reaper.adopt(c.init);
        }
        const cgroup = this.cgroup(c);
        await cgroup?.killAll();
        await failpointAsync('container.rollback-emptied-cgroup');
        await cgroup?.remove();
      });

      // A monitor spawned here is not recorded before its report: a server that dies before then finds it by its argv.
      const started = spareMonitor
        ? this.monitors.hand(spareMonitor, id, specPath, runDir, join(runDir, 'monitor.log'))
        : spawnMonitor(this.deps.helpers, this.deps.nativeDir, id, specPath, runDir);
      const early = spareMonitor?.identity ?? identify(started.pid);
      if (early) undo.add('kill monitor', () => killAndWait(early));
      await failpointAsync('container.after-spawn');
      this.deps.helpers.subscribe(id, () => this.refresh(c));
      undo.add('stop listening', () => {
        this.deps.helpers.unsubscribe(id);
        this.deps.helpers.release(id);
      });
      // Made while the init sets itself up (on the other core); the monitor
      // puts the init into what exists when it reports, the rest at start.
      this.ensureOwnParent(sb);
      this.deps.cgroups.create(c.cgroup, cgroupResources(spec.resources, true), devices);
      // The main thread would wait for the report anyway (not while the client asks for the start).
      this.monitors.fill();
      const { monitor, init, warning } = await awaitCreated(started, spareMonitor?.identity);
      // In the server's log, where an operator looks (the doctor explains it), not in the container's.
      if (warning) log.warn('container set-up incomplete', { id, name: spec.name, warning });
      c.monitor = monitor;
      c.init = init;
      this.store.save(c);
      await failpointAsync('container.after-monitor');
      // A stop of the pod that began meanwhile waited for this create and lists the pod's containers next: not this one.
      if (!sandboxes.acceptsContainers(sb)) throw failedPrecondition(`pod sandbox ${sb.id} was stopped while container ${id} was being created`);
      this.containers.set(id, c);
      undo.commit();
      this.emit('CONTAINER_CREATED_EVENT', c);
      log.info('container created', { id, name: spec.name, sandbox: sb.id, pid: init.pid });
      return c;
    } catch (err) {
      await undo.run((what, e) => log.error('rollback step failed', { id, what, err: e }));
      this.monitors.fill();
      throw err;
    }
  }

  async start(idOrPrefix: string): Promise<void> {
    const c = this.get(idOrPrefix);
    await this.locks.run(c.id, async () => {
      const state = this.stateOf(c);
      if (state !== 'CREATED') throw failedPrecondition(`container ${c.id} is ${state}, not CREATED`);
      // Killed by a stop whose wait for the exit is still under way.
      if (this.signalled.has(c.id)) throw failedPrecondition(`container ${c.id} is being stopped`);
      this.starting.add(c.id);
      try {
        const reply = await control(this.deps.helpers, c.id, this.store.runtimeDir(c.id), 'start');
        failpoint('container.start-answered');
        // The monitor's own time of the start is the truer one (a fast exit can
        // finish before this line); a monitor of an earlier version answers without it.
        if (c.startedAt === 0n) c.startedAt = startedAtOf(reply) ?? readStartedAt(this.store.runtimeDir(c.id)) ?? nowNs();
      } catch (err) {
        // The monitor records the start in monitor.json before it answers: with
        // that there, only the answer was lost (a connection cut, a repeated
        // start finding it done, a monitor gone with its container) and the start took effect.
        const execAt = readStartedAt(this.store.runtimeDir(c.id));
        if (execAt === undefined) {
          // A failed start ends the container (the monitor records it): say so when the call returns.
          await this.waitExit(c, 2000);
          throw err;
        }
        if (c.startedAt === 0n) c.startedAt = execAt;
      } finally {
        this.starting.delete(c.id);
        // Started or not, the monitor's command connection is needed no more (it would hold an fd per container).
        this.deps.helpers.release(c.id);
        // Not saved: the record's startedAt comes from monitor.json at load
        // (written before the monitor answered), and an exit saves itself (refresh).
        // An exit seen while the start was under way was held back (see refresh): now, in order.
        if (c.startedAt > 0n) this.emit('CONTAINER_STARTED_EVENT', c);
        if (c.exit) this.emit('CONTAINER_STOPPED_EVENT', c);
      }
      failpoint('container.after-start');
      this.deps.log.info('container started', { id: c.id });
    });
  }

  /**
   * Signal, grace period, SIGKILL; idempotent on an exited or missing container.
   * Stops overlap, as containerd's: each waits its own timeout (a later,
   * shorter one kills sooner: the kubelet's shortened grace period), the stop
   * signal goes once, and each returns with the exit. `cancel` (the client
   * gave up) ends the call's wait; what it sent stays sent.
   */
  async stop(idOrPrefix: string, timeoutSeconds: number, cancel?: AbortSignal): Promise<void> {
    const id = this.find(idOrPrefix);
    if (id === undefined) return;
    const c = this.containers.get(id)!;
    // Locked to signal only: a start under way decides between the stop signal and SIGKILL, and a killed container is never started.
    const graceMs = await this.locks.run(id, async () => {
      this.refresh(c);
      if (c.exit !== null || !c.init) return undefined;
      const ms = c.startedAt === 0n ? 0 : Math.max(0, timeoutSeconds) * 1000;
      if (ms === 0) signal(c.init, SIGKILL);
      else if (!this.signalled.has(id)) signal(c.init, this.stopSignal(c));
      this.signalled.add(id);
      return ms;
    });
    if (graceMs !== undefined) {
      failpoint('container.after-stop-signal');
      if (graceMs > 0 && !(await this.waitExit(c, graceMs, cancel))) signal(c.init!, SIGKILL);
      if (!(await this.waitExit(c, 10_000, cancel))) throw deadlineExceeded(`container ${id} did not exit after SIGKILL`);
    }
    // In a shared PID namespace the init's children outlive it: end them too.
    await this.cgroup(c)?.killAll();
  }

  async remove(idOrPrefix: string): Promise<void> {
    const id = this.find(idOrPrefix);
    if (id === undefined) return;
    await this.stop(id, 0);
    await this.locks.run(id, async () => {
      const c = this.containers.get(id);
      if (!c) return;
      await this.cleanup(c);
      this.deps.helpers.unsubscribe(id);
      this.deps.helpers.release(id);
      this.containers.delete(id);
      this.signalled.delete(id);
      this.names.delete(nameKey(c));
      this.emit('CONTAINER_DELETED_EVENT', c);
      this.deps.log.info('container removed', { id });
    });
  }

  private async cleanup(c: Container): Promise<void> {
    if (c.monitor) await killAndWait(c.monitor);
    const cg = this.cgroup(c);
    if (cg) {
      await cg.killAll();
      await cg.remove();
    }
    this.deps.images.release(c.id);
    await this.removeFiles(c.id);
  }

  private async removeFiles(id: string): Promise<void> {
    await this.store.removeFiles(id);
    await rm(this.layerDir(id), { recursive: true, force: true });
  }

  get(idOrPrefix: string): Container {
    const c = this.containers.get(resolveId(this.containers.keys(), idOrPrefix, 'container'))!;
    this.refresh(c);
    return c;
  }

  /**
   * The image as containerd's ContainerStatus names it, looked up now: its
   * first tag (else the image as sent) and first repo digest (else the
   * reference recorded at create), so a tag added or moved since shows.
   */
  currentImage(c: Container): { name: string; ref: string } {
    const image = this.deps.images.resolve(c.imageId);
    return { name: image?.repoTags[0] ?? c.spec.image, ref: image?.repoDigests[0] ?? c.imageRef };
  }

  stateOf(c: Container): ContainerState {
    if (c.exit) return 'EXITED';
    if (c.startedAt > 0n) return 'RUNNING';
    return c.monitor && this.monitorAlive(c, c.monitor) ? 'CREATED' : 'UNKNOWN';
  }

  list(filter: ContainerFilter = {}): Container[] {
    const out: Container[] = [];
    let id: string | undefined;
    try {
      id = filter.id ? matchIdPrefix(this.containers.keys(), filter.id) : undefined;
    } catch {
      return [];
    }
    if (filter.id && !id) return [];
    for (const c of id ? [this.containers.get(id)!] : this.containers.values()) {
      this.refresh(c);
      if (filter.sandboxId && !c.sandboxId.startsWith(filter.sandboxId)) continue;
      if (filter.state && this.stateOf(c) !== filter.state) continue;
      if (filter.labelSelector && !matchesLabels(c.spec.labels, filter.labelSelector)) continue;
      out.push(c);
    }
    return out;
  }

  /** Made (or taken from an earlier version) once, when a pod first needs it: a kubelet's pods never do. */
  private ensureOwnParent(sb: Sandbox): void {
    if (sb.spec.cgroupParent) return;
    const parent = dirname(sb.cgroup);
    if (this.ownParentsReady.has(parent)) return;
    this.deps.cgroups.ensureParent(parent);
    this.ownParentsReady.add(parent);
  }

  /** The pod cgroup peapod made (no cgroup_parent given) goes with the pod; a kubelet manages its own. */
  async removeSandboxCgroup(sb: Sandbox): Promise<void> {
    if (sb.spec.cgroupParent) return;
    let cg: Cgroup;
    try {
      cg = this.deps.cgroups.open(sb.cgroup);
    } catch (err) {
      if (isKind(err, 'NotFound')) return;
      throw err;
    }
    await cg.remove();
  }

  inSandbox(sandboxId: string): Container[] {
    return [...this.containers.values()].filter((c) => c.sandboxId === sandboxId);
  }

  async reopenLog(idOrPrefix: string): Promise<void> {
    const c = this.get(idOrPrefix);
    if (this.stateOf(c) !== 'RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
    await control(this.deps.helpers, c.id, this.store.runtimeDir(c.id), 'reopen');
  }

  updateResources(idOrPrefix: string, res: ResourceSpec): void {
    const c = this.get(idOrPrefix);
    const cg = this.cgroup(c);
    if (!cg || c.exit) throw failedPrecondition(`container ${c.id} is not running`);
    const before = c.spec.resources;
    // The record first, as containerd updates the spec before the task: a
    // record that cannot be written (a full state dir) then changes nothing.
    c.spec.resources = mergeResources(before, res);
    try {
      this.store.save(c);
    } catch (err) {
      c.spec.resources = before;
      throw err;
    }
    try {
      cg.update(cgroupResources(c.spec.resources));
    } catch (err) {
      // The kernel refused a limit: back to the record and the limits set before, wherever one was.
      c.spec.resources = before;
      try {
        this.store.save(c);
        cg.update(cgroupResources(before));
      } catch (undo) {
        this.deps.log.warn('could not restore the record or limits of a container after a failed update', { id: c.id, err: undo });
      }
      throw err;
    }
  }

  stats(c: Container): CgroupStats | undefined {
    return this.cgroupStats(c.cgroup);
  }

  /** The pod cgroup holds every container's cgroup: its figures are the pod's. */
  podStats(sb: Sandbox): CgroupStats | undefined {
    return this.cgroupStats(sb.cgroup);
  }

  private cgroupStats(path: string): CgroupStats | undefined {
    try {
      return this.deps.cgroups.open(path).stats();
    } catch {
      return undefined;
    }
  }

  /**
   * Runs a command in a running container (ExecSync and exec probes). The
   * timeout, or `cancel` (the client gave up, as containerd's request
   * context), kills it.
   */
  async execSync(
    idOrPrefix: string,
    cmd: string[],
    timeoutSeconds: number,
    cancel?: AbortSignal,
  ): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }> {
    const c = this.get(idOrPrefix);
    if (this.stateOf(c) !== 'RUNNING' || !c.init) throw failedPrecondition(`container ${c.id} is not running`);
    if (cmd.length === 0) throw invalidArgument('cmd is required');
    const native = new NativeSpec();
    addProcess(native, { ...c.process, args: cmd });
    // The init's cgroups, as the monitor joined them: the helper need not look them up.
    for (const dir of this.deps.cgroups.procsDirs(c.cgroup)) native.add('cgroup', dir);
    // The helper's files, in the state dir (a tmpfs on a node); it caps each output at the limit.
    const base = join(this.store.runtimeDir(c.id), `exec-${newId().slice(0, 16)}`);
    const files = { spec: `${base}.spec`, out: `${base}.out`, err: `${base}.err` };
    writeFileSync(files.spec, native.toString(), { mode: 0o600 });
    try {
      const started = this.deps.helpers.spawn(
        join(this.deps.nativeDir, 'peapod-exec'),
        ['--pid', String(c.init.pid), '--start-time', c.init.startTime, '--spec', files.spec, '--output-limit', String(EXEC_OUTPUT_LIMIT)],
        basename(base),
        { stdout: files.out, stderr: files.err, exitReports: true },
      );
      let killed: string | undefined;
      const kill = (why: string) => {
        if (killed !== undefined) return;
        killed = why;
        libc().kill(started.pid, SIGTERM); // the helper kills the exec's whole process group
      };
      const timer = timeoutSeconds > 0 ? setTimeout(() => kill(`command timed out after ${timeoutSeconds} s`), timeoutSeconds * 1000) : undefined;
      const gaveUp = () => kill('the client gave up on the command: it was killed');
      cancel?.addEventListener('abort', gaveUp);
      if (cancel?.aborted) gaveUp();
      const m = await started.report.finally(() => {
        clearTimeout(timer);
        cancel?.removeEventListener('abort', gaveUp);
      });
      if (killed !== undefined) throw deadlineExceeded(killed);
      const [stdout, stderr] = await Promise.all([readOutput(files.out), readOutput(files.err)]);
      return { stdout, stderr, exitCode: Number(m.text) };
    } finally {
      for (const f of Object.values(files)) rmSync(f, { force: true });
    }
  }

  private stopSignal(c: Container): number {
    const name = c.spec.stopSignal || this.deps.images.resolve(c.imageId)?.config.StopSignal || 'SIGTERM';
    return signalNumber(name) ?? SIGTERM;
  }

  private cgroup(c: Container): Cgroup | undefined {
    try {
      return this.deps.cgroups.open(c.cgroup);
    } catch {
      return undefined;
    }
  }

  private monitorAlive(c: Container, monitor: ProcessIdentity): boolean {
    return this.deps.helpers.holds(c.id) || isAlive(monitor);
  }

  /** Takes in the exit the monitor recorded; a monitor gone without one means the state is unknown. */
  private refresh(c: Container): void {
    if (c.exit || !c.monitor) return;
    const dir = this.store.runtimeDir(c.id);
    let rec = readExit(dir);
    if (!rec) {
      // Liveness is looked at once: a monitor writes exit.json and then
      // exits, so one seen gone is asked for its record again before it is
      // taken for lost.
      if (this.monitorAlive(c, c.monitor)) return;
      rec = readExit(dir);
    }
    if (rec) {
      if (rec.startError !== undefined) {
        // As containerd reports a failed start: exit code 128, reason StartError.
        c.exit = { exitCode: 128, signal: 0, finishedAt: rec.finishedAt, reason: 'StartError', message: rec.startError };
      } else {
        const oom = rec.exitCode !== 0 && (this.cgroup(c)?.oomKilled() ?? false);
        c.exit = exitStatus(rec.exitCode, rec.signal, rec.finishedAt, oom);
        if (rec.startedAt > 0n) c.startedAt = rec.startedAt;
      }
      this.store.save(c);
    } else {
      // Without its monitor the init is the server's child (the nearest subreaper): reap it.
      if (c.init) this.deps.reaper.adopt(c.init);
      // Started or not (a created init leaves when its monitor's pipe closes): ended, or nothing could ever stop or remove it.
      if (!(c.init && isAlive(c.init))) {
        c.exit = { exitCode: 255, signal: 0, finishedAt: nowNs(), reason: 'Error', message: 'the container monitor died' };
        this.store.save(c);
      }
    }
    if (c.exit && !this.starting.has(c.id)) this.emit('CONTAINER_STOPPED_EVENT', c);
  }

  private emit(type: ContainerEventType, c: Container): void {
    this.deps.events?.emit({ type, id: c.id, sandboxId: c.sandboxId, at: nowNs(), subject: c });
  }

  private async waitExit(c: Container, timeoutMs: number, cancel?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
      this.refresh(c);
      if (c.exit) return true;
      if (cancel?.aborted) throw deadlineExceeded(`the wait for container ${c.id} to exit was given up: the client cancelled the call`);
      if (Date.now() >= deadline) return false;
      await sleep(delay);
    }
  }

  private find(idOrPrefix: string): string | undefined {
    if (idOrPrefix === '') throw invalidArgument('container id is required');
    return matchIdPrefix(this.containers.keys(), idOrPrefix);
  }
}

function nameKey(c: Container): string {
  return `${c.spec.name}_${c.sandboxId}_${c.spec.attempt}`;
}

export function exitStatus(exitCode: number, sig: number, finishedAt: bigint, oom: boolean): ExitStatus {
  const reason = oom ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
  return { exitCode, signal: sig, finishedAt, reason, message: '' };
}

/** The limits to write; a new cgroup (`fresh`) has no quota and no memory limit, so unset ones need no write. */
function cgroupResources(r: ResourceSpec, fresh = false) {
  return {
    cpuShares: r.cpuShares,
    cpuQuota: fresh && !r.cpuQuota ? undefined : r.cpuQuota,
    cpuPeriod: r.cpuPeriod,
    cpusetCpus: r.cpusetCpus || undefined,
    cpusetMems: r.cpusetMems || undefined,
    memoryLimitBytes: fresh && !r.memoryLimitBytes ? undefined : r.memoryLimitBytes,
    // Paired with the memory limit: without one in a new cgroup there is nothing to pair.
    memorySwapLimitBytes: r.memorySwapLimitBytes && (r.memoryLimitBytes || !fresh) ? r.memorySwapLimitBytes : undefined,
    hugepageLimits: r.hugepageLimits.length > 0 ? r.hugepageLimits : undefined,
    unified: Object.keys(r.unified).length > 0 ? r.unified : undefined,
  };
}

/**
 * An update as a patch, as containerd merges one into the container's spec:
 * a zero or empty field leaves the current value (the kubelet's CPU manager
 * sends cpuset_cpus alone), and the OOM score is not the update's to change.
 */
function mergeResources(cur: ResourceSpec, upd: ResourceSpec): ResourceSpec {
  return {
    cpuPeriod: upd.cpuPeriod || cur.cpuPeriod,
    cpuQuota: upd.cpuQuota || cur.cpuQuota,
    cpuShares: upd.cpuShares || cur.cpuShares,
    memoryLimitBytes: upd.memoryLimitBytes || cur.memoryLimitBytes,
    cpusetCpus: upd.cpusetCpus || cur.cpusetCpus,
    cpusetMems: upd.cpusetMems || cur.cpusetMems,
    oomScoreAdj: cur.oomScoreAdj,
    memorySwapLimitBytes: upd.memorySwapLimitBytes || cur.memorySwapLimitBytes,
    hugepageLimits: upd.hugepageLimits.length > 0 ? upd.hugepageLimits : cur.hugepageLimits,
    unified: Object.keys(upd.unified).length > 0 ? upd.unified : cur.unified,
  };
}

/** Signals through a pidfd, so a reused pid is never hit. */
function signal(id: ProcessIdentity, sig: number): void {
  if (!isAlive(id)) return;
  const c = libc();
  let fd: number;
  try {
    fd = c.pidfdOpen(id.pid);
  } catch {
    return;
  }
  try {
    if (isAlive(id)) c.pidfdSendSignal(fd, sig);
  } finally {
    c.close(fd);
  }
}

async function killAndWait(id: ProcessIdentity): Promise<void> {
  signal(id, SIGKILL);
  for (let i = 0; i < 500 && isAlive(id); i++) await sleep(2);
}

/** Below this an exec's output is read synchronously: a trip through the thread pool costs more. */
const SYNC_READ_MAX = 256 * 1024;

/** One output file of an exec (in the state dir, a tmpfs on a node). */
function readOutput(path: string): Promise<Buffer> | Buffer {
  return statSync(path).size <= SYNC_READ_MAX ? readFileSync(path) : readFile(path);
}
