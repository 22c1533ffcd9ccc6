// Faults: the server killed (-9) at each step of CreateContainer,
// StartContainer, StopContainer and RemovePodSandbox; a container's monitor
// killed; the pod's log file system full; the image root full during a load;
// the state dir full when a record is written.
// After each, the state is consistent, nothing leaks and the operation can be
// retried to success.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCode, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox, sleeper } from '../support/images.js';
import { mountsContaining, peapodCommand, runtime, startServer, type TestServer } from '../support/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Processes whose command line names one of `paths` (monitors, execs), and live ones among `pids`. */
function leftoverProcesses(paths: string[], pids: number[]): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' ');
      if (paths.some((x) => cmd.includes(x)) && !cmd.includes(' serve ')) out.push(`${p}: ${cmd}`);
    } catch {
      // gone
    }
  }
  for (const pid of pids) if (alive(pid)) out.push(`${pid} still alive`);
  return out;
}

/** cgroup directories named after one of `ids`, in every hierarchy's peapod tree. */
function leftoverCgroups(ids: string[]): string[] {
  const out: string[] = [];
  const roots = ['/sys/fs/cgroup/peapod', ...readdirSync('/sys/fs/cgroup').map((h) => `/sys/fs/cgroup/${h}/peapod`)];
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return;
    }
    for (const n of names) {
      if (ids.includes(n)) out.push(join(dir, n));
      if (depth < 2) walk(join(dir, n), depth + 1);
    }
  };
  for (const r of roots) walk(r, 0);
  return out;
}

describe(`faults [server on ${runtime}]`, () => {
  let s: TestServer;
  let logDir: string;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    logDir = join(s.root, '..', 'logs');
    mkdirSync(logDir, { recursive: true });
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  /** Restarts the server with one failpoint set to kill it there. */
  const armed = (name: string) => s.restart({ PEAPOD_FAILPOINTS: `${name}=exit` });

  /** Runs `op`, which must die with the server (the failpoint kills it mid-call). */
  async function dies(op: () => Promise<unknown>): Promise<void> {
    const err = await op().then(
      () => new Error('the call succeeded: the failpoint did not fire'),
      (e: unknown) => e,
    );
    expect(['UNAVAILABLE', 'CANCELLED', 'INTERNAL'], String(err)).toContain(grpcCode(err));
    await sleep(100);
  }

  async function pod(name: string) {
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig(name, { logDirectory: join(logDir, name) }) });
    const pause = JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info!).pid as number;
    return { podSandboxId, pause };
  }
  const config = (name: string, command = ['sleep', '300']) => ({ metadata: { name }, image: { image: BUSYBOX }, command, logPath: `${name}.log` });
  const status = async (containerId: string) => (await s.runtime.ContainerStatus({ containerId })).status!;
  const info = async (containerId: string) =>
    JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!) as { pid: number; monitorPid: number };

  /** Removes the pod and checks that nothing of it or its containers is left anywhere. */
  async function removeAndCheck(podSandboxId: string, pids: number[]): Promise<void> {
    const ids = [podSandboxId, ...(await s.runtime.ListContainers({ filter: { podSandboxId } })).containers.map((c) => c.id!)];
    await s.runtime.RemovePodSandbox({ podSandboxId });
    expect((await s.runtime.ListPodSandbox({})).items.filter((i) => i.id === podSandboxId)).toEqual([]);
    expect(leftoverProcesses([join(s.state, 'containers'), join(s.state, 'sandboxes', podSandboxId)], pids)).toEqual([]);
    expect(mountsContaining(s.state)).toEqual([]);
    expect(leftoverCgroups(ids)).toEqual([]);
    for (const dir of [join(s.root, 'containers'), join(s.state, 'containers'), join(s.root, 'sandboxes'), join(s.state, 'sandboxes')]) {
      expect(existsSync(dir) ? readdirSync(dir) : [], dir).toEqual([]);
    }
    // No image lease is held by a container that does not exist.
    const image = await s.image.ImageStatus({ image: { image: BUSYBOX }, verbose: true });
    expect(JSON.parse(image.info.info!).usedBy).toEqual([]);
  }

  for (const point of ['container.after-prepare', 'container.after-record', 'container.after-spawn', 'container.after-monitor']) {
    it(`CreateContainer killed at ${point}: cleaned up or kept whole at restart, then retried`, async () => {
      const p = await pod(`create-${point.replace(/\W/g, '-')}`);
      await armed(point);
      await dies(() => s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') }));
      await s.restart();
      const listed = (await s.runtime.ListContainers({ filter: { podSandboxId: p.podSandboxId } })).containers;
      let id: string;
      if (point === 'container.after-monitor') {
        // The create was complete on disk: the container is kept, CREATED, and its name reserved.
        expect(listed.map((c) => c.state)).toEqual(['CONTAINER_CREATED']);
        const again = await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') }).catch((e) => e);
        expect(grpcCode(again)).toBe('ALREADY_EXISTS');
        id = listed[0]!.id!;
      } else {
        // Half-made: nothing of it survives the restart, and the name is free again.
        expect(listed).toEqual([]);
        expect(readdirSync(join(s.root, 'containers'))).toEqual([]);
        id = (await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') })).containerId;
      }
      await s.runtime.StartContainer({ containerId: id });
      expect((await status(id)).state).toBe('CONTAINER_RUNNING');
      const { pid, monitorPid } = await info(id);
      await removeAndCheck(p.podSandboxId, [pid, monitorPid, p.pause]);
    });
  }

  it('a monitor the server spawned but never heard from (no spare was ready) is found by its argv at restart', async () => {
    const p = await pod('unheard-monitor');
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') });
    const { pid, monitorPid } = await info(containerId);
    await s.kill9();
    // As if the server died between spawning this monitor and its report: no pid recorded.
    process.kill(monitorPid, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    const dir = join(s.state, 'containers', containerId);
    const record = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8'));
    writeFileSync(join(dir, 'record.json'), JSON.stringify({ ...record, monitor: null, init: null }));
    // A stand-in whose argv ends as a spawned monitor's does.
    const standIn = spawn('/bin/sh', ['-c', 'sleep 300; :', 'peapod-monitor', '--spec', join(dir, 'spec'), '--dir', dir], { stdio: 'ignore', detached: true });
    const gone = new Promise((r) => standIn.once('exit', r));
    try {
      await s.restart();
      expect(await Promise.race([gone.then(() => 'killed'), sleep(10_000).then(() => 'still running')])).toBe('killed');
      expect((await s.runtime.ListContainers({ filter: { podSandboxId: p.podSandboxId } })).containers).toEqual([]);
    } finally {
      try {
        process.kill(-standIn.pid!, 'SIGKILL');
      } catch {
        // its group is gone
      }
    }
    await removeAndCheck(p.podSandboxId, [pid, monitorPid, p.pause]);
  });

  it('StartContainer killed after the start: RUNNING after the restart, a retried start is refused, stop works', async () => {
    const p = await pod('start-killed');
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') });
    await armed('container.after-start');
    await dies(() => s.runtime.StartContainer({ containerId }));
    await s.restart();
    expect((await status(containerId)).state).toBe('CONTAINER_RUNNING');
    expect(grpcCode(await s.runtime.StartContainer({ containerId }).catch((e) => e))).toBe('FAILED_PRECONDITION');
    const { pid, monitorPid } = await info(containerId);
    expect(alive(pid)).toBe(true);
    await s.runtime.StopContainer({ containerId, timeout: '0' });
    expect((await status(containerId)).state).toBe('CONTAINER_EXITED');
    await removeAndCheck(p.podSandboxId, [pid, monitorPid, p.pause]);
  });

  it('StopContainer killed after the signal: the exit is found at restart, a retried stop succeeds', async () => {
    const p = await pod('stop-killed');
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') });
    await s.runtime.StartContainer({ containerId });
    const { pid, monitorPid } = await info(containerId);
    await armed('container.after-stop-signal');
    await dies(() => s.runtime.StopContainer({ containerId, timeout: '10' }));
    await s.restart();
    await s.runtime.StopContainer({ containerId, timeout: '10' });
    const st = await status(containerId);
    expect(st.state).toBe('CONTAINER_EXITED');
    expect(st.exitCode).toBe(143); // SIGTERM, sent once before the kill
    expect(alive(pid)).toBe(false);
    await removeAndCheck(p.podSandboxId, [pid, monitorPid, p.pause]);
  });

  // The second point falls after the netns pin and shm were unmounted, before the files went.
  for (const point of ['sandbox.remove-after-containers', 'sandbox.remove-after-unmount']) {
    it(`RemovePodSandbox killed at ${point}: the sandbox stays NOTREADY, a retried remove cleans all`, async () => {
      const p = await pod(point.replace(/\W/g, '-'));
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') });
      await s.runtime.StartContainer({ containerId });
      const { pid, monitorPid } = await info(containerId);
      await armed(point);
      await dies(() => s.runtime.RemovePodSandbox({ podSandboxId: p.podSandboxId }));
      // Killed before or after the pin and the shm went.
      expect(mountsContaining(p.podSandboxId)).toHaveLength(point === 'sandbox.remove-after-unmount' ? 0 : 2);
      await s.restart();
      const items = (await s.runtime.ListPodSandbox({})).items.filter((i) => i.id === p.podSandboxId);
      expect(items.map((i) => i.state)).toEqual(['SANDBOX_NOTREADY']);
      expect((await s.runtime.ListContainers({ filter: { podSandboxId: p.podSandboxId } })).containers).toEqual([]);
      expect(alive(pid) || alive(p.pause)).toBe(false);
      await removeAndCheck(p.podSandboxId, [pid, monitorPid, p.pause]);
    });
  }

  it('a monitor killed with -9 while its container runs: still RUNNING (the process is), then Stop and Remove clean all', async () => {
    // Chosen behaviour: the container is reported by its process, not by its monitor. Its log
    // stops (the pipe's reader is gone), and its exit code is unknown, reported as 255 with the
    // message "the container monitor died" once the process is gone.
    const p = await pod('monitor-killed');
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') });
    await s.runtime.StartContainer({ containerId });
    const { pid, monitorPid } = await info(containerId);
    process.kill(monitorPid, 'SIGKILL');
    await sleep(300);
    expect((await status(containerId)).state).toBe('CONTAINER_RUNNING');
    expect(alive(pid)).toBe(true);
    const t = Date.now();
    await s.runtime.StopContainer({ containerId, timeout: '5' });
    expect(Date.now() - t).toBeLessThan(8000);
    const st = await status(containerId);
    expect(st.state).toBe('CONTAINER_EXITED');
    expect(st.exitCode).toBe(255);
    expect(st.message).toMatch(/monitor died/);
    expect(alive(pid)).toBe(false);
    await removeAndCheck(p.podSandboxId, [pid, monitorPid, p.pause]);
  });

  it('a monitor killed with -9 before the start: the container leaves CREATED, its init goes too, a start is refused', async () => {
    // Between create and start the server knows its monitor alive by the connection it holds: that must not outlive the monitor.
    const p = await pod('monitor-killed-created');
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p.podSandboxId, config: config('c') });
    expect((await status(containerId)).state).toBe('CONTAINER_CREATED');
    const { pid, monitorPid } = await info(containerId);
    expect(alive(pid) && alive(monitorPid)).toBe(true);
    process.kill(monitorPid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while ((await status(containerId)).state === 'CONTAINER_CREATED' && Date.now() < deadline) await sleep(50);
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    expect(alive(pid)).toBe(false); // the init waited on a pipe from its monitor
    // Ended, so that the kubelet can remove it (as when a started container's monitor dies).
    const st = await status(containerId);
    expect([st.state, st.exitCode, st.startedAt]).toEqual(['CONTAINER_EXITED', 255, '0']);
    expect(st.message).toMatch(/monitor died/);
    const err = await s.runtime.StartContainer({ containerId }).catch((e) => e);
    expect(grpcCode(err)).toBe('FAILED_PRECONDITION');
    await removeAndCheck(p.podSandboxId, [pid, monitorPid, p.pause]);
  });

  it('the log file system full: the container keeps running, and logs resume once space is freed', async () => {
    const dir = join(logDir, 'full');
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
    try {
      writeFileSync(join(dir, 'filler'), Buffer.alloc(128 * 1024, 'f'));
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('log-full', { logDirectory: dir }) });
      const line = 'x'.repeat(200);
      const { containerId } = await s.runtime.CreateContainer({
        podSandboxId,
        config: config('chatty', ['sh', '-c', `i=0; while true; do echo "$i ${line}"; i=$((i+1)); done`]),
      });
      await s.runtime.StartContainer({ containerId });
      const log = join(dir, 'chatty.log');
      // Full: the file stops growing.
      let size = -1;
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        const now = statSync(log).size;
        if (now === size) break;
        size = now;
      }
      expect(spawnSync('df', ['--output=avail', '-B1', dir]).stdout.toString()).toMatch(/\n\s*\d{1,4}\s*$/); // < 10 KB left
      expect((await status(containerId)).state).toBe('CONTAINER_RUNNING');
      const r = await s.runtime.ExecSync({ containerId, cmd: ['echo', 'alive'], timeout: '10' });
      expect(Buffer.from(r.stdout).toString()).toBe('alive\n');
      const lastBefore = Number(/(\d+) x+\n?$/.exec(readFileSync(log, 'utf8').trimEnd().split('\n').at(-1)!)?.[1] ?? -1);
      unlinkSync(join(dir, 'filler'));
      let grown = false;
      for (let i = 0; i < 50 && !grown; i++) {
        await sleep(100);
        grown = statSync(log).size > size + 64 * 1024;
      }
      expect(grown).toBe(true);
      // What was written after the space came back are whole CRI lines, with later counters.
      // The monitor may be mid-write: only lines already ended count.
      const text = readFileSync(log, 'utf8');
      const lines = text.slice(0, text.lastIndexOf('\n')).split('\n');
      const last = lines.at(-1)!;
      expect(last).toMatch(/^\S+ stdout [PF] \d+ x+$/);
      expect(Number(/ (\d+) x+$/.exec(last)![1])).toBeGreaterThan(lastBefore);
      expect((await status(containerId)).state).toBe('CONTAINER_RUNNING');
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      spawnSync('umount', ['-l', dir]);
    }
  });
});

describe(`image root full [server on ${runtime}]`, () => {
  let s: TestServer;
  let archive: string;
  beforeAll(async () => {
    // The root on a tmpfs that fits the embedded pause image but not much more.
    s = await startServer({}, async (root) => {
      mkdirSync(root, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', root]);
    });
    // An image of 8 MiB of incompressible bytes.
    const { buildImage, ociArchiveOf } = await import('../support/image-archive.js');
    const { makeTar } = await import('../support/image-tar.js');
    const { randomBytes } = await import('node:crypto');
    const layer = await makeTar([{ name: 'big', content: randomBytes(8 * 1024 * 1024) }]);
    archive = join(tmpdir(), `peapod-big-${process.pid}.tar`);
    writeFileSync(archive, await ociArchiveOf(buildImage([layer], { gzipLayers: false }), 'example.com/big:1'));
  });
  afterAll(async () => {
    rmSync(archive, { force: true });
    await s?.cleanup(); // kills the server, unmounts the tmpfs, removes the roots
  });

  it('a load bigger than the disk fails with RESOURCE_EXHAUSTED naming ENOSPC, leaving no partial image or blob', async () => {
    const blobsDir = join(s.root, 'images', 'blobs', 'sha256');
    const before = readdirSync(blobsDir).sort();
    const imagesBefore = (await s.image.ListImages({})).images.map((i) => i.id);
    const res = spawnSync(peapodCommand[0], [...peapodCommand.slice(1), 'image', 'load', '--socket', s.socket, archive], { encoding: 'utf8' });
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/RESOURCE_EXHAUSTED/);
    expect(res.stderr).toMatch(/ENOSPC|no space left/i);
    expect((await s.image.ListImages({})).images.map((i) => i.id)).toEqual(imagesBefore);
    expect(readdirSync(blobsDir).sort()).toEqual(before);
    const leftovers = readdirSync(join(s.root, 'images')).filter((n) => n.startsWith('.tmp'));
    expect(leftovers).toEqual([]);
    // Space is back: a small image still loads.
    const df = spawnSync('df', ['--output=avail', '-B1', s.root]).stdout.toString();
    expect(Number(df.trim().split('\n').at(-1))).toBeGreaterThan(1024 * 1024);
    expect((await s.runtime.Version({})).runtimeName).toBe('peapod');
  });
});

describe(`state dir full [server on ${runtime}]`, () => {
  let s: TestServer;
  let filler: string;
  beforeAll(async () => {
    // The state dir on a small tmpfs, as a node's /run is.
    s = await startServer({}, async (root) => {
      const state = join(root, '..', 'state');
      mkdirSync(state, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', state]);
      await preloadBusybox(root);
    });
    filler = join(s.state, 'filler');
  });
  afterAll(async () => {
    await s?.cleanup(); // kills the server, unmounts the tmpfs, removes the roots
  });

  /** Writes `filler` until the file system has not one page left. */
  function fill(): void {
    const fd = openSync(filler, 'w');
    try {
      for (const size of [1 << 16, 1 << 12, 1]) {
        const chunk = Buffer.alloc(size, 'f');
        try {
          for (;;) writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  it('a record that does not fit fails the call with RESOURCE_EXHAUSTED and changes nothing; after a restart every record is whole', async () => {
    const config = podConfig('state-full');
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config });
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: sleeper('c'), sandboxConfig: config });
    await s.runtime.StartContainer({ containerId });
    const resources = async () => (await s.runtime.ContainerStatus({ containerId })).status!.resources!.linux!;
    const before = await resources();
    const sandboxes = readdirSync(join(s.state, 'sandboxes'));
    const containers = readdirSync(join(s.state, 'containers'));
    fill();
    try {
      const run = await s.runtime.RunPodSandbox({ config: podConfig('state-full-2') }).catch((e) => e);
      expect(grpcCode(run)).toBe('RESOURCE_EXHAUSTED');
      expect(String(run.message)).toMatch(/ENOSPC|no space left/i);
      const create = await s.runtime.CreateContainer({ podSandboxId, config: sleeper('c2'), sandboxConfig: config }).catch((e) => e);
      expect(grpcCode(create)).toBe('RESOURCE_EXHAUSTED');
      const update = await s.runtime.UpdateContainerResources({ containerId, linux: { cpuShares: '512', cpuQuota: '20000' } }).catch((e) => e);
      expect(grpcCode(update)).toBe('RESOURCE_EXHAUSTED');

      // Nothing was made, nothing changed.
      expect((await s.runtime.ListPodSandbox({})).items.map((p) => p.id)).toEqual([podSandboxId]);
      expect((await s.runtime.ListContainers({})).containers.map((c) => c.id)).toEqual([containerId]);
      expect(readdirSync(join(s.state, 'sandboxes'))).toEqual(sandboxes);
      expect(readdirSync(join(s.state, 'containers'))).toEqual(containers);
      expect(await resources()).toEqual(before);
      expect(leftoverProcesses([join(s.state, 'sandboxes'), join(s.state, 'containers')], []).filter((p) => !p.includes(podSandboxId) && !p.includes(containerId))).toEqual([]);
    } finally {
      unlinkSync(filler);
    }

    // Every record reads back whole: the pod and its container, running, with their limits.
    await s.restart();
    expect((await s.runtime.PodSandboxStatus({ podSandboxId })).status!.state).toBe('SANDBOX_READY');
    const { status } = await s.runtime.ContainerStatus({ containerId });
    expect(status!.state).toBe('CONTAINER_RUNNING');
    expect(status!.resources!.linux).toEqual(before);
    // And with room again, the same calls succeed.
    const second = await s.runtime.RunPodSandbox({ config: podConfig('state-full-2') });
    await s.runtime.UpdateContainerResources({ containerId, linux: { cpuShares: '512' } });
    expect((await resources()).cpuShares).toBe('512');
    await s.runtime.RemovePodSandbox({ podSandboxId: second.podSandboxId });
    await s.runtime.RemovePodSandbox({ podSandboxId });
  });
});

// The harness's own clean-up (reclaim), when a server dies under its pods:
// what a crashed test leaves must not outlive it.
describe(`the test harness after a killed server [server on ${runtime}]`, () => {
  it('leaves no pause, monitor, container (one with a PID namespace of its own too), cgroup or mount behind', async () => {
    const s = await startServer({}, preloadBusybox);
    const ids: string[] = [];
    const pids: number[] = [];
    let cleaned = false;
    try {
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('reclaimed') });
      ids.push(podSandboxId);
      for (const pid of ['POD', 'CONTAINER'] as const) {
        const { containerId } = await s.runtime.CreateContainer({
          podSandboxId,
          config: { metadata: { name: pid.toLowerCase() }, image: { image: BUSYBOX }, command: ['sleep', '300'], linux: { securityContext: { namespaceOptions: { pid } } } },
          sandboxConfig: podConfig('reclaimed'),
        });
        await s.runtime.StartContainer({ containerId });
        ids.push(containerId);
        const v = JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!) as { pid: number; monitorPid: number };
        pids.push(v.pid, v.monitorPid);
      }
      pids.push(JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info!).pid as number);
      expect(leftoverCgroups(ids).length).toBeGreaterThan(0);
      await s.kill9();
      expect(pids.every(alive)).toBe(true); // the pods outlive their server
      await s.cleanup();
      cleaned = true;
      expect(pids.filter(alive)).toEqual([]);
      expect(leftoverCgroups(ids)).toEqual([]);
      expect(mountsContaining(s.state)).toEqual([]);
      expect(existsSync(s.state)).toBe(false);
    } finally {
      if (!cleaned) await s.cleanup();
    }
  });
});
