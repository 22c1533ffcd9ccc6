// One pod's control loop: the kubelet's pod semantics (sandbox, init
// containers in order, sidecars, app containers, restart policy with back-off,
// hooks, probes, deadline) over the server's own sandbox and container managers.

import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { criLogMessages } from '../container/logs.js';
import type { ContainerManager } from '../container/manager.js';
import { readSeccompProfile } from '../container/seccomp-profile.js';
import type { ContainerSpec, SeccompMode } from '../container/types.js';
import { isKind } from '../errors.js';
import type { ImageService } from '../image/service.js';
import type { Logger } from '../log.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { SandboxSpec } from '../sandbox/types.js';
import { goDuration, sleep } from '../util/time.js';
import type { Allocatable } from './allocatable.js';
import { containerEnv, expandArgs } from './env.js';
import { etcHostsContent, podHostname } from './hosts.js';
import { type ActionTarget, Actions, ProbeWorker } from './probes.js';
import { oomScoreAdj } from './qos.js';
import type { ContainerRecord, PodContainer, PodEvent, PodRecord, PodSpec, Probe, ProbeKind, ProbeStatus, SeccompSetting, Terminated } from './types.js';
import { containerMounts, diskUsage, prepareVolumes, removeVolumes, volumePath, type VolumeDirs } from './volumes.js';

export interface ControllerDeps {
  sandboxes: SandboxManager;
  containers: ContainerManager;
  images: ImageService;
  actions: Actions;
  /** Pulls an image through the server's registry configuration; `signal` gives it up. */
  pull(ref: string, signal: AbortSignal): Promise<void>;
  log: Logger;
  /** The pod's log directory (<logRoot>/<ns>_<name>_<uid>). */
  logDir(rec: PodRecord): string;
  volumeDirs(uid: string): VolumeDirs;
  /** The pod's managed /etc/hosts, mounted into each of its containers. */
  etcHostsPath(uid: string): string;
  /** The file an instance may write its termination message to (the kubelet's <pod dir>/containers/<name>/…). */
  terminationLogPath(uid: string, container: string, attempt: number): string;
  /** Where Localhost seccomp profiles are looked up (<root>/seccomp, as the kubelet's <root-dir>/seccomp). */
  seccompRoot: string;
  /** The cluster's DNS domain, for the hosts entry of a pod with a subdomain. */
  clusterDomain: string;
  /** How often disk emptyDirs with a sizeLimit are measured (the kubelet's eviction manager: 10 s). */
  evictionPeriodMs: number;
  save(rec: PodRecord): void;
  backoffBaseMs: number;
  backoffMaxMs: number;
  nodeName: string;
  hostIP: string;
  /** The node's memory in bytes: a Burstable container's OOM score adjustment is its request's share of it. */
  memoryCapacity: number;
  /** What a container or pod without a limit is limited by (downward API, memory emptyDirs). */
  allocatable: Allocatable;
  tickMs: number;
}

/** A container that ran this long before exiting gets its back-off reset (10 minutes). */
const BACKOFF_RESET_MS = 10 * 60 * 1000;
/** The kubelet never gives a container less than this after preStop. */
const MIN_GRACE_SECONDS = 2;
const MAX_EVENTS = 100;
/** The kubelet reads at most this much of a termination-message file (its last bytes). */
const MAX_TERMINATION_MESSAGE = 4096;
/** FallbackToLogsOnError: the log's last lines, and of those the last bytes, as the kubelet takes them. */
const TERMINATION_LOG_LINES = 80;
const TERMINATION_LOG_BYTES = 2048;
const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';

/** Start failures before any container exists: shown until the next try, as the kubelet shows them, not as CrashLoopBackOff. */
const CONFIG_FAILURES = new Set(['CreateContainerConfigError', 'CreateContainerError', 'ErrImageNeverPull']);

class StartError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const ms = (ns: bigint) => Number(ns / 1_000_000n);

/** `p`, or `timedOut` once `limitMs` have passed; the timer goes either way. */
function within<T>(p: Promise<T>, limitMs: number, timedOut: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(timedOut), limitMs)));
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

export class PodController {
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  /** Aborted when the loop is stopped (deletion, shutdown): a sandbox being made then goes, CNI ADD and all, and a pull stops, as in the kubelet's cancelled sync. */
  private loopAbort = new AbortController();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly probes = new Map<string, ProbeWorker[]>();
  /** Kills under way, by container id: what they wait for, and until when their grace runs. */
  private readonly kills = new Map<string, { done: Promise<void>; deadline: number }>();
  /** Set once the pod ends (finish): a start under way goes no further than its create. */
  private ending = false;
  /** Set once the pod is deleted: nothing it still does (a start finishing late) writes its record again. */
  private disposed = false;
  private sandboxRetryAt = 0;
  private sandboxBackoff = 0;
  private lastSaved = '';
  private saveFailing = false;
  private resumed = false;
  private measuring = false;
  private nextMeasureAt = 0;
  /** Set by a measurement that found an emptyDir over its sizeLimit: the eviction message. */
  private evictWith = '';

  constructor(
    readonly rec: PodRecord,
    private readonly deps: ControllerDeps,
  ) {}

  get hostIP(): string {
    return this.deps.hostIP;
  }

  get spec(): PodSpec {
    return this.rec.spec;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopAbort = new AbortController();
    this.loopDone = this.loop();
  }

  /** Ends the loop and waits for container starts under way (at most `waitMs`). */
  async stopLoop(waitMs = 5000): Promise<void> {
    this.running = false;
    this.loopAbort.abort(new Error('the pod is being stopped'));
    await this.loopDone;
    await this.settleStarts(waitMs);
    for (const ws of this.probes.values()) for (const w of ws) w.stop();
    this.probes.clear();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        await this.tick();
      } catch (err) {
        this.deps.log.error('pod sync failed', { pod: this.key, err });
      }
      this.save();
      if (this.running) await sleep(this.deps.tickMs);
    }
  }

  /** Waits for the container starts under way, at most `waitMs`. */
  private async settleStarts(waitMs: number): Promise<void> {
    await within(Promise.allSettled([...this.inFlight.values()]), waitMs, []);
  }

  /** May a start under way go on to create its container? */
  private get mayStart(): boolean {
    return this.running && !this.ending;
  }

  /** The pod was deleted and its files removed: from now on its record is never written. */
  dispose(): void {
    this.disposed = true;
  }

  get key(): string {
    return `${this.spec.namespace}/${this.spec.name}`;
  }

  /**
   * Writes the record when it changed. A failed write (a full disk) is
   * logged, never thrown: the pod keeps running and the next sync retries.
   */
  save(force = false): void {
    if (this.disposed) return;
    const json = JSON.stringify(this.rec);
    if (!force && json === this.lastSaved) return;
    try {
      this.deps.save(this.rec);
      this.lastSaved = json;
      this.saveFailing = false;
    } catch (err) {
      this.lastSaved = '';
      // Once per run of failures, not at every sync.
      if (!this.saveFailing) this.deps.log.warn('writing the pod record failed; retrying at every sync', { pod: this.key, err });
      this.saveFailing = true;
    }
  }

  event(type: PodEvent['type'], reason: string, object: string, message: string): void {
    const evs = this.rec.events;
    const last = evs.find((e) => e.reason === reason && e.object === object && e.message === message && e.type === type);
    if (last) {
      last.count++;
      last.time = Date.now();
      evs.splice(evs.indexOf(last), 1);
      evs.push(last);
    } else {
      const now = Date.now();
      evs.push({ time: now, first: now, type, reason, object, message, count: 1 });
    }
    if (evs.length > MAX_EVENTS) evs.splice(0, evs.length - MAX_EVENTS);
  }

  private objectOf(c: ContainerRecord): string {
    return `spec.${c.kind === 'app' ? 'containers' : 'initContainers'}{${c.name}}`;
  }

  specOf(c: ContainerRecord): PodContainer {
    const list = c.kind === 'app' ? this.spec.containers : this.spec.initContainers;
    return list.find((x) => x.name === c.name)!;
  }

  private get terminal(): boolean {
    return this.rec.phase === 'Succeeded' || this.rec.phase === 'Failed';
  }

  // ------------------------------------------------------------- the sync

  async tick(): Promise<void> {
    const rec = this.rec;
    if (rec.deleting) return;
    if (!this.resumed) this.resume();
    if (this.terminal) {
      if (rec.tearingDown) await this.tearDown();
      return;
    }
    const now = Date.now();
    // As the kubelet's status manager: the pod starts at its first sync, sandbox or not, and its deadline counts from there.
    if (!rec.startTime) rec.startTime = now;
    if (this.evictWith) {
      await this.evict(this.evictWith);
      return;
    }
    this.measureEmptyDirs(now);

    if (this.spec.activeDeadlineSeconds !== null && now - rec.startTime >= this.spec.activeDeadlineSeconds * 1000) {
      this.event('Normal', 'DeadlineExceeded', 'pod', `Pod was active on the node longer than the specified deadline`);
      await this.finish('Failed', 'DeadlineExceeded', 'Pod was active on the node longer than the specified deadline');
      return;
    }

    this.observeExits();
    if (!(await this.ensureSandbox())) return;

    const inits = rec.containers.filter((c) => c.kind !== 'app');
    if (!rec.initialized) {
      // As computeInitContainerActions: a sidecar before the last init
      // container made in this sandbox was initialized already; it restarts
      // on its own back-off and holds up nothing after it.
      const last = inits.findLastIndex((c) => this.madeInSandbox(c));
      let all = true;
      for (const [i, c] of inits.entries()) {
        if (c.kind === 'sidecar') {
          if (!this.isRunning(c) && !this.inFlight.has(c.name)) this.maybeStart(c, true);
          if (i < last || (this.isRunning(c) && c.started)) continue;
          all = false;
          break;
        }
        if (c.succeeded) continue;
        all = false;
        if (this.isRunning(c) || this.inFlight.has(c.name)) break;
        if (c.terminated && c.terminated.exitCode !== 0 && this.spec.restartPolicy === 'Never') {
          await this.finish('Failed', '', `init container ${c.name} failed with exit code ${c.terminated.exitCode}`);
          return;
        }
        this.maybeStart(c, c.terminated !== null);
        break;
      }
      if (all) rec.initialized = true;
    }

    if (rec.initialized) {
      // Sidecars keep running (restartPolicy Always) alongside the app containers.
      for (const c of inits) {
        if (c.kind === 'sidecar' && !this.isRunning(c) && !this.inFlight.has(c.name)) this.maybeStart(c, true);
      }
      // In order, none while an earlier one is being started: the kubelet's SyncPod starts
      // them one by one, each with its postStart hook (what holdApplicationUntilProxyStarts needs).
      for (const c of rec.containers) {
        if (c.kind !== 'app') continue;
        if (!this.isRunning(c) && !this.inFlight.has(c.name)) {
          if (c.instances === 0 && !c.terminated) this.maybeStart(c, false);
          else if (this.willRestart(c)) this.maybeStart(c, true);
        }
        if (this.inFlight.has(c.name)) break;
      }
    }
    const phase = this.podPhase();
    if (phase === 'Succeeded' || phase === 'Failed') await this.finish(phase, '', '');
    else rec.phase = phase;
  }

  /** After a server restart: probes and post-start state for containers already running. */
  private resume(): void {
    this.resumed = true;
    for (const c of this.rec.containers) {
      if (!c.containerId || c.terminated) continue;
      const st = this.instanceState(c.containerId);
      if (st === 'RUNNING') {
        c.postStartDone = true;
        this.startProbes(c);
      }
    }
  }

  private instanceState(id: string): 'CREATED' | 'RUNNING' | 'EXITED' | 'UNKNOWN' | 'GONE' {
    try {
      return this.deps.containers.stateOf(this.deps.containers.get(id));
    } catch {
      return 'GONE';
    }
  }

  /** Has an instance of the container been made in the current sandbox (being started counts)? */
  private madeInSandbox(c: ContainerRecord): boolean {
    if (this.inFlight.has(c.name)) return true;
    if (!c.containerId) return false;
    try {
      return this.deps.containers.get(c.containerId).sandboxId === this.rec.sandboxId;
    } catch {
      return false;
    }
  }

  isRunning(c: ContainerRecord): boolean {
    return c.containerId !== '' && c.terminated === null && !this.inFlight.has(c.name);
  }

  private willRestart(c: ContainerRecord): boolean {
    if (c.kind === 'sidecar') return true;
    if (c.kind === 'init') return !c.succeeded && this.spec.restartPolicy !== 'Never';
    if (!c.terminated) return c.instances > 0;
    if (c.probeKilled === c.terminated.containerId) return true;
    const p = this.spec.restartPolicy;
    return p === 'Always' || (p === 'OnFailure' && c.terminated.exitCode !== 0);
  }

  /** Will the container be started again (after its back-off)? For status display. */
  restartPending(c: ContainerRecord): boolean {
    return !this.terminal && !this.rec.deleting && c.terminated !== null && this.willRestart(c);
  }

  /**
   * As the kubelet's getPhase: Pending while a regular init container is yet
   * to run or running (in a new sandbox too) or an app container is yet to start.
   */
  private podPhase(): PodRecord['phase'] {
    if (this.rec.containers.some((c) => c.kind === 'init' && (this.inFlight.has(c.name) || this.isRunning(c) || (c.instances === 0 && !c.terminated)))) {
      return 'Pending';
    }
    let waiting = 0;
    let running = 0;
    let stopped = 0;
    let succeeded = 0;
    for (const c of this.rec.containers) {
      if (c.kind !== 'app') continue;
      if (this.isRunning(c) || this.inFlight.has(c.name)) {
        if (c.instances === 0) waiting++;
        else running++;
      } else if (c.terminated && !this.willRestart(c)) {
        stopped++;
        if (c.terminated.exitCode === 0) succeeded++;
      } else if (c.instances === 0 && !c.terminated) waiting++;
      else running++;
    }
    if (waiting > 0) return 'Pending';
    if (running > 0) return 'Running';
    return stopped === succeeded ? 'Succeeded' : 'Failed';
  }

  /**
   * Ends the pod: every container stopped, the phase final, then the sandbox
   * stopped and the volumes torn down (as the kubelet's for a terminated pod;
   * the logs stay). The kubelet's phase follows the containers' states at once,
   * so the view never shows them all ended under a live phase; a restart in
   * between finishes the tear-down (see tick).
   */
  private async finish(phase: 'Succeeded' | 'Failed', reason: string, message: string, graceSeconds = this.spec.terminationGracePeriodSeconds): Promise<void> {
    this.ending = true;
    await this.killAll(graceSeconds);
    // A start under way (a pull, a postStart hook) stops before its create or
    // ends with the kill: wait for it as a deletion does, and kill what it made meanwhile.
    await this.settleStarts((graceSeconds + MIN_GRACE_SECONDS) * 1000);
    await this.killAll(graceSeconds);
    this.observeExits();
    for (const c of this.rec.containers) c.ready = false;
    Object.assign(this.rec, { phase, reason, message, tearingDown: true });
    this.save();
    await this.tearDown();
  }

  private async tearDown(): Promise<void> {
    if (this.rec.sandboxId) {
      await this.deps.sandboxes.stop(this.rec.sandboxId).catch((err) => this.deps.log.warn('stopping a finished pod sandbox failed', { pod: this.key, err }));
    }
    await removeVolumes(this.deps.volumeDirs(this.rec.id)).catch((err) => this.deps.log.warn('tearing down a finished pod\'s volumes failed', { pod: this.key, err }));
    delete this.rec.tearingDown;
    this.save();
  }

  /** Records the exits of instances that stopped since the last sync. */
  private observeExits(): void {
    for (const c of this.rec.containers) {
      if (!c.containerId || c.terminated || this.inFlight.has(c.name)) continue;
      const id = c.containerId;
      const st = this.instanceState(id);
      if (st === 'RUNNING' || st === 'CREATED') {
        if (st === 'CREATED') {
          // A start interrupted by a server restart: nothing runs; start again.
          void this.deps.containers.remove(id).catch(() => {});
          c.containerId = '';
        }
        continue;
      }
      let t: Terminated;
      if (st === 'EXITED') {
        const ctr = this.deps.containers.get(id);
        const e = ctr.exit!;
        t = {
          exitCode: e.exitCode,
          signal: e.signal,
          reason: e.reason,
          message: this.terminationMessage(c, e.exitCode, e.message),
          startedAt: ms(ctr.startedAt),
          finishedAt: ms(e.finishedAt),
          containerId: id,
        };
      } else {
        const now = Date.now();
        t = { exitCode: 255, signal: 0, reason: 'Error', message: 'the container is gone', startedAt: c.startedAt, finishedAt: now, containerId: id };
      }
      this.recordExit(c, t);
    }
  }

  /**
   * As the kubelet's getTerminationMessage: the runtime's message, then what
   * the instance wrote to its termination-message file (its last 4 KiB);
   * with FallbackToLogsOnError, a failed instance that wrote nothing gets the
   * end of its log instead.
   */
  private terminationMessage(c: ContainerRecord, exitCode: number, runtimeMessage: string): string {
    const spec = this.specOf(c);
    const attempt = c.instances - 1;
    let written = tailOf(this.deps.terminationLogPath(this.rec.id, c.name, attempt), MAX_TERMINATION_MESSAGE).data.toString('utf8');
    if (written === '' && exitCode !== 0 && spec.terminationMessagePolicy === 'FallbackToLogsOnError') {
      const { data, from } = tailOf(join(this.deps.logDir(this.rec), c.name, `${attempt}.log`), 256 * 1024);
      // Read from the middle of the file: its first line is only a part.
      const log = data.toString('utf8');
      const lines = criLogMessages(from > 0 ? log.slice(log.indexOf('\n') + 1) : log).split('\n');
      const last = Buffer.from(lines.slice(-TERMINATION_LOG_LINES - 1).join('\n'));
      written = last.subarray(Math.max(0, last.length - TERMINATION_LOG_BYTES)).toString('utf8');
    }
    return runtimeMessage && written ? `${runtimeMessage}: ${written}` : runtimeMessage || written;
  }

  /** The instance's end, and when the next may start (the back-off). */
  private recordExit(c: ContainerRecord, t: Terminated): void {
    this.stopProbes(c.name);
    c.terminated = t;
    c.ready = false;
    if (c.kind === 'init' && t.exitCode === 0) c.succeeded = true;
    // Only a container that ran counts: a failed start (StartError) has no start time.
    if (t.startedAt > 0 && t.finishedAt - t.startedAt >= BACKOFF_RESET_MS) c.backoffMs = 0;
    this.backOff(c, t.finishedAt, c.backoffMs);
    c.backoffMs = this.nextBackoff(c.backoffMs);
  }

  private backOff(c: ContainerRecord, from: number, ms: number): void {
    c.nextStartAt = from + ms;
    c.currentBackoffMs = ms;
  }

  private nextBackoff(cur: number): number {
    return Math.min(Math.max(this.deps.backoffBaseMs, cur * 2), this.deps.backoffMaxMs);
  }

  // ------------------------------------------------------------ sandbox

  /**
   * A sandbox that is no longer ready (pause died) is replaced as the kubelet
   * does: the pod's containers are killed (their exits recorded), the old
   * sandbox goes, and a new one with the next attempt number is made, in
   * which init containers run again and the containers restart by the
   * restart policy — unless computePodActions would make none (see
   * wantsNewSandbox); then the pod ends.
   */
  private async ensureSandbox(): Promise<boolean> {
    const rec = this.rec;
    const { sandboxes } = this.deps;
    if (rec.sandboxId) {
      try {
        if (sandboxes.stateOf(sandboxes.get(rec.sandboxId)) === 'READY') return true;
      } catch {
        // gone
      }
      this.event('Normal', 'SandboxChanged', 'pod', 'Pod sandbox changed, it will be killed and re-created.');
      await this.killAll(this.spec.terminationGracePeriodSeconds);
      this.observeExits();
      await sandboxes.remove(rec.sandboxId).catch((err) => this.deps.log.warn('removing a dead sandbox failed', { err }));
      rec.sandboxId = '';
      this.save(true);
    }
    if (rec.sandboxAttempt > 0 && !this.wantsNewSandbox()) {
      const phase = this.podPhase();
      if (phase === 'Succeeded' || phase === 'Failed') await this.finish(phase, '', '');
      else await this.finish('Failed', '', 'The pod sandbox died and the restart policy runs no container again.');
      return false;
    }
    if (Date.now() < this.sandboxRetryAt) return false;
    try {
      prepareVolumes(this.spec, this.deps.volumeDirs(rec.id), this.deps.allocatable);
    } catch (err) {
      this.event('Warning', 'FailedMount', 'pod', (err as Error).message);
      this.retrySandboxLater();
      return false;
    }
    try {
      const sb = await sandboxes.run(this.sandboxSpec(), this.loopAbort.signal);
      rec.sandboxId = sb.id;
      rec.podIP = this.spec.hostNetwork ? this.deps.hostIP : sb.network.ip;
      if (rec.sandboxAttempt > 0) {
        // A new sandbox: everything runs again in it, init containers first.
        rec.initialized = false;
        for (const c of rec.containers) if (c.kind === 'init') c.succeeded = false;
      }
      rec.sandboxAttempt++;
      this.sandboxBackoff = 0;
      this.save(true);
      return true;
    } catch (err) {
      // Given up on (the pod is going): not a failure of the sandbox.
      if (this.loopAbort.signal.aborted) return false;
      this.event('Warning', 'FailedCreatePodSandBox', 'pod', `Failed to create pod sandbox: ${(err as Error).message}`);
      this.retrySandboxLater();
      return false;
    }
  }

  /**
   * The kubelet's computePodActions for a pod that had a sandbox: no new one
   * with restartPolicy Never once any container was created, nor when the
   * init containers are done and no app container is left to run (OnFailure
   * skips those that succeeded).
   */
  private wantsNewSandbox(): boolean {
    const { rec, spec } = this;
    if (spec.restartPolicy === 'Never' && rec.containers.some((c) => c.instances > 0)) return false;
    const toStart = rec.containers.filter((c) => c.kind === 'app' && !(spec.restartPolicy === 'OnFailure' && c.terminated?.exitCode === 0));
    return toStart.length > 0 || !rec.initialized;
  }

  private retrySandboxLater(): void {
    this.sandboxBackoff = this.nextBackoff(this.sandboxBackoff);
    this.sandboxRetryAt = Date.now() + this.sandboxBackoff;
  }

  sandboxSpec(): SandboxSpec {
    const p = this.spec;
    const ports = [...p.initContainers, ...p.containers].flatMap((c) => c.ports.filter((x) => x.hostPort > 0));
    const { hostname } = podHostname(p, this.deps.clusterDomain);
    return {
      metadata: { name: p.name, uid: p.uid, namespace: p.namespace, attempt: this.rec.sandboxAttempt },
      hostname: p.hostNetwork ? '' : hostname,
      logDirectory: this.deps.logDir(this.rec),
      dnsConfig: null,
      portMappings: ports.map((x) => ({ protocol: x.protocol, containerPort: x.containerPort, hostPort: x.hostPort, hostIp: x.hostIP })),
      labels: { ...p.labels, 'io.kubernetes.pod.name': p.name, 'io.kubernetes.pod.namespace': p.namespace, 'io.kubernetes.pod.uid': p.uid },
      annotations: { ...p.annotations, 'kubernetes.io/config.source': this.rec.source === 'api' ? 'api' : 'file' },
      namespaceOptions: {
        network: p.hostNetwork ? 'NODE' : 'POD',
        pid: p.hostPID ? 'NODE' : p.shareProcessNamespace ? 'POD' : 'CONTAINER',
        ipc: p.hostIPC ? 'NODE' : 'POD',
        targetId: '',
      },
      cgroupParent: '',
      sysctls: {},
      runtimeHandler: '',
    };
  }

  // --------------------------------------------------------- containers

  private maybeStart(c: ContainerRecord, isRestart: boolean): void {
    if (Date.now() < c.nextStartAt) {
      if (c.waiting?.reason === 'ErrImagePull' || c.waiting?.reason === 'ImagePullBackOff') {
        c.waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${this.specOf(c).image}"` };
      } else if ((isRestart || c.waiting === null) && !CONFIG_FAILURES.has(c.waiting?.reason ?? '')) {
        // The back-off's length, as the kubelet words it (a record from before it was kept: the time left).
        const wait = goDuration(c.currentBackoffMs ?? Math.ceil((c.nextStartAt - Date.now()) / 1000) * 1000);
        if (c.waiting?.reason !== 'CrashLoopBackOff') this.event('Warning', 'BackOff', this.objectOf(c), 'Back-off restarting failed container');
        c.waiting = { reason: 'CrashLoopBackOff', message: `back-off ${wait} restarting failed container=${c.name} pod=${this.spec.name}_${this.spec.namespace}(${this.spec.uid})` };
      }
      return;
    }
    const p = this.startContainer(c).finally(() => this.inFlight.delete(c.name));
    this.inFlight.set(c.name, p);
  }

  /**
   * A start that failed before any container ran. As the kubelet: a failed
   * pull is tried again after the image's own back-off (10 s, doubling); a
   * config error at the pod worker's next try (10 s, not growing); any other
   * failure takes the restart back-off.
   */
  private failStart(c: ContainerRecord, reason: string, message: string): void {
    c.waiting = { reason, message };
    this.event('Warning', 'Failed', this.objectOf(c), `Error: ${message}`);
    const now = Date.now();
    if (reason === 'ErrImagePull') {
      const wait = Math.max(this.deps.backoffBaseMs, c.pullBackoffMs ?? 0);
      this.backOff(c, now, wait);
      c.pullBackoffMs = this.nextBackoff(wait);
    } else if (CONFIG_FAILURES.has(reason)) {
      this.backOff(c, now, this.deps.backoffBaseMs);
    } else {
      this.backOff(c, now, c.backoffMs);
      c.backoffMs = this.nextBackoff(c.backoffMs);
    }
  }

  private async startContainer(c: ContainerRecord): Promise<void> {
    const spec = this.specOf(c);
    const { containers, log } = this.deps;
    try {
      if (c.containerId) {
        const old = c.containerId;
        await containers.remove(old).catch((err) => log.warn('removing an exited container failed', { id: old, err }));
        delete c.probeKilled;
        c.containerId = '';
        c.lastState = c.terminated;
        c.terminated = null;
        // Logs of older instances go; the previous one stays for --previous.
        rmSync(join(this.deps.logDir(this.rec), c.name, `${c.instances - 2}.log`), { force: true });
      }
      c.terminated = null;
      c.waiting = { reason: c.kind === 'app' ? 'ContainerCreating' : 'PodInitializing', message: '' };
      await this.ensureImage(c, spec);
      let cspec: ContainerSpec;
      try {
        cspec = this.containerSpec(c, spec);
      } catch (err) {
        if (err instanceof StartError) throw err;
        throw new StartError('CreateContainerConfigError', (err as Error).message);
      }
      if (!this.mayStart) return;
      let id: string;
      try {
        id = (await containers.create(this.rec.sandboxId, cspec)).id;
      } catch (err) {
        throw new StartError('CreateContainerError', (err as Error).message);
      }
      c.containerId = id;
      c.instances++;
      c.restartCount = c.instances - 1;
      c.startedAt = 0;
      c.postStartDone = false;
      c.started = false;
      c.ready = false;
      c.probes = {};
      this.event('Normal', 'Created', this.objectOf(c), `Created container ${c.name}`);
      this.save();
      try {
        await containers.start(id);
      } catch (err) {
        const message = (err as Error).message;
        c.waiting = null;
        this.event('Warning', 'Failed', this.objectOf(c), `Error: ${message}`);
        // The monitor records a failed start as an exit (StartError); the next sync sees it. One
        // still CREATED (no exit reported in time) is recorded so here, with its back-off, and
        // killed: the next sync would take it for a start cut short by a server restart.
        if (this.instanceState(id) === 'CREATED') {
          this.recordExit(c, { exitCode: 128, signal: 0, reason: 'StartError', message, startedAt: 0, finishedAt: Date.now(), containerId: id });
          await containers.stop(id, 0).catch((e) => log.warn('killing a container that failed to start failed', { id, err: e }));
        }
        return;
      }
      c.startedAt = Date.now();
      c.waiting = null;
      this.event('Normal', 'Started', this.objectOf(c), `Started container ${c.name}`);
      if (spec.lifecycle.postStart) {
        // Like the kubelet's exec hooks: no timeout of its own.
        const r = await this.deps.actions.run(spec.lifecycle.postStart, this.target(c), 0, true);
        if (!r.ok) {
          this.event('Warning', 'FailedPostStartHook', this.objectOf(c), `PostStartHook failed: ${r.message}`);
          // The kubelet's killContainer: preStop runs here too.
          await this.killContainer(c, this.spec.terminationGracePeriodSeconds);
          c.postStartDone = true;
          return;
        }
      }
      c.postStartDone = true;
      if (this.mayStart && c.containerId === id) this.startProbes(c);
    } catch (err) {
      // Given up on (the pod is going, or the server): not a failure to back off from.
      if (this.loopAbort.signal.aborted) return;
      if (err instanceof StartError) this.failStart(c, err.reason, err.message);
      else this.failStart(c, 'RunContainerError', (err as Error).message);
    } finally {
      this.save();
    }
  }

  private async ensureImage(c: ContainerRecord, spec: PodContainer): Promise<void> {
    const present = this.deps.images.resolve(spec.image) !== undefined;
    if (spec.imagePullPolicy === 'Never') {
      if (!present) {
        const msg = `Container image "${spec.image}" is not present with pull policy of Never`;
        this.event('Warning', 'ErrImageNeverPull', this.objectOf(c), msg);
        throw new StartError('ErrImageNeverPull', msg);
      }
      return;
    }
    if (spec.imagePullPolicy === 'IfNotPresent' && present) {
      this.event('Normal', 'Pulled', this.objectOf(c), `Container image "${spec.image}" already present on machine`);
      return;
    }
    this.event('Normal', 'Pulling', this.objectOf(c), `Pulling image "${spec.image}"`);
    const began = Date.now();
    try {
      await this.deps.pull(spec.image, this.loopAbort.signal);
    } catch (err) {
      throw new StartError('ErrImagePull', `failed to pull image "${spec.image}": ${(err as Error).message}`);
    }
    this.event('Normal', 'Pulled', this.objectOf(c), `Successfully pulled image "${spec.image}" in ${Date.now() - began}ms`);
  }

  /** The CRI-level container: kubelet labels and annotations, env, mounts, security, resources. */
  containerSpec(c: ContainerRecord, spec: PodContainer): ContainerSpec {
    const p = this.spec;
    const env = containerEnv(p, spec, {
      podIPs: this.podIPs(),
      allocatable: this.deps.allocatable,
      hostIP: this.deps.hostIP,
      nodeName: this.deps.nodeName,
      // The ServiceAccount admission's default; a static pod gets none (the kubelet reads its file as written).
      serviceAccountName: p.serviceAccountName || (this.rec.source === 'api' ? 'default' : ''),
    });
    const sec = spec.security;
    if (sec.runAsNonRoot) {
      if (sec.runAsUser === 0) throw new Error("container's runAsUser breaks non-root policy");
      if (sec.runAsUser === null) {
        const user = (this.deps.images.resolve(spec.image)?.config.User ?? '').split(':')[0] ?? '';
        if (user === '' || user === '0' || user === 'root') throw new Error('container has runAsNonRoot and image will run as root');
        if (!/^\d+$/.test(user)) throw new Error(`container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root`);
      }
    }
    const { limits, requests } = spec.resources;
    const attempt = c.instances;
    return {
      name: spec.name,
      attempt,
      image: spec.image,
      command: expandArgs(spec.command, env),
      args: expandArgs(spec.args, env),
      workingDir: spec.workingDir,
      env,
      mounts: this.mounts(spec, attempt),
      labels: {
        'io.kubernetes.container.name': spec.name,
        'io.kubernetes.pod.name': p.name,
        'io.kubernetes.pod.namespace': p.namespace,
        'io.kubernetes.pod.uid': p.uid,
      },
      annotations: {
        'io.kubernetes.container.restartCount': String(attempt),
        'io.kubernetes.container.terminationMessagePath': spec.terminationMessagePath ?? DEFAULT_TERMINATION_MESSAGE_PATH,
        'io.kubernetes.container.terminationMessagePolicy': spec.terminationMessagePolicy ?? 'File',
        'io.kubernetes.pod.terminationGracePeriod': String(p.terminationGracePeriodSeconds),
        ...(spec.ports.length ? { 'io.kubernetes.container.ports': JSON.stringify(spec.ports.map((x) => ({ name: x.name || undefined, containerPort: x.containerPort, protocol: x.protocol }))) } : {}),
      },
      logPath: `${spec.name}/${attempt}.log`,
      stdin: false,
      stdinOnce: false,
      tty: false,
      security: {
        privileged: sec.privileged,
        capAdd: sec.capAdd,
        capDrop: sec.capDrop,
        runAsUser: sec.runAsUser,
        runAsUsername: '',
        runAsGroup: sec.runAsGroup,
        supplementalGroups: sec.supplementalGroups,
        readonlyRootfs: sec.readOnlyRootFilesystem,
        noNewPrivs: sec.allowPrivilegeEscalation === false,
        maskedPaths: null,
        readonlyPaths: null,
        seccomp: this.seccompMode(sec.privileged ? null : sec.seccomp),
        pidMode: p.hostPID ? 'NODE' : p.shareProcessNamespace ? 'POD' : 'CONTAINER',
      },
      resources: {
        // A zero limit is no limit, as the kubelet's milliCPUToQuota.
        cpuPeriod: limits.cpu ? 100_000 : 0,
        cpuQuota: limits.cpu ? Math.max(1000, Math.round(limits.cpu * 100_000)) : 0,
        cpuShares: requests.cpu !== undefined ? Math.max(2, Math.floor(requests.cpu * 1024)) : 2,
        memoryLimitBytes: limits.memory ?? 0,
        cpusetCpus: '',
        cpusetMems: '',
        oomScoreAdj: oomScoreAdj(p, spec, this.deps.memoryCapacity),
        memorySwapLimitBytes: 0,
        hugepageLimits: [],
        unified: {},
      },
      stopSignal: '',
    };
  }

  /** The pod's IPs, the primary first: the host's with host network, else the sandbox's (status.podIPs). */
  private podIPs(): string[] {
    if (this.spec.hostNetwork) return [this.rec.podIP];
    let more: string[] = [];
    try {
      more = this.deps.sandboxes.get(this.rec.sandboxId).network.additionalIps;
    } catch {
      // gone: the recorded IP is all there is
    }
    return [this.rec.podIP, ...more].filter((ip) => ip !== '');
  }

  /**
   * As the kubelet's ensureHostsFile, at each container start: the file is
   * rewritten in place, so the containers already running (bind mounts of the
   * same inode) see the managed content again too, and a host-network pod
   * the node's current file.
   */
  private writeEtcHosts(): string {
    const path = this.deps.etcHostsPath(this.rec.id);
    mkdirSync(dirname(path), { recursive: true });
    const ips = this.spec.hostNetwork ? [] : this.podIPs();
    writeFileSync(path, etcHostsContent(this.spec, ips, this.deps.clusterDomain, () => readFileSync('/etc/hosts', 'utf8')), { mode: 0o644 });
    chmodSync(path, 0o644);
    return path;
  }

  /** Unset is Unconfined, as the kubelet's default. A Localhost profile is read as the runtime reads it: a bad one fails the create. */
  private seccompMode(setting: SeccompSetting | null): SeccompMode {
    if (setting === null || typeof setting === 'string') return setting === 'RuntimeDefault' ? 'default' : 'unconfined';
    try {
      return readSeccompProfile(join(this.deps.seccompRoot, setting.localhostProfile));
    } catch (err) {
      throw new StartError('CreateContainerError', (err as Error).message);
    }
  }

  /**
   * As the kubelet's makeMounts: the volume mounts, the pod's /etc/hosts
   * unless a volume is mounted there, and the instance's termination-message
   * file (made empty here, writable by any user as the kubelet makes it).
   */
  private mounts(spec: PodContainer, attempt: number): ContainerSpec['mounts'] {
    const mounts = containerMounts(this.spec, spec, this.deps.volumeDirs(this.rec.id));
    const taken = (path: string) => mounts.some((m) => m.containerPath === path);
    if (!taken('/etc/hosts')) mounts.push({ containerPath: '/etc/hosts', hostPath: this.writeEtcHosts(), readonly: false, propagation: 'PRIVATE' });
    const messagePath = spec.terminationMessagePath ?? DEFAULT_TERMINATION_MESSAGE_PATH;
    if (!taken(messagePath)) {
      const file = this.deps.terminationLogPath(this.rec.id, spec.name, attempt);
      // Earlier instances' files were read at their exits: only the new one is kept.
      rmSync(dirname(file), { recursive: true, force: true });
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, '');
      chmodSync(file, 0o666);
      mounts.push({ containerPath: messagePath, hostPath: file, readonly: false, propagation: 'PRIVATE' });
    }
    return mounts;
  }

  target(c: ContainerRecord): ActionTarget {
    let netns: string | undefined;
    try {
      netns = this.deps.sandboxes.get(this.rec.sandboxId).namespaces.net;
    } catch {
      netns = undefined;
    }
    return { containerId: c.containerId, netns, podIP: this.rec.podIP, ports: this.specOf(c).ports };
  }

  // ------------------------------------------------------------- probes

  private startProbes(c: ContainerRecord): void {
    const spec = this.specOf(c);
    const id = c.containerId;
    this.stopProbes(c.name);
    const workers: ProbeWorker[] = [];
    this.probes.set(c.name, workers);
    const add = (kind: ProbeKind, probe: Probe) => {
      const w = new ProbeWorker(
        kind,
        probe,
        c.startedAt,
        () => this.deps.actions.run(probe, this.target(c), probe.timeoutSeconds),
        (st, crossed) => this.onProbe(c, id, kind, probe, st, crossed),
        (reason, message) => this.event('Warning', reason, this.objectOf(c), message),
        c.probes[kind],
      );
      c.probes[kind] = w.status;
      workers.push(w);
      w.start();
    };
    const liveAndReady = () => {
      if (spec.livenessProbe) add('liveness', spec.livenessProbe);
      if (spec.readinessProbe) add('readiness', spec.readinessProbe);
      else c.ready = true;
    };
    if (spec.startupProbe && !c.started) add('startup', spec.startupProbe);
    else {
      c.started = true;
      liveAndReady();
    }
    // Kept for onProbe: starting liveness/readiness after the startup probe.
    this.afterStartup.set(c.name, liveAndReady);
  }

  private readonly afterStartup = new Map<string, () => void>();

  private stopProbes(name: string): void {
    for (const w of this.probes.get(name) ?? []) w.stop();
    this.probes.delete(name);
  }

  private onProbe(c: ContainerRecord, id: string, kind: ProbeKind, probe: Probe, st: ProbeStatus, crossed: 'success' | 'failure' | null): void {
    if (c.containerId !== id || c.terminated) return;
    const label = kind[0]!.toUpperCase() + kind.slice(1);
    if (st.consecutiveFailures > 0) this.event('Warning', 'Unhealthy', this.objectOf(c), `${label} probe failed: ${st.message}`);
    if (kind === 'readiness') {
      c.ready = st.result === 'success';
    } else if (kind === 'startup' && crossed === 'success') {
      c.started = true;
      for (const w of this.probes.get(c.name) ?? []) if (w.kind === 'startup') w.stop();
      this.afterStartup.get(c.name)?.();
    } else if (crossed === 'failure') {
      // As computePodActions: restarted whatever its exit code, unless the policy is Never.
      const restart = this.spec.restartPolicy !== 'Never';
      if (restart) c.probeKilled = id;
      this.event('Normal', 'Killing', this.objectOf(c), `Container ${c.name} failed ${kind} probe${restart ? ', will be restarted' : ''}`);
      void this.killContainer(c, probe.terminationGracePeriodSeconds ?? this.spec.terminationGracePeriodSeconds);
    }
    this.save();
  }

  // ------------------------------------------------------------ eviction

  /**
   * The kubelet eviction manager's emptyDir check: every period the
   * disk-backed emptyDirs with a sizeLimit are measured, in the background so
   * a large tree never holds up the pod's sync; one over its limit gets the
   * pod evicted at the next sync. Memory-backed ones are tmpfs mounts of that
   * size and cannot go over.
   */
  private measureEmptyDirs(now: number): void {
    if (this.measuring || now < this.nextMeasureAt) return;
    const limited = this.spec.volumes.filter((v) => v.emptyDir?.medium === '' && v.emptyDir.sizeLimit);
    if (limited.length === 0) return;
    this.nextMeasureAt = now + this.deps.evictionPeriodMs;
    this.measuring = true;
    const dirs = this.deps.volumeDirs(this.rec.id);
    void (async () => {
      for (const v of limited) {
        const limit = v.emptyDir!.sizeLimit!;
        const used = await diskUsage(volumePath(v, dirs)).catch(() => 0);
        if (used > limit.bytes) {
          this.evictWith = `Usage of EmptyDir volume "${v.name}" exceeds the limit "${limit.quantity}".`;
          return;
        }
      }
    })().finally(() => {
      this.measuring = false;
    });
  }

  /**
   * Failed with reason Evicted, never restarted. The kubelet evicts with a
   * grace override of 0 (no preStop; its killContainer then still waits its
   * 2 s minimum); here the containers are killed at once, as by delete --force.
   */
  private async evict(message: string): Promise<void> {
    this.event('Warning', 'Evicted', 'pod', message);
    await this.finish('Failed', 'Evicted', message, 0);
  }

  // ------------------------------------------------------------ stopping

  /**
   * The kubelet's killContainer: preStop within the grace period, then the
   * instance's turn (see killAll), then the stop signal with what is left of
   * the grace, never less than 2 s (grace 0: SIGKILL at once, as delete
   * --force). A kill of the instance already under way is joined, not repeated.
   */
  killContainer(c: ContainerRecord, graceSeconds: number, turn: Promise<unknown> = Promise.resolve()): Promise<void> {
    const id = c.containerId;
    if (!id) return Promise.resolve();
    const deadline = Date.now() + Math.max(0, graceSeconds) * 1000;
    const under = this.kills.get(id);
    if (under && deadline >= under.deadline) return under.done;
    if (under) {
      // A shorter grace (a forced deletion during a graceful one): as the kubelet, the container is
      // stopped again with it, not waiting for the preStop; the runtime's stops overlap.
      under.deadline = deadline;
      under.done = this.stopRuntime(id, graceSeconds, graceSeconds * 1000);
      return under.done;
    }
    const kill = { deadline, done: Promise.resolve() };
    kill.done = this.stopInstance(c, id, graceSeconds, turn).finally(() => {
      if (this.kills.get(id) === kill) this.kills.delete(id);
    });
    this.kills.set(id, kill);
    return kill.done;
  }

  private async stopInstance(c: ContainerRecord, id: string, graceSeconds: number, turn: Promise<unknown>): Promise<void> {
    this.stopProbes(c.name);
    // Its readiness probe stopped with the others: it serves no more from now on.
    c.ready = false;
    const deadline = Date.now() + graceSeconds * 1000;
    const left = () => Math.max(0, deadline - Date.now());
    const preStop = this.specOf(c).lifecycle.preStop;
    if (preStop && graceSeconds > 0 && this.instanceState(id) === 'RUNNING') {
      const r = await within(this.deps.actions.run(preStop, this.target(c), graceSeconds, true), left(), { ok: false, message: 'timed out' });
      if (!r.ok) this.event('Warning', 'FailedPreStopHook', this.objectOf(c), `PreStopHook failed: ${r.message}`);
    }
    if (graceSeconds > 0) await within(turn, left(), undefined);
    await this.stopRuntime(id, graceSeconds, left());
  }

  /** StopContainer with what is left of the grace (leftMs), never less than the kubelet's 2 s unless the grace is 0 (SIGKILL at once). */
  private async stopRuntime(id: string, graceSeconds: number, leftMs: number): Promise<void> {
    try {
      await this.deps.containers.stop(id, graceSeconds <= 0 ? 0 : Math.max(MIN_GRACE_SECONDS, Math.ceil(leftMs / 1000)));
    } catch (err) {
      if (!isKind(err, 'NotFound')) this.deps.log.warn('stopping a container failed', { id, err });
    }
  }

  /**
   * Every running container at once, as the kubelet's killContainersWithSyncResult:
   * all preStop hooks run together; app and init containers then stop, a
   * sidecar only once the app containers and the sidecars after it have
   * (while grace is left). Kills already under way are waited for too.
   */
  async killAll(graceSeconds: number): Promise<void> {
    for (const ws of this.probes.values()) for (const w of ws) w.stop();
    const kill = (c: ContainerRecord, turn?: Promise<unknown>) => (c.containerId !== '' && c.terminated === null ? this.killContainer(c, graceSeconds, turn) : Promise.resolve());
    const { containers } = this.rec;
    const apps = Promise.all(containers.filter((c) => c.kind === 'app').map((c) => kill(c)));
    const all: Array<Promise<unknown>> = [apps, ...[...this.kills.values()].map((k) => k.done), ...containers.filter((c) => c.kind === 'init').map((c) => kill(c))];
    let after: Promise<unknown> = apps;
    for (const c of containers.filter((x) => x.kind === 'sidecar').reverse()) {
      const k = kill(c, after);
      all.push(k);
      after = Promise.all([apps, k]);
    }
    await Promise.all(all);
  }
}

/** A fresh record for a parsed pod. */
export function newContainerRecords(p: PodSpec): ContainerRecord[] {
  const mk = (name: string, kind: ContainerRecord['kind']): ContainerRecord => ({
    name,
    kind,
    containerId: '',
    restartCount: 0,
    instances: 0,
    waiting: null,
    terminated: null,
    lastState: null,
    startedAt: 0,
    postStartDone: false,
    started: false,
    ready: false,
    succeeded: false,
    nextStartAt: 0,
    backoffMs: 0,
    probes: {},
  });
  return [
    ...p.initContainers.map((c) => mk(c.name, c.restartPolicy === 'Always' ? 'sidecar' : 'init')),
    ...p.containers.map((c) => mk(c.name, 'app')),
  ];
}

/** The last `max` bytes of a file and the offset they start at; nothing when it is missing. */
function tailOf(path: string, max: number): { data: Buffer; from: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { data: Buffer.alloc(0), from: 0 };
  }
  try {
    const size = fstatSync(fd).size;
    const from = Math.max(0, size - max);
    const buf = Buffer.alloc(size - from);
    const n = readSync(fd, buf, 0, buf.length, from);
    return { data: buf.subarray(0, n), from };
  } finally {
    closeSync(fd);
  }
}
