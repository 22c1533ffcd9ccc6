// Pod status as the Kubernetes API shows it: container states, the pod's
// conditions, and the STATUS column of `kubectl get pods`.

import type { PodController } from './controller.js';
import { qosClass } from './qos.js';
import type { ContainerRecord, PodRecord, Terminated } from './types.js';

export interface ContainerStateView {
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: { exitCode: number; signal?: number; reason: string; message?: string; startedAt: string; finishedAt: string; containerID: string };
}

export interface ContainerStatusView {
  name: string;
  state: ContainerStateView;
  lastState: ContainerStateView;
  ready: boolean;
  started: boolean;
  restartCount: number;
  image: string;
  containerID: string;
  probes: Record<string, { result: string; message: string; consecutiveSuccesses: number; consecutiveFailures: number; lastProbeTime: string }>;
}

const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : '');

function terminatedView(t: Terminated): ContainerStateView {
  return {
    terminated: {
      exitCode: t.exitCode,
      ...(t.signal ? { signal: t.signal } : {}),
      reason: t.reason,
      ...(t.message ? { message: t.message } : {}),
      startedAt: iso(t.startedAt),
      finishedAt: iso(t.finishedAt),
      containerID: t.containerId ? `peapod://${t.containerId}` : '',
    },
  };
}

export function containerStatus(ctl: PodController, c: ContainerRecord): ContainerStatusView {
  const rec = ctl.rec;
  let state: ContainerStateView;
  let last: ContainerStateView = c.lastState ? terminatedView(c.lastState) : {};
  if (c.terminated && ctl.restartPending(c) && c.waiting?.reason === 'CrashLoopBackOff' && Date.now() < c.nextStartAt) {
    state = { waiting: { ...c.waiting } };
    last = terminatedView(c.terminated);
  } else if (c.terminated) {
    state = terminatedView(c.terminated);
  } else if (c.containerId && c.postStartDone) {
    state = { running: { startedAt: iso(c.startedAt) } };
  } else if (c.containerId) {
    state = { waiting: { reason: c.kind === 'app' ? 'ContainerCreating' : 'PodInitializing' } };
  } else if (c.waiting) {
    state = { waiting: { ...c.waiting } };
  } else {
    state = { waiting: { reason: c.kind === 'app' && !rec.initialized ? 'PodInitializing' : c.kind === 'app' ? 'ContainerCreating' : 'PodInitializing' } };
  }
  const probes: ContainerStatusView['probes'] = {};
  for (const [k, p] of Object.entries(c.probes)) {
    if (!p) continue;
    probes[k] = {
      result: p.result || 'unknown',
      message: p.message,
      consecutiveSuccesses: p.consecutiveSuccesses,
      consecutiveFailures: p.consecutiveFailures,
      lastProbeTime: iso(p.lastProbeAt),
    };
  }
  return {
    name: c.name,
    state,
    lastState: last,
    ready: c.ready && !!state.running,
    started: c.started && !!state.running,
    restartCount: c.restartCount,
    image: ctl.specOf(c).image,
    containerID: c.containerId ? `peapod://${c.containerId}` : '',
    probes,
  };
}

/**
 * The STATUS and RESTARTS columns, computed as kubectl's printer does. While
 * the pod initializes, restarts count the init containers up to the one under
 * way; after, the sidecars' and the app containers'. `lastRestart` is the
 * latest of their previous instances' ends (ms, 0: none), shown as "(… ago)".
 */
export function podColumns(
  rec: PodRecord,
  init: Array<ContainerStatusView & { sidecar: boolean }>,
  apps: ContainerStatusView[],
  podReady: boolean,
): { status: string; restarts: number; lastRestart: number } {
  let reason: string = rec.reason || rec.phase;
  let initializing = false;
  let restarts = 0;
  let lastRestart = 0;
  const count = (c: ContainerStatusView) => {
    restarts += c.restartCount;
    const ended = Date.parse(c.lastState.terminated?.finishedAt ?? '');
    if (ended > lastRestart) lastRestart = ended;
  };
  for (const [i, c] of init.entries()) {
    count(c);
    const t = c.state.terminated;
    if (t && t.exitCode === 0) continue;
    if (c.sidecar && c.started) continue;
    if (t) reason = t.reason ? `Init:${t.reason}` : t.signal ? `Init:Signal:${t.signal}` : `Init:ExitCode:${t.exitCode}`;
    else if (c.state.waiting && c.state.waiting.reason && c.state.waiting.reason !== 'PodInitializing') reason = `Init:${c.state.waiting.reason}`;
    else reason = `Init:${i}/${init.length}`;
    initializing = true;
    break;
  }
  if (!initializing || rec.initialized) {
    restarts = 0;
    lastRestart = 0;
    for (const c of init) if (c.sidecar) count(c);
    let hasRunning = false;
    for (const c of [...apps].reverse()) {
      count(c);
      const w = c.state.waiting;
      const t = c.state.terminated;
      if (w && w.reason) reason = w.reason;
      else if (t && t.reason) reason = t.reason;
      else if (t) reason = t.signal ? `Signal:${t.signal}` : `ExitCode:${t.exitCode}`;
      else if (c.state.running && c.ready) hasRunning = true;
    }
    // Some container completed while another still runs: Running only if the pod is Ready.
    if (reason === 'Completed' && hasRunning) reason = podReady ? 'Running' : 'NotReady';
    if (rec.reason) reason = rec.reason;
  }
  if (rec.deleting) reason = 'Terminating';
  return { status: reason, restarts, lastRestart: restarts > 0 ? lastRestart : 0 };
}

export interface PodView {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: { name: string; namespace: string; uid: string; labels: Record<string, string>; annotations: Record<string, string>; creationTimestamp: string };
  spec: unknown;
  status: {
    phase: string;
    reason?: string;
    message?: string;
    display: string;
    conditions: Array<{ type: string; status: 'True' | 'False' }>;
    hostIP: string;
    podIP: string;
    startTime: string;
    qosClass: string;
    initContainerStatuses: ContainerStatusView[];
    containerStatuses: ContainerStatusView[];
  };
  events: Array<{ type: string; reason: string; object: string; message: string; count: number; firstTimestamp: string; lastTimestamp: string }>;
  node: string;
  sandboxId: string;
  source: string;
  /** kubectl's RESTARTS, and when the latest restart's previous instance ended ("" if none). */
  restarts: number;
  lastRestart: string;
  ready: string;
}

export function podView(ctl: PodController, node: string): PodView {
  const rec = ctl.rec;
  const init = rec.containers.filter((c) => c.kind !== 'app').map((c) => ({ ...containerStatus(ctl, c), sidecar: c.kind === 'sidecar' }));
  const apps = rec.containers.filter((c) => c.kind === 'app').map((c) => containerStatus(ctl, c));
  const counted = [...apps, ...init.filter((c) => c.sidecar)];
  const readyN = counted.filter((c) => c.ready).length;
  const allReady = readyN === counted.length && rec.phase === 'Running' && !rec.deleting;
  const columns = podColumns(rec, init, apps, allReady);
  const manifest = (rec.manifest ?? {}) as { spec?: unknown };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: rec.spec.name,
      namespace: rec.spec.namespace,
      uid: rec.spec.uid,
      labels: rec.spec.labels,
      annotations: rec.spec.annotations,
      creationTimestamp: iso(rec.createdAt),
    },
    spec: { ...((manifest.spec as object) ?? {}), nodeName: node },
    status: {
      phase: rec.phase,
      ...(rec.reason ? { reason: rec.reason } : {}),
      ...(rec.message ? { message: rec.message } : {}),
      display: columns.status,
      conditions: [
        { type: 'Initialized', status: rec.initialized ? 'True' : 'False' },
        { type: 'Ready', status: allReady ? 'True' : 'False' },
        { type: 'ContainersReady', status: allReady ? 'True' : 'False' },
        { type: 'PodScheduled', status: 'True' },
      ],
      hostIP: ctl.hostIP,
      podIP: rec.podIP,
      startTime: iso(rec.startTime),
      qosClass: qosClass(rec.spec),
      initContainerStatuses: init.map(({ sidecar: _s, ...c }) => c),
      containerStatuses: apps,
    },
    events: rec.events.map((e) => ({ type: e.type, reason: e.reason, object: e.object, message: e.message, count: e.count, firstTimestamp: iso(e.first ?? e.time), lastTimestamp: iso(e.time) })),
    node,
    sandboxId: rec.sandboxId,
    source: rec.source,
    restarts: columns.restarts,
    lastRestart: iso(columns.lastRestart),
    ready: `${readyN}/${counted.length}`,
  };
}
