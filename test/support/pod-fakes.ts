// Fakes of what the pod runner drives (sandboxes, containers, images, pulls,
// hook and probe actions), keeping a log of what was asked of them, so the
// kubelet's pod semantics can be tested in the controller alone.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerManager } from '../../src/container/manager.js';
import type { ContainerSpec } from '../../src/container/types.js';
import { notFound } from '../../src/errors.js';
import type { ImageService } from '../../src/image/service.js';
import type { HostNamespaces } from '../../src/linux/namespaces.js';
import { createLogger } from '../../src/log.js';
import { type ControllerDeps, newContainerRecords, PodController } from '../../src/pod/controller.js';
import { parseManifests } from '../../src/pod/manifest.js';
import type { ProbeResult } from '../../src/pod/probe-child.js';
import type { Actions } from '../../src/pod/probes.js';
import { nodeAllocatable } from '../../src/pod/allocatable.js';
import type { PodRunnerDeps } from '../../src/pod/runner.js';
import type { Handler, PodRecord } from '../../src/pod/types.js';
import type { SandboxManager } from '../../src/sandbox/manager.js';

/** How a fake container's program behaves. */
export interface Behaviour {
  /** Exits on its own this long after its start (by default it runs until stopped). */
  runMs?: number;
  exitCode?: number;
  /** Its exit code on the stop signal (143 unless given; 0: a program that exits 0 on SIGTERM). SIGKILL is 137. */
  onStop?: number;
  /** The start fails and no exit is reported: the container stays CREATED, as after ContainerManager.start's 2 s wait. */
  startFails?: boolean;
}

interface FakeExit {
  exitCode: number;
  signal: number;
  reason: string;
  message: string;
  finishedAt: bigint;
}

export interface FakeContainer {
  id: string;
  name: string;
  sandboxId: string;
  startedAt: bigint;
  exit: FakeExit | null;
}

const nowNs = () => BigInt(Date.now()) * 1_000_000n;

export class FakeNode {
  /** What was done, in order: "create a", "start a", "stop a 2" (the grace), "exit a 0", "hook a CMD", "probe a CMD", "pull IMAGE", "sandbox run|stop|remove". */
  readonly log: string[] = [];
  readonly ctrs = new Map<string, FakeContainer>();
  readonly sandboxReady = new Map<string, boolean>();
  readonly dir = mkdtempSync(join(tmpdir(), 'peapod-pod-fakes-'));
  /** The behaviour of a container's `attempt`th instance (0 first). */
  behaviour: (name: string, attempt: number) => Behaviour = () => ({});
  /** A hook (hook true) or probe action, for the container named; an exec's command is in h.exec. */
  action: (h: Handler, container: string, hook: boolean) => Promise<ProbeResult> = async () => ({ ok: true, message: '' });
  pull: (ref: string) => Promise<void> = async () => {};
  sandboxFails = false;
  /** Awaited by a sandbox stop (after its log line), before the sandbox turns not ready. */
  sandboxStop: () => Promise<void> = async () => {};
  private n = 0;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly controllers: PodController[] = [];

  private ctr(id: string): FakeContainer {
    const c = this.ctrs.get(id);
    if (!c) throw notFound(`container ${id} not found`);
    return c;
  }

  private end(c: FakeContainer, exitCode: number): void {
    if (c.exit) return;
    c.exit = { exitCode, signal: 0, reason: exitCode === 0 ? 'Completed' : 'Error', message: '', finishedAt: nowNs() };
    this.log.push(`exit ${c.name} ${exitCode}`);
  }

  readonly containers = {
    get: (id: string) => this.ctr(id),
    stateOf: (c: FakeContainer) => (c.exit ? 'EXITED' : c.startedAt > 0n ? 'RUNNING' : 'CREATED'),
    create: async (sandboxId: string, spec: ContainerSpec) => {
      if (!this.sandboxReady.get(sandboxId)) throw new Error(`sandbox ${sandboxId} is not ready`);
      const id = `c${++this.n}-${spec.name}-${spec.attempt}`;
      this.ctrs.set(id, { id, name: spec.name, sandboxId, startedAt: 0n, exit: null });
      this.log.push(`create ${spec.name}`);
      return { id };
    },
    start: async (id: string) => {
      const c = this.ctr(id);
      const attempt = Number(id.split('-').pop());
      const b = this.behaviour(c.name, attempt);
      if (b.startFails) throw new Error('the container did not report its start');
      c.startedAt = nowNs();
      this.log.push(`start ${c.name}`);
      if (b.runMs !== undefined) {
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.end(c, b.exitCode ?? 0);
        }, b.runMs);
        this.timers.add(t);
      }
    },
    stop: async (id: string, timeoutSeconds: number) => {
      const c = this.ctrs.get(id);
      if (!c || c.exit) return;
      this.log.push(`stop ${c.name} ${timeoutSeconds}`);
      const attempt = Number(id.split('-').pop());
      this.end(c, c.startedAt === 0n || timeoutSeconds <= 0 ? 137 : (this.behaviour(c.name, attempt).onStop ?? 143));
    },
    remove: async (id: string) => {
      this.ctrs.delete(id);
    },
    execSync: async () => ({ stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), exitCode: 0 }),
  };

  readonly sandboxes = {
    run: async () => {
      if (this.sandboxFails) throw new Error('CNI plugin failed');
      const id = `sb${++this.n}`;
      this.sandboxReady.set(id, true);
      this.log.push('sandbox run');
      return { id, network: { ip: '10.88.0.2', additionalIps: [] } };
    },
    get: (id: string) => {
      if (!this.sandboxReady.has(id)) throw notFound(`sandbox ${id} not found`);
      return { id, namespaces: { net: undefined } };
    },
    stateOf: (sb: { id: string }) => (this.sandboxReady.get(sb.id) ? 'READY' : 'NOTREADY'),
    stop: async (id: string) => {
      this.log.push('sandbox stop');
      await this.sandboxStop();
      this.sandboxReady.set(id, false);
    },
    remove: async (id: string) => {
      this.sandboxReady.delete(id);
      this.log.push('sandbox remove');
    },
  };

  readonly images = { resolve: () => ({ config: { User: '' } }) } as unknown as ImageService;

  private readonly actions = {
    run: async (h: Handler, t: { containerId: string }, _timeout: number, hook = false) => {
      const name = this.ctrs.get(t.containerId)?.name ?? '?';
      if (h.exec) this.log.push(`${hook ? 'hook' : 'probe'} ${name} ${h.exec.command.join(' ')}`);
      return this.action(h, name, hook);
    },
  } as unknown as Actions;

  /** A controller of the pod in `yaml` (not started), on this node; back-off 10 s as the kubelet's unless given. */
  controller(yaml: string, backoffBaseMs = 10_000): PodController {
    const spec = parseManifests(yaml)[0]!.spec;
    const rec: PodRecord = {
      id: spec.uid,
      spec,
      manifest: {},
      source: 'api',
      sourceHash: '',
      createdAt: Date.now(),
      startTime: 0,
      sandboxId: '',
      sandboxAttempt: 0,
      podIP: '',
      hostIP: '10.0.0.1',
      phase: 'Pending',
      reason: '',
      message: '',
      initialized: false,
      deleting: false,
      containers: newContainerRecords(spec),
      events: [],
    };
    const deps: ControllerDeps = {
      sandboxes: this.sandboxes as unknown as SandboxManager,
      containers: this.containers as unknown as ContainerManager,
      images: this.images,
      actions: this.actions,
      pull: (ref) => this.pulled(ref),
      log: createLogger('error', () => {}),
      logDir: () => join(this.dir, 'logs'),
      volumeDirs: (uid) => ({ disk: join(this.dir, 'root', uid, 'volumes'), memory: join(this.dir, 'state', uid, 'volumes') }),
      etcHostsPath: (uid) => join(this.dir, 'state', uid, 'etc-hosts'),
      terminationLogPath: (uid, container, attempt) => join(this.dir, 'root', uid, 'containers', container, String(attempt)),
      seccompRoot: join(this.dir, 'seccomp'),
      clusterDomain: 'cluster.local',
      evictionPeriodMs: 10_000,
      save: () => {},
      backoffBaseMs,
      backoffMaxMs: 300_000,
      nodeName: 'node',
      hostIP: '10.0.0.1',
      memoryCapacity: 8 * 2 ** 30,
      allocatable: nodeAllocatable(8 * 2 ** 30, 2),
      tickMs: 20,
    };
    const ctl = new PodController(rec, deps);
    this.controllers.push(ctl);
    return ctl;
  }

  /** What a PodRunner on this node needs, with its roots in the node's directory. */
  runnerDeps(): PodRunnerDeps {
    return {
      root: join(this.dir, 'root'),
      state: join(this.dir, 'state'),
      logRoot: join(this.dir, 'logs'),
      sandboxes: this.sandboxes as unknown as SandboxManager,
      containers: this.containers as unknown as ContainerManager,
      images: this.images,
      hostNs: {} as HostNamespaces,
      pull: (ref) => this.pulled(ref),
      log: createLogger('error', () => {}),
      tickMs: 20,
    };
  }

  private pulled(ref: string): Promise<void> {
    this.log.push(`pull ${ref}`);
    return this.pull(ref);
  }

  /** Ends every controller's loop and the containers' timers, and removes the directory. */
  async dispose(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.stopLoop(0)));
    for (const t of this.timers) clearTimeout(t);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A gate a fake action or pull waits at until opened. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}
