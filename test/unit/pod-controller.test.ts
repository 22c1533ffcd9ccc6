// The pod controller against fake sandboxes and containers, measured against
// the kubelet: a probe kill's restart, containers started one by one through
// their postStart, the deadline from the first sync, termination order and
// grace, kills joined, a failed start's back-off, the phase while init
// containers re-run, the pod's end (with a start under way; its phase before
// its tear-down, which a restart finishes), a deletion racing
// a long pull, the CPU quota of a zero limit, the back-off of crashes,
// failed pulls and config errors, and a static pod's serviceAccountName.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PodController } from '../../src/pod/controller.js';
import { PodRunner } from '../../src/pod/runner.js';
import { podView } from '../../src/pod/status.js';
import type { ContainerRecord } from '../../src/pod/types.js';
import { goDuration } from '../../src/util/time.js';
import { FakeNode, gate } from '../support/pod-fakes.js';
import { sleep, until } from '../support/wait.js';

const pod = (spec: string, name = 'p') => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  uid: uid-${name}\nspec:\n${spec}`;

let node: FakeNode;
beforeEach(() => {
  node = new FakeNode();
});
afterEach(async () => {
  await node.dispose();
});

const ctr = (ctl: PodController, name: string): ContainerRecord => ctl.rec.containers.find((c) => c.name === name)!;
const view = (ctl: PodController) => podView(ctl, 'node');
const events = (ctl: PodController) => ctl.rec.events.map((e) => `${e.reason}: ${e.message}`);
/** Index of the first log line equal to `line` (-1: none). */
const at = (line: string) => node.log.indexOf(line);

describe('a liveness kill', () => {
  const liveness = (policy: string) =>
    pod(`  restartPolicy: ${policy}\n  containers:\n    - name: a\n      image: busybox\n      livenessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 1}`);

  it('restarts under OnFailure a container that exits 0 on SIGTERM (the pod does not succeed)', async () => {
    node.behaviour = () => ({ onStop: 0 });
    node.action = async (h) => ({ ok: h.exec?.command[0] !== 'false', message: 'failed' });
    const ctl = node.controller(liveness('OnFailure'));
    ctl.start();
    await until('a restarted', () => ctr(ctl, 'a').restartCount >= 1, 5000);
    expect(ctl.rec.phase).not.toBe('Succeeded');
    expect(events(ctl)).toContain('Killing: Container a failed liveness probe, will be restarted');
  });

  it('under Never says no restart and ends the pod', async () => {
    node.action = async (h) => ({ ok: h.exec?.command[0] !== 'false', message: 'failed' });
    const ctl = node.controller(liveness('Never'));
    ctl.start();
    await until('Failed', () => ctl.rec.phase === 'Failed', 5000);
    expect(events(ctl)).toContain('Killing: Container a failed liveness probe');
    expect(events(ctl).some((e) => e.includes('will be restarted'))).toBe(false);
    expect(ctr(ctl, 'a').restartCount).toBe(0);
  });
});

describe('app containers start in order', () => {
  it('a postStart hook holds back the next container until it is done', async () => {
    const proxyReady = gate();
    node.action = async (h) => {
      if (h.exec?.command[0] === 'wait-ready') await proxyReady.wait;
      return { ok: true, message: '' };
    };
    const ctl = node.controller(
      pod(`  containers:
    - {name: proxy, image: busybox, lifecycle: {postStart: {exec: {command: [wait-ready]}}}}
    - {name: app, image: busybox}`),
    );
    ctl.start();
    await until('the proxy hook', () => at('hook proxy wait-ready') >= 0);
    await sleep(300);
    expect(at('create app')).toBe(-1);
    expect(view(ctl).status.phase).toBe('Pending');
    proxyReady.open();
    await until('app started', () => at('start app') >= 0);
    expect(at('start app')).toBeGreaterThan(at('hook proxy wait-ready'));
    await until('Running', () => ctl.rec.phase === 'Running');
  });

  it('one that cannot be pulled holds back nothing', async () => {
    node.pull = async (ref) => {
      if (ref === 'example.invalid/none:1') throw new Error('no such host');
    };
    const ctl = node.controller(
      pod(`  containers:
    - {name: broken, image: example.invalid/none:1, imagePullPolicy: Always}
    - {name: app, image: busybox}`),
    );
    ctl.start();
    await until('app started', () => at('start app') >= 0);
    expect(ctr(ctl, 'broken').waiting?.reason).toMatch(/ErrImagePull|ImagePullBackOff/);
  });
});

it('activeDeadlineSeconds counts from the first sync while no sandbox can be made', async () => {
  node.sandboxFails = true;
  const ctl = node.controller(pod(`  activeDeadlineSeconds: 1\n  containers: [{name: a, image: busybox}]`));
  const began = Date.now();
  ctl.start();
  await until('Failed', () => ctl.rec.phase === 'Failed', 5000);
  expect(ctl.rec.reason).toBe('DeadlineExceeded');
  expect(events(ctl)).toContain('FailedCreatePodSandBox: Failed to create pod sandbox: CNI plugin failed');
  const startTime = Date.parse(view(ctl).status.startTime);
  expect(startTime).toBeGreaterThanOrEqual(began);
  expect(startTime).toBeLessThan(began + 500);
});

describe('termination', () => {
  const withSidecars = (grace: number) =>
    pod(`  terminationGracePeriodSeconds: ${grace}
  initContainers:
    - {name: s1, image: busybox, restartPolicy: Always, lifecycle: {preStop: {exec: {command: [s1-drain]}}}}
    - {name: s2, image: busybox, restartPolicy: Always, lifecycle: {preStop: {exec: {command: [s2-drain]}}}}
  containers:
    - {name: app, image: busybox, lifecycle: {preStop: {exec: {command: [app-drain]}}}}`);

  it('runs every preStop at once, then stops the app containers, then the sidecars in reverse order', async () => {
    node.action = async (h) => {
      if (h.exec?.command[0] === 'app-drain') await sleep(1000);
      return { ok: true, message: '' };
    };
    const ctl = node.controller(withSidecars(10));
    ctl.start();
    await until('Running', () => ctl.rec.phase === 'Running' && at('start app') >= 0);
    await ctl.stopLoop(0);
    await ctl.killAll(10);
    const stops = node.log.filter((l) => l.startsWith('stop '));
    expect(stops.map((l) => l.split(' ')[1])).toEqual(['app', 's2', 's1']);
    for (const hook of ['hook app app-drain', 'hook s1 s1-drain', 'hook s2 s2-drain']) expect(at(hook)).toBeLessThan(at(stops[0]!));
  });

  it('a sidecar still gets its preStop and 2 s when the app preStop used up the grace', async () => {
    node.action = async (h) => {
      if (h.exec?.command[0] === 'app-drain') await sleep(2500);
      return { ok: true, message: '' };
    };
    const ctl = node.controller(withSidecars(2));
    ctl.start();
    await until('Running', () => ctl.rec.phase === 'Running' && at('start app') >= 0);
    await ctl.stopLoop(0);
    await ctl.killAll(2);
    expect(at('hook s1 s1-drain')).toBeGreaterThanOrEqual(0);
    expect(node.log.filter((l) => l.startsWith('stop ')).sort()).toEqual(['stop app 2', 'stop s1 2', 'stop s2 2']);
  });
});

describe('a liveness kill under way', () => {
  /** A pod whose container, once ready, fails liveness and sits in its preStop until `drained` opens. */
  async function killing() {
    let alive = true;
    const drained = gate();
    node.action = async (h) => {
      const cmd = h.exec?.command[0];
      if (cmd === 'drain') await drained.wait;
      return { ok: cmd !== 'alive' || alive, message: 'failed' };
    };
    const ctl = node.controller(
      pod(`  containers:
    - name: a
      image: busybox
      livenessProbe: {exec: {command: [alive]}, periodSeconds: 1, failureThreshold: 1}
      readinessProbe: {exec: {command: [ready]}, periodSeconds: 1}
      lifecycle: {preStop: {exec: {command: [drain]}}}`),
    );
    ctl.start();
    await until('ready', () => view(ctl).ready === '1/1', 5000);
    alive = false;
    await until('the preStop', () => at('hook a drain') >= 0, 5000);
    await ctl.stopLoop(0);
    return { ctl, drained };
  }

  it('makes the container not ready at once', async () => {
    const { ctl, drained } = await killing();
    const v = view(ctl);
    expect(v.ready).toBe('0/1');
    expect(v.status.conditions).toContainEqual({ type: 'Ready', status: 'False' });
    drained.open();
  });

  it('is waited for by killAll', async () => {
    const { ctl, drained } = await killing();
    let killed = false;
    const all = ctl.killAll(30).then(() => (killed = true));
    await sleep(200);
    expect(killed).toBe(false);
    drained.open();
    await all;
    expect(node.log.findIndex((l) => l.startsWith('stop a '))).toBeGreaterThan(at('hook a drain'));
  });

  it('is cut short by a shorter grace (a forced deletion): stopped at once, its preStop not waited for', async () => {
    const { ctl, drained } = await killing();
    try {
      const began = Date.now();
      await ctl.killAll(0);
      expect(Date.now() - began).toBeLessThan(1000);
      expect(node.log).toContain('stop a 0');
      expect(node.log).toContain('exit a 137');
      // A longer grace than the kill's own joins it and stops nothing again.
      await ctl.killAll(60);
      expect(node.log.filter((l) => l.startsWith('stop a '))).toEqual(['stop a 0']);
    } finally {
      drained.open();
    }
  });
});

describe('a start that fails with the container left CREATED', () => {
  const spec = (policy: string) => pod(`  restartPolicy: ${policy}\n  containers: [{name: a, image: busybox}]`);

  it('is a StartError exit: Never ends the pod', async () => {
    node.behaviour = () => ({ startFails: true });
    const ctl = node.controller(spec('Never'));
    ctl.start();
    await until('Failed', () => ctl.rec.phase === 'Failed', 5000);
    await sleep(300);
    expect(node.log.filter((l) => l === 'create a')).toHaveLength(1);
    expect(view(ctl).status.containerStatuses[0]!).toMatchObject({ restartCount: 0, state: { terminated: { exitCode: 128, reason: 'StartError' } } });
  });

  it('is a StartError exit: Always backs off', async () => {
    node.behaviour = () => ({ startFails: true });
    const ctl = node.controller(spec('Always'));
    ctl.start();
    await sleep(1000);
    // Once at once, then 10 s of back-off.
    expect(node.log.filter((l) => l === 'create a')).toHaveLength(2);
    expect(view(ctl).status.containerStatuses[0]!.state.waiting?.reason).toBe('CrashLoopBackOff');
  });
});

it('the phase is Pending while init containers run again in a new sandbox', async () => {
  // The init container's first run ends at once; in the new sandbox it keeps running.
  node.behaviour = (name, attempt) => (name === 'init' && attempt === 0 ? { runMs: 10 } : {});
  const ctl = node.controller(pod(`  initContainers: [{name: init, image: busybox}]\n  containers: [{name: a, image: busybox}]`));
  ctl.start();
  await until('Running', () => ctl.rec.phase === 'Running', 5000);
  node.sandboxReady.set(ctl.rec.sandboxId, false);
  await until('init running again', () => node.log.filter((l) => l === 'start init').length === 2, 5000);
  await sleep(100);
  expect(ctl.rec.phase).toBe('Pending');
  expect(view(ctl).status.display).toBe('Init:0/1');
});

describe('the pod ending with a start under way', () => {
  it('a container in its postStart hook at the deadline is shown terminated', async () => {
    // The hook lasts until its container is killed.
    node.action = async (h, name) => {
      if (h.exec?.command[0] === 'wait') await until('the kill', () => node.log.includes(`exit ${name} 143`), 10_000);
      return { ok: true, message: '' };
    };
    const ctl = node.controller(pod(`  activeDeadlineSeconds: 1\n  containers: [{name: a, image: busybox, lifecycle: {postStart: {exec: {command: [wait]}}}}]`));
    ctl.start();
    await until('Failed', () => ctl.rec.phase === 'Failed', 5000);
    await sleep(300);
    expect(view(ctl).status.containerStatuses[0]!.state.terminated).toMatchObject({ exitCode: 143 });
  });

  it('a pull under way at the deadline creates nothing after it', async () => {
    const pulled = gate();
    node.pull = () => pulled.wait;
    const ctl = node.controller(pod(`  activeDeadlineSeconds: 1\n  terminationGracePeriodSeconds: 1\n  containers: [{name: a, image: busybox, imagePullPolicy: Always}]`));
    ctl.start();
    await until('the deadline', () => ctl.rec.events.some((e) => e.reason === 'DeadlineExceeded'), 5000);
    pulled.open();
    await until('Failed', () => ctl.rec.phase === 'Failed', 5000);
    await sleep(300);
    expect(at('create a')).toBe(-1);
    expect(view(ctl).status.containerStatuses[0]!.state.waiting?.reason).toBe('ContainerCreating');
  });
});

describe("the pod's end", () => {
  const job = pod(`  restartPolicy: Never\n  containers: [{name: a, image: busybox}]`);

  it('makes the phase final with the containers\' ends, before the sandbox and volumes go, as the kubelet\'s status does', async () => {
    const stopping = gate();
    node.sandboxStop = () => stopping.wait;
    node.behaviour = () => ({ runMs: 50, exitCode: 0 });
    const ctl = node.controller(job);
    ctl.start();
    await until('the sandbox stop', () => at('sandbox stop') >= 0, 5000);
    const v = view(ctl);
    expect([v.status.phase, v.status.display]).toEqual(['Succeeded', 'Completed']);
    expect(ctl.rec.tearingDown).toBe(true);
    stopping.open();
    await until('torn down', () => ctl.rec.tearingDown === undefined, 5000);
    expect(ctl.rec.phase).toBe('Succeeded');
  });

  it('a record saved in the tear-down (a server killed then) is torn down when taken over', async () => {
    const ctl = node.controller(job);
    const { id } = await node.sandboxes.run();
    const volume = join(node.dir, 'root', ctl.rec.id, 'volumes', 'v');
    mkdirSync(volume, { recursive: true });
    Object.assign(ctl.rec, { phase: 'Succeeded', sandboxId: id, sandboxAttempt: 1, startTime: Date.now(), tearingDown: true });
    ctl.start();
    await until('torn down', () => ctl.rec.tearingDown === undefined, 5000);
    expect(node.sandboxReady.get(id)).toBe(false);
    expect(existsSync(volume)).toBe(false);
    expect(ctl.rec.phase).toBe('Succeeded');
  });
});

it('a deleted pod whose pull ends later leaves no record: the same uid runs again', async () => {
  const pulled = gate();
  node.pull = () => pulled.wait;
  const runner = new PodRunner(node.runnerDeps());
  const manifest = pod(`  containers: [{name: a, image: busybox, imagePullPolicy: Always}]`, 'slow');
  await runner.apply(manifest);
  await until('the pull', () => at('pull busybox') >= 0);
  // The deletion waits 2 s for the start, then goes on without it.
  await runner.delete('default', 'slow', 0, true);
  pulled.open();
  await sleep(200);
  expect(existsSync(join(node.dir, 'root', 'pods', 'uid-slow', 'record.json'))).toBe(false);
  node.pull = async () => {};
  await runner.apply(manifest);
  await until('started again', () => at('start a') >= 0, 5000);
  await runner.delete('default', 'slow', 0, true);
});

it('a CPU limit of 0 is no limit', () => {
  const quota = (cpu: string) => {
    const ctl = node.controller(pod(`  containers: [{name: a, image: busybox, resources: {limits: {cpu: ${cpu}}}}]`));
    const { cpuQuota, cpuPeriod } = ctl.containerSpec(ctl.rec.containers[0]!, ctl.spec.containers[0]!).resources;
    return { cpuQuota, cpuPeriod };
  };
  expect(quota('0')).toEqual({ cpuQuota: 0, cpuPeriod: 0 });
  expect(quota('500m')).toEqual({ cpuQuota: 50_000, cpuPeriod: 100_000 });
});

it('spec.serviceAccountName is "default" for a pod without one, "" for a static pod (no admission defaults it)', () => {
  const sa = (spec: string, source: string) => {
    const ctl = node.controller(pod(`${spec}  containers: [{name: a, image: busybox, env: [{name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}]}]`));
    ctl.rec.source = source;
    return ctl.containerSpec(ctl.rec.containers[0]!, ctl.spec.containers[0]!).env.find((e) => e.key === 'SA')!.value;
  };
  expect(sa('', 'api')).toBe('default');
  expect(sa('', 'file:/etc/peapod/manifests/p.yaml')).toBe('');
  expect(sa('  serviceAccountName: builder\n', 'file:/etc/peapod/manifests/p.yaml')).toBe('builder');
});

describe('back-off, as the kubelet words and times it', () => {
  /** When each call of `what` came, in ms after the first. */
  const gaps = (times: number[]) => times.map((t) => t - times[0]!);

  it("lengths are worded as Go prints a time.Duration", () => {
    expect([0, 800, 10_000, 80_000, 300_000, 1_600, 3_600_000].map(goDuration)).toEqual(['0s', '800ms', '10s', '1m20s', '5m0s', '1.6s', '1h0m0s']);
  });

  it("CrashLoopBackOff's message gives the back-off's length, not the time left", async () => {
    node.behaviour = () => ({ runMs: 0, exitCode: 1 });
    const ctl = node.controller(pod(`  containers: [{name: a, image: busybox}]`), 400);
    ctl.start();
    // Restarted at once, then 400 ms; in the third back-off it is 800 ms.
    await until('the third exit', () => node.log.filter((l) => l === 'exit a 1').length >= 3, 5000);
    await until('back-off shown', () => view(ctl).status.containerStatuses[0]!.state.waiting?.reason === 'CrashLoopBackOff', 2000);
    expect(view(ctl).status.containerStatuses[0]!.state.waiting?.message).toBe('back-off 800ms restarting failed container=a pod=p_default(uid-p)');
  });

  it('a failed pull is tried again after the image back-off (the base, then doubling), not at once', async () => {
    const pulls: number[] = [];
    node.pull = async () => {
      pulls.push(Date.now());
      throw new Error('no such host');
    };
    const ctl = node.controller(pod(`  containers: [{name: a, image: example.invalid/none:1, imagePullPolicy: Always}]`), 300);
    ctl.start();
    await until('three pulls', () => pulls.length >= 3, 5000);
    const [, second, third] = gaps(pulls);
    expect(second).toBeGreaterThanOrEqual(300);
    expect(third! - second!).toBeGreaterThanOrEqual(600);
    expect(view(ctl).status.containerStatuses[0]!.state.waiting?.reason).toMatch(/^(ErrImagePull|ImagePullBackOff)$/);
  });

  it('a config error is tried again after the base each time (not growing) and never shown as CrashLoopBackOff', async () => {
    const pulls: number[] = [];
    node.pull = async () => void pulls.push(Date.now());
    // runAsUser 0 under runAsNonRoot: CreateContainerConfigError after each pull.
    const ctl = node.controller(
      pod(`  containers: [{name: a, image: busybox, imagePullPolicy: Always, securityContext: {runAsNonRoot: true, runAsUser: 0}}]`),
      300,
    );
    ctl.start();
    await until('four tries', () => pulls.length >= 4, 5000);
    const g = gaps(pulls);
    for (let i = 1; i < 4; i++) {
      expect(g[i]! - g[i - 1]!).toBeGreaterThanOrEqual(300);
      expect(g[i]! - g[i - 1]!).toBeLessThan(550);
    }
    expect(view(ctl).status.containerStatuses[0]!.state.waiting?.reason).toBe('CreateContainerConfigError');
  });
});
