// Container monitors started ahead (SpareMonitors): a create hands its
// container to a waiting spare, which joins the pod's namespaces itself; a
// server's spares go with it, whether it stops or is killed and restarted.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups } from '../../src/linux/cgroups.js';
import { identify, isAlive, readProcStat, type ProcessIdentity } from '../../src/linux/proc.js';
import { grpcCode, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { nsOf, pidNamespaceMembers, runtime, startServer, type TestServer } from '../support/server.js';
import { until } from '../support/wait.js';

const isRoot = process.getuid?.() === 0;

/** The spares waiting on FIFOs in `dir`: pid → FIFO, from /proc (a claimed one's FIFO is gone). */
function spares(dir: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0');
      const i = argv.indexOf('--wait');
      const state = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (i > 0 && argv[i + 1]!.startsWith(dir + '/') && existsSync(argv[i + 1]!) && !/\) Z /.test(state)) out.set(Number(name), argv[i + 1]!);
    } catch {
      // gone
    }
  }
  return out;
}

const identifyOr = (pid: number): ProcessIdentity => identify(pid) ?? { pid, startTime: 'gone' };

describe.skipIf(!isRoot)(`spare container monitors [server on ${runtime}]`, () => {
  let s: TestServer;
  let dir: string;

  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    dir = join(s.state, 'spare-monitors');
  });

  afterAll(async () => {
    await s?.cleanup();
  });

  it('two wait on FIFOs; a create takes one, which joins the pod namespaces, and another is started', async () => {
    await until('two spares', () => spares(dir).size === 2);
    for (const [pid, fifo] of spares(dir)) {
      expect(statSync(fifo).isFIFO()).toBe(true);
      // Nothing of the server's is held while it waits: stdio only.
      expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(['0', '1', '2']);
    }
    const before = spares(dir);
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('spares') });
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId,
      config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'] },
    });
    const { monitorPid, pid } = JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!);
    expect([...before.keys()]).toContain(monitorPid);
    // Its FIFO is gone; its argv still says what it waited on (the rest came through the FIFO).
    expect(() => statSync(before.get(monitorPid)!)).toThrow();
    const pause = JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info!).pid;
    for (const ns of ['net', 'ipc', 'uts']) {
      expect(nsOf(monitorPid, ns), ns).toBe(nsOf(pause, ns));
      expect(nsOf(pid, ns), ns).toBe(nsOf(pause, ns));
    }
    expect(nsOf(monitorPid, 'net')).not.toBe(nsOf(s.pid, 'net'));
    // Its messages go where a monitor started for the container writes them.
    expect(readdirSync(join(s.state, 'containers', containerId))).toContain('monitor.log');
    await until('the pool refilled', () => spares(dir).size === 2 && !spares(dir).has(monitorPid));
    await s.runtime.StartContainer({ containerId });
    expect((await s.runtime.ContainerStatus({ containerId })).status!.state).toBe('CONTAINER_RUNNING');
    await s.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('spares whose FIFOs were removed by hand are killed, and the create is served all the same', async () => {
    await until('two spares', () => spares(dir).size === 2);
    const lost = [...spares(dir)].map(([pid, fifo]) => [identifyOr(pid), fifo] as const);
    for (const [, fifo] of lost) rmSync(fifo);
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('spares-lost') });
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId,
      config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'] },
    });
    await s.runtime.StartContainer({ containerId });
    const { monitorPid } = JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!);
    expect(lost.map(([p]) => p.pid)).not.toContain(monitorPid); // a monitor spawned for it
    expect((await s.runtime.ContainerStatus({ containerId })).status!.state).toBe('CONTAINER_RUNNING');
    await until('the lost spares gone', () => lost.every(([p]) => !isAlive(p)));
    await until('the pool refilled', () => spares(dir).size === 2);
    await s.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('spares killed while they wait are passed over; each monitor recorded is the one that runs its container', async () => {
    await until('two spares', () => spares(dir).size === 2);
    const dead = [...spares(dir).keys()].map(identifyOr);
    for (const p of dead) process.kill(p.pid, 'SIGKILL');
    await until('the spares dead', () => dead.every((p) => !isAlive(p)));
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('spares-killed') });
    // The first create finds no live spare and spawns a monitor; the second gets a spare started after the first.
    for (const [name, fromSpare] of [['spawned', false], ['spare', true]] as const) {
      const ready = spares(dir);
      const { containerId } = await s.runtime.CreateContainer({
        podSandboxId,
        config: { metadata: { name }, image: { image: BUSYBOX }, command: ['sleep', '300'] },
      });
      await s.runtime.StartContainer({ containerId });
      const { monitorPid, pid } = JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!);
      expect(dead.map((p) => p.pid)).not.toContain(monitorPid);
      expect(ready.has(monitorPid), name).toBe(fromSpare);
      expect(readProcStat(pid)!.ppid).toBe(monitorPid);
      // The record names the monitor by pid and start time (a wrong start time would make it look gone).
      const record = JSON.parse(readFileSync(join(s.state, 'containers', containerId, 'record.json'), 'utf8'));
      expect(record.monitor, name).toEqual(identify(monitorPid));
      await until('the pool refilled', () => spares(dir).size === 2);
    }
    await s.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('a create that fails after a spare was handed its container leaves no monitor behind', async () => {
    await until('two spares', () => spares(dir).size === 2);
    const before = spares(dir);
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('spares-fail') });
    // The kernel refuses a cpu the host lacks when the server writes the cgroup, after the hand-over.
    const err = await s.runtime
      .CreateContainer({
        podSandboxId,
        config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'], linux: { resources: { cpusetCpus: '4095' } } },
      })
      .catch((e) => e);
    expect(grpcCode(err)).toBe('INVALID_ARGUMENT');
    const taken = [...before.keys()].filter((p) => !spares(dir).has(p));
    expect(taken.length).toBe(1);
    await until('the handed spare gone', () => !isAlive(identifyOr(taken[0]!)));
    expect((await s.runtime.ListContainers({})).containers).toEqual([]);
    // Nothing of the container's cgroup is left in any hierarchy.
    const podCgroup = Cgroups.detect().procsDirs(`peapod/${podSandboxId}`);
    for (const d of podCgroup) {
      expect(existsSync(d) ? readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()) : [], d).toEqual([]);
    }
    await until('the pool refilled', () => spares(dir).size === 2);
    // The init the killed monitor had forked, now the server's child, is reaped: pause can end.
    await s.runtime.RemovePodSandbox({ podSandboxId });
  });

  it("the init a killed monitor had forked before its report is reaped at the server's next sweep, not with its pod", async () => {
    // The server dwells after the hand-over (the monitor forks its init and reports meanwhile), then the kernel refuses the cpuset.
    await s.restart({ PEAPOD_FAILPOINTS: 'container.after-spawn=delay-500' });
    try {
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('spares-orphan') });
      const pause = JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info!).pid as number;
      const config = { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'], linux: { resources: { cpusetCpus: '4095' } } };
      expect(grpcCode(await s.runtime.CreateContainer({ podSandboxId, config }).catch((e) => e))).toBe('INVALID_ARGUMENT');
      // Before the pod goes: a zombie left in it would hold a pid there, and the reaper's one-call sweep, for the pod's life.
      await until('the pod to hold its pause alone', () => pidNamespaceMembers(pause).length === 1, 5000).catch(() => undefined);
      expect(pidNamespaceMembers(pause)).toEqual([pause]);
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      await s.restart();
    }
  });

  it('a killed server leaves its spares waiting; the next one dismisses them and starts its own', async () => {
    await until('two spares', () => spares(dir).size === 2);
    const old = spares(dir);
    await s.restart();
    await until('old spares gone, new ones waiting', () => {
      const now = spares(dir);
      return now.size === 2 && [...old.keys()].every((p) => !now.has(p));
    });
    // Exited (PID 1, their parent now, may not have reaped them yet).
    for (const p of old.keys()) expect(isAlive(identifyOr(p)), `spare ${p}`).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.fifo')).sort()).toEqual([...spares(dir).values()].map((f) => f.slice(dir.length + 1)).sort());
  });

  it('a server that stops takes its spares with it', async () => {
    await until('two spares', () => spares(dir).size === 2);
    const old = [...spares(dir).keys()].map(identifyOr);
    const server = identifyOr(s.pid);
    process.kill(s.pid, 'SIGTERM');
    await until('the server gone', () => !isAlive(server));
    for (const p of old) expect(isAlive(p), `spare ${p.pid}`).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.fifo'))).toEqual([]);
    await s.restart();
  });
});
