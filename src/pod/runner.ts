// The pod runner: pods by namespace/name, each with its own control loop,
// recorded under <root>/pods/<uid> so a restarted server takes them over.

import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { hostname, networkInterfaces, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ContainerManager } from '../container/manager.js';
import { alreadyExists, invalidArgument, notFound } from '../errors.js';
import type { ImageService } from '../image/service.js';
import type { HostNamespaces } from '../linux/namespaces.js';
import type { Logger } from '../log.js';
import type { SandboxManager } from '../sandbox/manager.js';
import { KeyedMutex } from '../util/mutex.js';
import { RecordStore } from '../util/records.js';
import { nodeAllocatable } from './allocatable.js';
import { newContainerRecords, PodController } from './controller.js';
import { parseManifests, type ParsedPod } from './manifest.js';
import { Actions } from './probes.js';
import { podView, type PodView } from './status.js';
import type { PodRecord } from './types.js';
import { teardownVolumes, type VolumeDirs } from './volumes.js';

export interface PodRunnerDeps {
  root: string;
  state: string;
  /** Where pod log directories go (the kubelet's /var/log/pods). */
  logRoot: string;
  sandboxes: SandboxManager;
  containers: ContainerManager;
  images: ImageService;
  hostNs: HostNamespaces;
  pull(ref: string, signal: AbortSignal): Promise<void>;
  log: Logger;
  /** First restart back-off (10 s; PEAPOD_BACKOFF_BASE_MS for tests). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  tickMs?: number;
  /** The cluster's DNS domain (cluster.local). */
  clusterDomain?: string;
  /** How often disk emptyDirs with a sizeLimit are measured (10 s; PEAPOD_EVICTION_PERIOD_MS for tests). */
  evictionPeriodMs?: number;
}

function firstHostIPv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export class PodRunner {
  private readonly pods = new Map<string, PodController>();
  private readonly store: RecordStore<PodRecord>;
  private readonly locks = new KeyedMutex();
  readonly nodeName = hostname().toLowerCase();
  private readonly hostIP = firstHostIPv4();
  private readonly actions: Actions;

  constructor(private readonly deps: PodRunnerDeps) {
    this.store = new RecordStore<PodRecord>(deps.root, deps.state, 'pods', (raw) => raw as PodRecord);
    this.actions = new Actions(deps.containers, deps.hostNs);
  }

  private controller(rec: PodRecord): PodController {
    const d = this.deps;
    return new PodController(rec, {
      sandboxes: d.sandboxes,
      containers: d.containers,
      images: d.images,
      actions: this.actions,
      pull: d.pull,
      log: d.log,
      logDir: (r) => this.logDir(r),
      volumeDirs: (uid) => this.volumeDirs(uid),
      etcHostsPath: (uid) => join(this.store.runtimeDir(uid), 'etc-hosts'),
      terminationLogPath: (uid, container, attempt) => join(this.store.recordDir(uid), 'containers', container, String(attempt)),
      seccompRoot: join(d.root, 'seccomp'),
      clusterDomain: d.clusterDomain ?? 'cluster.local',
      evictionPeriodMs: d.evictionPeriodMs ?? 10_000,
      save: (r) => this.store.save(r),
      backoffBaseMs: d.backoffBaseMs ?? 10_000,
      backoffMaxMs: d.backoffMaxMs ?? 300_000,
      nodeName: this.nodeName,
      hostIP: this.hostIP,
      memoryCapacity: totalmem(),
      allocatable: nodeAllocatable(),
      tickMs: d.tickMs ?? 200,
    });
  }

  logDir(rec: PodRecord): string {
    return join(this.deps.logRoot, `${rec.spec.namespace}_${rec.spec.name}_${rec.spec.uid}`);
  }

  private volumeDirs(uid: string): VolumeDirs {
    return { disk: join(this.store.recordDir(uid), 'volumes'), memory: join(this.store.runtimeDir(uid), 'volumes') };
  }

  /** Takes over every recorded pod; a pod deleted half-way is finished off. */
  async load(): Promise<void> {
    for (const rec of await this.store.loadAll(this.deps.log)) {
      const ctl = this.controller(rec);
      this.pods.set(key(rec.spec.namespace, rec.spec.name), ctl);
      if (rec.deleting) {
        void this.remove(ctl, 0).catch((err) => this.deps.log.error('finishing a pod deletion failed', { pod: ctl.key, err }));
      } else ctl.start();
    }
  }

  /** Parses a manifest and starts its pods; nothing starts unless every pod is valid and free. */
  async apply(text: string, source = 'api'): Promise<PodRecord[]> {
    const parsed = parseManifests(text);
    if (source.startsWith('file:')) for (const p of parsed) this.asStaticPod(p, source.slice(5));
    for (const p of parsed) {
      const k = key(p.spec.namespace, p.spec.name);
      if (this.pods.has(k)) throw alreadyExists(`pod "${p.spec.name}" already exists in namespace "${p.spec.namespace}"`);
    }
    const hash = createHash('sha256').update(text).digest('hex');
    return parsed.map((p) => this.create(p, source, hash));
  }

  /**
   * A static pod as the kubelet's file source makes it: named after the node
   * (`<name>-<node>`), and, given no uid, one derived from the pod, the node
   * and the file, so the same file gives the same uid after a restart.
   */
  private asStaticPod(p: ParsedPod, file: string): void {
    const name = `${p.spec.name}-${this.nodeName}`;
    if (name.length > 253) throw invalidArgument(`static pod name "${name}" (the pod's name and the node's) is longer than 253 characters`);
    p.spec.name = name;
    const given = (p.manifest as { metadata?: { uid?: unknown } }).metadata?.uid;
    if (!given) {
      p.spec.uid = createHash('sha256').update(JSON.stringify(p.manifest)).update(`host:${this.nodeName}`).update(`file:${file}`).digest('hex').slice(0, 32);
    }
    p.spec.annotations = { ...p.spec.annotations, 'kubernetes.io/config.hash': p.spec.uid };
  }

  private create(p: ParsedPod, source: string, sourceHash: string): PodRecord {
    const rec: PodRecord = {
      id: p.spec.uid,
      spec: p.spec,
      manifest: p.manifest,
      source,
      sourceHash,
      createdAt: Date.now(),
      startTime: 0,
      sandboxId: '',
      sandboxAttempt: 0,
      podIP: '',
      hostIP: this.hostIP,
      phase: 'Pending',
      reason: '',
      message: '',
      initialized: false,
      deleting: false,
      containers: newContainerRecords(p.spec),
      events: [],
    };
    if (this.store && existsSync(join(this.store.recordDir(rec.id), 'record.json'))) {
      throw alreadyExists(`a pod with uid ${rec.id} already exists`);
    }
    const ctl = this.controller(rec);
    ctl.event('Normal', 'Scheduled', 'pod', `Successfully assigned ${p.spec.namespace}/${p.spec.name} to ${this.nodeName}`);
    // Written here, not by ctl.save (which only logs a failure): no pod starts without its record.
    this.store.save(rec);
    this.pods.set(key(p.spec.namespace, p.spec.name), ctl);
    ctl.start();
    this.deps.log.info('pod created', { pod: ctl.key, uid: rec.id, source });
    return rec;
  }

  private get(namespace: string, name: string): PodController {
    if (!name) throw invalidArgument('pod name is required');
    const ctl = this.pods.get(key(namespace || 'default', name));
    if (!ctl) throw notFound(`pod "${name}" not found in namespace "${namespace || 'default'}"`);
    return ctl;
  }

  list(namespace?: string): PodView[] {
    return [...this.pods.values()]
      .filter((c) => !namespace || c.spec.namespace === namespace)
      .sort((a, b) => a.key.localeCompare(b.key))
      .map((c) => podView(c, this.nodeName));
  }

  view(namespace: string, name: string): PodView {
    return podView(this.get(namespace, name), this.nodeName);
  }

  /** Pods a source (a static manifest file) created: [namespace/name, hash]. */
  bySource(source: string): Array<{ namespace: string; name: string; hash: string }> {
    return [...this.pods.values()]
      .filter((c) => c.rec.source === source && !c.rec.deleting)
      .map((c) => ({ namespace: c.spec.namespace, name: c.spec.name, hash: c.rec.sourceHash }));
  }

  sources(): string[] {
    return [...new Set([...this.pods.values()].map((c) => c.rec.source))];
  }

  /** The CRI log file of a container (the current instance, or the previous one); `last`: no instance will follow it. */
  logPath(namespace: string, name: string, container: string, previous: boolean): { path: string; container: string; attempt: number; last: boolean } {
    const ctl = this.get(namespace, name);
    const rec = ctl.rec;
    let c = container ? rec.containers.find((x) => x.name === container) : undefined;
    if (container && !c) throw notFound(`container "${container}" is not in pod "${name}"`);
    if (!c) {
      const apps = rec.containers.filter((x) => x.kind === 'app');
      if (apps.length > 1) {
        throw invalidArgument(`a container name must be specified for pod ${name}, choose one of: [${apps.map((x) => x.name).join(' ')}]`);
      }
      c = apps[0]!;
    }
    if (c.instances === 0) throw notFound(`container "${c.name}" in pod "${name}" has not started yet`);
    const attempt = previous ? c.instances - 2 : c.instances - 1;
    if (attempt < 0) throw notFound(`previous terminated container "${c.name}" in pod "${name}" not found`);
    // The current instance is the last once the pod is over (every container is reaped before the phase is
    // set), or once it has exited with no restart pending; either way its log is then complete.
    const over = rec.phase === 'Succeeded' || rec.phase === 'Failed';
    const last = !previous && (over || (c.terminated !== null && !ctl.restartPending(c)));
    return { path: join(this.logDir(rec), c.name, `${attempt}.log`), container: c.name, attempt, last };
  }

  /** The container's current CRI id (for exec). */
  containerId(namespace: string, name: string, container: string): string {
    const rec = this.get(namespace, name).rec;
    const apps = rec.containers.filter((x) => x.kind === 'app');
    const c = container ? rec.containers.find((x) => x.name === container) : apps[0];
    if (!c) throw notFound(`container "${container}" is not in pod "${name}"`);
    if (!c.containerId || c.terminated) throw invalidArgument(`container "${c.name}" in pod "${name}" is not running`);
    return c.containerId;
  }

  /** Stops every container (preStop + grace; force: at once) and removes the pod with all it made. */
  async delete(namespace: string, name: string, gracePeriodSeconds: number, force: boolean): Promise<void> {
    const ctl = this.get(namespace, name);
    const grace = force ? 0 : gracePeriodSeconds >= 0 ? gracePeriodSeconds : ctl.spec.terminationGracePeriodSeconds;
    await this.remove(ctl, grace);
  }

  private async remove(ctl: PodController, grace: number): Promise<void> {
    await this.locks.run(ctl.rec.id, async () => {
      const rec = ctl.rec;
      if (!this.pods.has(ctl.key) || this.pods.get(ctl.key) !== ctl) return;
      rec.deleting = true;
      ctl.save(true);
      ctl.event('Normal', 'Killing', 'pod', `Stopping pod (grace period ${grace}s)`);
      await ctl.stopLoop(grace * 1000 + 2000);
      await ctl.killAll(grace);
      if (rec.sandboxId) await this.deps.sandboxes.remove(rec.sandboxId);
      // A start still under way (a long pull) must not write the record again once it is gone.
      ctl.dispose();
      teardownVolumes(this.volumeDirs(rec.id));
      await this.store.removeFiles(rec.id);
      rmSync(this.logDir(rec), { recursive: true, force: true });
      this.pods.delete(ctl.key);
      this.deps.log.info('pod deleted', { pod: ctl.key, uid: rec.id });
    });
  }

  /**
   * Stops every control loop (pods keep running; a restarted server takes them
   * over). A sync under way (a container's stop waits out its grace period) is
   * waited for `waitMs` at most: records are crash-safe.
   */
  async close(waitMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.pods.values()].map((c) => c.stopLoop(0))),
      new Promise((resolve) => (timer = setTimeout(resolve, waitMs))),
    ]);
    clearTimeout(timer);
  }
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
