import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups } from '../../src/linux/cgroups.js';
import { execText, grpcCode, podConfig, runtimeCallWithDeadline } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox, sleeper } from '../support/images.js';
import { buildImage, ociArchiveOf } from '../support/image-archive.js';
import { makeTar } from '../support/image-tar.js';
import { mountsContaining, nsOf, peapodCommand, pidNamespaceMembers, runtime, startServer, threadNamespaces, type TestServer } from '../support/server.js';
import { inNanosleep, until } from '../support/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`containers [server on ${runtime}]`, () => {
  let s: TestServer;
  let logDir: string;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    logDir = mkdtempSync(join(tmpdir(), 'peapod-logs-'));
  });
  afterAll(async () => {
    await s?.cleanup();
    rmSync(logDir, { recursive: true, force: true });
  });

  async function pod(name: string, extra: Record<string, unknown> = {}) {
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig(name, { logDirectory: join(logDir, name), ...extra }) });
    return podSandboxId;
  }

  async function run(podId: string, name: string, command: string[], extra: Record<string, unknown> = {}) {
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId: podId,
      config: { metadata: { name }, image: { image: BUSYBOX }, command, logPath: `${name}.log`, ...extra },
    });
    await s.runtime.StartContainer({ containerId });
    return containerId;
  }

  async function waitExited(id: string, ms = 10_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const st = (await s.runtime.ContainerStatus({ containerId: id })).status!;
      if (st.state === 'CONTAINER_EXITED') return st;
      if (Date.now() > deadline) throw new Error(`container ${id} still ${st.state}`);
      await sleep(20);
    }
  }

  const exec = (id: string, cmd: string[], timeout = 10) => execText(s.runtime, id, cmd, timeout);

  const initPid = async (id: string) =>
    JSON.parse((await s.runtime.ContainerStatus({ containerId: id, verbose: true })).info.info!).pid as number;

  it('has the embedded pause image without any pull', async () => {
    const st = await s.image.ImageStatus({ image: { image: 'registry.k8s.io/pause:3.9' } });
    expect(st.image!.repoTags).toContain('registry.k8s.io/pause:3.9');
    expect(st.image!.username === '' ? Number(st.image!.uid!.value) : -1).toBe(65535);
  });

  it('PodSandboxStatus lists every container of the sandbox with the status ContainerStatus returns', async () => {
    // With a timestamp, an evented-PLEG kubelet takes a pod's containers from there alone.
    const p = await pod('with-ctrs');
    try {
      const empty = await s.runtime.PodSandboxStatus({ podSandboxId: p });
      expect(empty.containersStatuses).toEqual([]);
      expect(BigInt(empty.timestamp)).toBeGreaterThan(0n);
      const running = await run(p, 'running', ['sleep', '300']);
      const { containerId: created } = await s.runtime.CreateContainer({ podSandboxId: p, config: sleeper('created', { logPath: 'created.log' }) });
      const byId = new Map((await s.runtime.PodSandboxStatus({ podSandboxId: p })).containersStatuses.map((c) => [c.id, c]));
      expect([...byId.keys()].sort()).toEqual([running, created].sort());
      expect(byId.get(running)).toMatchObject({ state: 'CONTAINER_RUNNING', metadata: { name: 'running' }, image: { image: BUSYBOX } });
      expect(byId.get(created)).toMatchObject({ state: 'CONTAINER_CREATED', metadata: { name: 'created' } });
      for (const id of [running, created]) expect(byId.get(id)).toEqual((await s.runtime.ContainerStatus({ containerId: id })).status);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('runs two containers that share the pod network, UTS, IPC and PID namespaces', async () => {
    const p = await pod('shared-ns');
    try {
      const a = await run(p, 'a', ['sleep', '300']);
      const b = await run(p, 'b', ['sleep', '300']);
      const [pa, pb] = [await initPid(a), await initPid(b)];
      for (const ns of ['net', 'uts', 'ipc', 'pid']) expect(nsOf(pa, ns), ns).toBe(nsOf(pb, ns));
      expect(nsOf(pa, 'mnt')).not.toBe(nsOf(pb, 'mnt'));
      expect(nsOf(pa, 'net')).not.toBe(nsOf('self', 'net'));
      expect((await exec(b, ['hostname'])).out.trim()).toBe('shared-ns');
      // A System V segment made in the pod's IPC namespace is seen by both containers, not by the host.
      const ipcNs = JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId: p, verbose: true })).info.info!).namespaces.ipc;
      execFileSync('nsenter', [`--ipc=${ipcNs}`, 'ipcmk', '-M', '4321']);
      expect((await exec(a, ['cat', '/proc/sysvipc/shm'])).out).toMatch(/\b4321\b/);
      expect((await exec(b, ['cat', '/proc/sysvipc/shm'])).out).toMatch(/\b4321\b/);
      expect(readFileSync('/proc/sysvipc/shm', 'utf8')).not.toMatch(/\b4321\b/);
      const ps = (await exec(b, ['ps', '-o', 'pid,comm'])).out;
      expect(ps).toMatch(/^\s*1\s+pause$/m);
      expect(ps.match(/^\s*\d+\s+sleep$/gm)).toHaveLength(2); // a's and b's
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('shares a host directory between containers and hides host files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-shared-'));
    const p = await pod('volume');
    try {
      const mount = { containerPath: '/data', hostPath: dir };
      const w = await run(p, 'writer', ['sh', '-c', 'echo from-writer > /data/msg; sleep 300'], { mounts: [mount] });
      const r = await run(p, 'reader', ['sleep', '300'], { mounts: [{ ...mount, readonly: true }] });
      await sleep(200);
      expect((await exec(r, ['cat', '/data/msg'])).out).toBe('from-writer\n');
      expect(readFileSync(join(dir, 'msg'), 'utf8')).toBe('from-writer\n');
      expect((await exec(r, ['sh', '-c', 'echo x > /data/y'])).code).not.toBe(0);
      expect((await exec(w, ['cat', '/etc/debian_version'])).code).not.toBe(0);
      expect(existsSync('/etc/debian_version')).toBe(true);
      const st = await s.runtime.ContainerStatus({ containerId: r });
      expect(st.status!.mounts).toEqual([
        expect.objectContaining({ containerPath: '/data', hostPath: dir, readonly: true, propagation: 'PROPAGATION_PRIVATE' }),
      ]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('mounts a parent before what is mounted below it, whatever the order the mounts are given in (containerd sorts them)', async () => {
    const base = mkdtempSync(join(tmpdir(), 'peapod-nested-'));
    const [parent, child] = [join(base, 'parent'), join(base, 'child')];
    mkdirSync(parent);
    mkdirSync(child);
    writeFileSync(join(child, 'msg'), 'from-child\n');
    const p = await pod('nested');
    try {
      const mounts = [
        { containerPath: '/data/sub', hostPath: child },
        { containerPath: '/data', hostPath: parent },
      ];
      const id = await run(p, 'c', ['sleep', '300'], { mounts });
      expect(await exec(id, ['cat', '/data/sub/msg'])).toMatchObject({ out: 'from-child\n', code: 0 });
      // The pod's files go in the same order: below a volume at /etc, /etc/hostname is still the pod's.
      const etc = await run(p, 'etc', ['sleep', '300'], { mounts: [{ containerPath: '/etc', hostPath: parent }] });
      expect((await exec(etc, ['cat', '/etc/hostname'])).out).toBe('nested\n');
      expect(readFileSync(join(parent, 'hostname'), 'utf8')).toBe(''); // the mount target made in the volume, as runc makes it
      expect((await s.runtime.ContainerStatus({ containerId: id })).status!.mounts.map((m) => m.containerPath)).toEqual(['/data/sub', '/data']);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('makes a missing host path a directory (0755) and mounts it, as containerd', async () => {
    const base = mkdtempSync(join(tmpdir(), 'peapod-made-'));
    const missing = join(base, 'made', 'deep');
    const p = await pod('made');
    try {
      const id = await run(p, 'c', ['sh', '-c', 'echo hi > /v/f; sleep 300'], { mounts: [{ containerPath: '/v', hostPath: missing }] });
      // The shell makes the file, then writes it: wait for the whole line.
      await until('the file the container wrote', () => existsSync(join(missing, 'f')) && readFileSync(join(missing, 'f'), 'utf8') === 'hi\n');
      for (const dir of [join(base, 'made'), missing]) expect(statSync(dir).mode & 0o7777).toBe(0o755 & ~process.umask());
      expect((await s.runtime.ContainerStatus({ containerId: id })).status!.mounts).toEqual([expect.objectContaining({ containerPath: '/v', hostPath: missing })]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("sets HOSTNAME to the sandbox's hostname (the node's when it has none) before the image's and the config's env, which replace it", async () => {
    const p = await pod('env-host');
    const host = await pod('env-host-net', { hostname: '', linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } });
    try {
      const env = async (podId: string, name: string, extra: Record<string, unknown> = {}) => {
        const id = await run(podId, name, ['sleep', '300'], extra);
        return (await exec(id, ['env'])).out.split('\n').filter((l) => l.startsWith('HOSTNAME='));
      };
      expect(await env(p, 'pod')).toEqual(['HOSTNAME=env-host']);
      expect(await env(p, 'own', { envs: [{ key: 'HOSTNAME', value: Buffer.from('mine') }] })).toEqual(['HOSTNAME=mine']);
      expect(await env(host, 'node')).toEqual([`HOSTNAME=${hostname()}`]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      await s.runtime.RemovePodSandbox({ podSandboxId: host });
    }
  });

  it('makes a missing working dir in the rootfs as root (0755, a read-only root too), never through a magic link out of it', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'peapod-wd-'));
    const p = await pod('workdir');
    try {
      const id = await run(p, 'c', ['sleep', '300'], {
        workingDir: '/no/such/wd',
        linux: { securityContext: { runAsUser: { value: '1000' }, readonlyRootfs: true } },
      });
      expect((await exec(id, ['pwd'])).out).toBe('/no/such/wd\n');
      expect((await exec(id, ['stat', '-c', '%u %a', '/no', '/no/such/wd'])).out).toBe('0 755\n0 755\n');
      // The pod's PID 1 is pause, whose root is the host's: /proc/1/root leads out of the container.
      const escape = join(outside, 'escape');
      const create = s.runtime.CreateContainer({ podSandboxId: p, config: sleeper('escape', { workingDir: `/proc/1/root${escape}` }) });
      await expect(create).rejects.toThrow(/working dir/);
      expect(existsSync(escape)).toBe(false);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("reports the image as containerd: ContainerStatus the image's tag, repo digest (else id) and id, ListContainers the image as sent", async () => {
    const img = (await s.image.ImageStatus({ image: { image: BUSYBOX } })).image!;
    const p = await pod('image-names');
    try {
      // As the kubelet sends it: the image id, and the pod spec's image as user_specified_image.
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p, config: sleeper('c', { image: { image: img.id, userSpecifiedImage: 'busybox' } }) });
      const st = (await s.runtime.ContainerStatus({ containerId })).status!;
      expect(st.image).toMatchObject({ image: img.repoTags[0], userSpecifiedImage: 'busybox' });
      expect(st.imageRef).toBe(img.repoDigests[0] ?? img.id);
      expect(st.imageId).toBe(img.id);
      const [listed] = (await s.runtime.ListContainers({ filter: { id: containerId } })).containers;
      expect(listed!.image).toMatchObject({ image: img.id, userSpecifiedImage: 'busybox' });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('ContainerStatus names the image as it is now, as containerd looks it up: a tag and repo digest added after the create show', async () => {
    const built = buildImage([await makeTar([{ name: 'hello', content: 'hi\n' }])]);
    const load = async (tag: string) => {
      // An OCI layout: its manifest is real, so each repository gets a repo digest.
      const r = spawnSync(peapodCommand[0], [...peapodCommand.slice(1), 'image', 'load', '-', '--socket', s.socket], { input: await ociArchiveOf(built, tag), encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return (await s.image.ImageStatus({ image: { image: tag } })).image!;
    };
    const img = await load('example.com/peapod/status-b:1');
    const p = await pod('image-now');
    try {
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p, config: sleeper('c', { image: { image: img.id }, command: ['/hello'] }) });
      const status = async () => (await s.runtime.ContainerStatus({ containerId })).status!;
      expect((await status()).image!.image).toBe('example.com/peapod/status-b:1');
      const [listed] = (await s.runtime.ListContainers({ filter: { id: containerId } })).containers;
      const after = await load('example.com/peapod/status-a:1'); // the same image, one more tag, first by name
      expect(after.id).toBe(img.id);
      expect(after.repoTags).toEqual(['example.com/peapod/status-a:1', 'example.com/peapod/status-b:1']);
      expect(after.repoDigests).toEqual([`example.com/peapod/status-a@${built.manifestDigest}`, `example.com/peapod/status-b@${built.manifestDigest}`]);
      const st = await status();
      expect([st.image!.image, st.imageRef, st.imageId]).toEqual(['example.com/peapod/status-a:1', after.repoDigests[0], img.id]);
      // PodSandboxStatus's container statuses are the same; ListContainers keeps the image as sent.
      expect((await s.runtime.PodSandboxStatus({ podSandboxId: p })).containersStatuses[0]!.image!.image).toBe('example.com/peapod/status-a:1');
      expect((await s.runtime.ListContainers({ filter: { id: containerId } })).containers[0]!.image).toEqual(listed!.image);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      await s.image.RemoveImage({ image: { image: img.id } });
    }
  });

  it('propagates mounts made in a Bidirectional volume to the host, and no other mount of the container', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-bidi-'));
    // A shared mount of its own, as the kubelet makes its directory: the
    // mount the container's state dir is on is made private in the container.
    execFileSync('mount', ['--bind', dir, dir]);
    const p = await pod('bidirectional');
    try {
      execFileSync('mount', ['--make-private', dir]);
      execFileSync('mount', ['--make-shared', dir]);
      const id = await run(p, 'c', ['sleep', '300'], {
        mounts: [{ containerPath: '/v', hostPath: dir, propagation: 'PROPAGATION_BIDIRECTIONAL' }],
        linux: { securityContext: { privileged: true } },
      });
      expect(await exec(id, ['sh', '-c', 'mkdir /v/s && mount -t tmpfs t /v/s && echo ok'])).toMatchObject({ out: 'ok\n', code: 0 });
      expect(mountsContaining(dir)).toEqual([dir, join(dir, 's')]);
      expect(mountsContaining(join(s.state, 'containers'))).toEqual([]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      for (const mp of [join(dir, 's'), dir]) if (mountsContaining(mp).includes(mp)) execFileSync('umount', [mp]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a program found at set-up whose exec then fails: the start succeeds, then the container ends with StartError and the error', async () => {
    // Executable, but neither ELF nor "#!": the init finds it, execve refuses it (ENOEXEC) after the start was answered, as with runc.
    const dir = mkdtempSync(join(tmpdir(), 'peapod-noexec-'));
    const bad = join(dir, 'bad');
    writeFileSync(bad, 'not a program\n', { mode: 0o755 });
    const p = await pod('late-exec-failure');
    try {
      const id = await run(p, 'bad', ['/bad'], { mounts: [{ hostPath: bad, containerPath: '/bad', readonly: true }] });
      const st = await waitExited(id!);
      expect([st.exitCode, st.reason]).toEqual([128, 'StartError']);
      // The start was answered (it took effect): it has its time, as monitor.json has for a restarted server.
      expect(BigInt(st.startedAt!)).toBeGreaterThan(0n);
      expect(BigInt(st.finishedAt!)).toBeGreaterThanOrEqual(BigInt(st.startedAt!));
      expect(st.message).toMatch(/Exec format error/);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports exit codes, reasons and times', async () => {
    const p = await pod('exits');
    try {
      const ok = await run(p, 'ok', ['true']);
      const three = await run(p, 'three', ['sh', '-c', 'exit 3']);
      const killed = await run(p, 'killed', ['sh', '-c', 'kill -9 $$']);
      const missing = await run(p, 'missing', ['/no/such/binary']).catch((e) => e);
      const a = await waitExited(ok);
      expect([a.exitCode, a.reason]).toEqual([0, 'Completed']);
      expect(BigInt(a.finishedAt!)).toBeGreaterThanOrEqual(BigInt(a.startedAt!));
      expect(BigInt(a.startedAt!)).toBeGreaterThanOrEqual(BigInt(a.createdAt!));
      expect(a.imageRef).toMatch(/sha256:[0-9a-f]{64}$/);
      expect(a.image!.image).toBe(BUSYBOX);
      expect(a.logPath).toBe(join(logDir, 'exits', 'ok.log'));
      const b = await waitExited(three);
      expect([b.exitCode, b.reason]).toEqual([3, 'Error']);
      const c = await waitExited(killed);
      expect(c.exitCode).toBe(137);
      expect(grpcCode(missing)).toBe('FAILED_PRECONDITION');
      const { containers } = await s.runtime.ListContainers({ filter: { podSandboxId: p } });
      const d = await waitExited(containers.find((x) => x.metadata!.name === 'missing')!.id!);
      // A start that failed, as containerd reports it.
      expect([d.exitCode, d.reason, d.startedAt]).toEqual([128, 'StartError', '0']);
      expect(d.message).toMatch(/exec: No such file or directory/);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('stops with the grace period both ways: a TERM trap exits cleanly, a TERM-ignoring process is killed', async () => {
    const p = await pod('grace');
    try {
      const polite = await run(p, 'polite', ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 0.1; done"]);
      const stubborn = await run(p, 'stubborn', ['sh', '-c', "trap '' TERM; while true; do sleep 0.1; done"]);
      const instant = await run(p, 'instant', ['sleep', '300']);
      await sleep(200);
      let t = Date.now();
      await s.runtime.StopContainer({ containerId: polite, timeout: '10' });
      expect(Date.now() - t).toBeLessThan(3000);
      expect((await waitExited(polite)).exitCode).toBe(0);
      t = Date.now();
      await s.runtime.StopContainer({ containerId: stubborn, timeout: '1' });
      const took = Date.now() - t;
      expect(took).toBeGreaterThanOrEqual(1000);
      expect(took).toBeLessThan(4000);
      expect((await waitExited(stubborn)).exitCode).toBe(137);
      t = Date.now();
      await s.runtime.StopContainer({ containerId: instant, timeout: '0' });
      expect(Date.now() - t).toBeLessThan(1000);
      expect((await waitExited(instant)).exitCode).toBe(137);
      await s.runtime.StopContainer({ containerId: instant, timeout: '0' }); // idempotent
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('writes CRI logs byte for byte, long lines split into P pieces, and reopens after rotation', async () => {
    const p = await pod('logs');
    try {
      const id = await run(p, 'printer', ['sh', '-c', "printf 'one\\ntwo\\r\\n'; printf 'err\\n' >&2; head -c 20000 /dev/zero | tr '\\0' x; echo; printf 'tail-no-newline'"]);
      const st = await waitExited(id);
      const lines = readFileSync(st.logPath!, 'utf8').split('\n').filter(Boolean);
      const parsed = lines.map((l) => l.match(/^(\S+) (stdout|stderr) ([PF]) (.*)$/)!);
      for (const m of parsed) expect(m[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
      const out = parsed.filter((m) => m[2] === 'stdout').map((m) => [m[3], m[4]]);
      expect(out[0]).toEqual(['F', 'one']);
      expect(out[1]).toEqual(['F', 'two']);
      expect(out[2]).toEqual(['P', 'x'.repeat(16384)]);
      expect(out[3]).toEqual(['F', 'x'.repeat(20000 - 16384)]);
      expect(out[4]).toEqual(['P', 'tail-no-newline']);
      expect(parsed.filter((m) => m[2] === 'stderr').map((m) => [m[3], m[4]])).toEqual([['F', 'err']]);

      const rot = await run(p, 'rotated', ['sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done']);
      const path = (await s.runtime.ContainerStatus({ containerId: rot })).status!.logPath!;
      await sleep(300);
      renameSync(path, path + '.1');
      await s.runtime.ReopenContainerLog({ containerId: rot });
      expect(existsSync(path)).toBe(true);
      await sleep(300);
      expect(readFileSync(path, 'utf8')).toMatch(/stdout F tick \d+/);
      await expect(s.runtime.ReopenContainerLog({ containerId: id })).rejects.toSatisfy((e) => grpcCode(e) === 'FAILED_PRECONDITION');
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('asks "start" on the connection the monitor reported on, and lets it go after: reopen then needs control.sock', async () => {
    const p = await pod('channel');
    try {
      const { containerId } = await s.runtime.CreateContainer({
        podSandboxId: p,
        config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'], logPath: 'c.log' },
      });
      const sockPath = join(s.state, 'containers', containerId, 'control.sock');
      expect(existsSync(sockPath)).toBe(true);
      unlinkSync(sockPath);
      await s.runtime.StartContainer({ containerId });
      expect((await s.runtime.ContainerStatus({ containerId })).status!.state).toBe('CONTAINER_RUNNING');
      // Released after the start (no fd held per running container): the control socket is the only way now.
      const reopen = await s.runtime.ReopenContainerLog({ containerId }).catch((e) => e);
      expect(grpcCode(reopen)).toBe('FAILED_PRECONDITION');
      expect(reopen.details).toMatch(/not reachable/);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('passes no server file descriptor to a container and keeps the server in its own namespaces', async () => {
    const before = threadNamespaces(s.pid);
    const p = await pod('fds', { linux: { securityContext: { namespaceOptions: { pid: 'CONTAINER' } } } });
    try {
      const id = await run(p, 'c', ['sleep', '300'], { linux: { securityContext: { namespaceOptions: { pid: 'CONTAINER' } } } });
      const pid = await initPid(id);
      // The start answers before the exec: until sleep runs, the loader may hold its libraries open.
      await until('sleep to run', () => inNanosleep(pid));
      expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(['0', '1', '2']);
      expect(readlinkSync(`/proc/${pid}/fd/0`)).toBe('/dev/null');
      expect((await exec(id, ['cat', '/proc/1/comm'])).out.trim()).toBe('sleep');
      expect((await exec(id, ['ls', '/proc/1/fd'])).out.split(/\s+/).filter(Boolean).sort()).toEqual(['0', '1', '2']);
      expect(threadNamespaces(s.pid)).toEqual(before);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
    expect(threadNamespaces(s.pid)).toEqual(before);
  });

  it('puts the opt-in init in front of a container with its own PID namespace: it reaps and forwards signals', async () => {
    const own = { linux: { securityContext: { namespaceOptions: { pid: 'CONTAINER' } } } };
    const p = await pod('init', own);
    try {
      const id = await run(p, 'c', ['sh', '-c', "(sleep 0.1 &); trap 'exit 42' TERM; while true; do sleep 0.1; done"], {
        ...own,
        annotations: { 'peapod.io/init': 'true' },
      });
      await sleep(600);
      expect((await exec(id, ['cat', '/proc/1/comm'])).out.trim()).toBe('init');
      const states = (await exec(id, ['sh', '-c', 'cat /proc/[0-9]*/stat'])).out;
      // The orphaned sleep was reaped by init: no zombie is init's (sh's own sleeps may be, for an instant).
      expect(states).not.toMatch(/\) Z 1 /);
      await s.runtime.StopContainer({ containerId: id, timeout: '10' });
      expect((await waitExited(id)).exitCode).toBe(42); // TERM reached sh through init
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('applies the security context: user, read-only root, capabilities', async () => {
    const p = await pod('security');
    try {
      const id = await run(p, 'c', ['sleep', '300'], {
        linux: {
          securityContext: {
            runAsUser: { value: '1000' },
            supplementalGroups: ['4242'],
            readonlyRootfs: true,
            capabilities: { dropCapabilities: ['ALL'] },
            noNewPrivs: true,
          },
        },
      });
      const ids = (await exec(id, ['id'])).out;
      expect(ids).toMatch(/uid=1000/);
      expect(ids).toMatch(/4242/);
      expect((await exec(id, ['touch', '/x'])).err).toMatch(/Read-only file system/);
      const status = (await exec(id, ['cat', '/proc/self/status'])).out;
      expect(status).toMatch(/CapBnd:\s+0000000000000000/);
      expect(status).toMatch(/NoNewPrivs:\s+1/);
      const root = await run(p, 'root', ['sleep', '300'], { linux: { securityContext: { seccomp: { profileType: 'RuntimeDefault' } } } });
      const rootStatus = (await exec(root, ['cat', '/proc/self/status'])).out;
      expect(rootStatus).toMatch(/CapEff:\s+00000000a80425fb/);
      expect(rootStatus).toMatch(/Seccomp:\s+2/);
      // containerd's order: add ALL, drop ALL, the other adds, the other drops.
      const capEff = async (name: string, capabilities: Record<string, string[]>) => {
        const id = await run(p, name, ['sleep', '300'], { linux: { securityContext: { capabilities } } });
        return BigInt('0x' + /CapEff:\s+([0-9a-f]+)/.exec((await exec(id, ['cat', '/proc/self/status'])).out)![1]);
      };
      const [NET_RAW, SYS_ADMIN, SYS_TIME] = [1n << 13n, 1n << 21n, 1n << 25n];
      const allButRaw = await capEff('all-but-raw', { addCapabilities: ['ALL'], dropCapabilities: ['NET_RAW'] });
      expect([allButRaw & NET_RAW, allButRaw & SYS_ADMIN]).toEqual([0n, SYS_ADMIN]);
      expect((await capEff('added-and-dropped', { addCapabilities: ['SYS_TIME'], dropCapabilities: ['SYS_TIME'] })) & SYS_TIME).toBe(0n);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('ExecSync: exit codes, separate streams, timeout kills every process of the exec, background children do not hold it', async () => {
    const p = await pod('exec');
    try {
      const id = await run(p, 'c', ['sleep', '300']);
      // The exec is in the container's cgroups, every hierarchy, as its init is.
      const [mine, init] = (await exec(id, ['sh', '-c', 'cat /proc/self/cgroup; echo --; cat /proc/$(pidof sleep)/cgroup'])).out.split('--\n');
      expect(mine!.split('\n').length).toBeGreaterThan(2);
      expect(mine).toBe(init);
      expect(await exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 5'])).toEqual({ out: 'out\n', err: 'err\n', code: 5 });
      const t = Date.now();
      await expect(exec(id, ['sh', '-c', 'sleep 401 & sleep 402'], 1)).rejects.toSatisfy((e) => grpcCode(e) === 'DEADLINE_EXCEEDED');
      expect(Date.now() - t).toBeLessThan(5000);
      await sleep(100);
      const ps = (await exec(id, ['ps', '-o', 'args'])).out;
      expect(ps).toMatch(/sleep 300/);
      expect(ps).not.toMatch(/sleep 40[12]/);
      const t2 = Date.now();
      expect((await exec(id, ['sh', '-c', 'sleep 302 >/dev/null 2>&1 & echo started'])).out).toBe('started\n');
      expect(Date.now() - t2).toBeLessThan(3000);
      const big = await exec(id, ['sh', '-c', 'head -c 3000000 /dev/zero']);
      expect(big.out.length).toBe(3_000_000);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('ExecSync without a timeout whose client gives up kills the command, as containerd does with its request context', async () => {
    const p = await pod('exec-cancel');
    try {
      const id = await run(p, 'c', ['sleep', '300']);
      const cmdline = (pid: string) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        } catch {
          return ''; // gone
        }
      };
      const sleeps = () => readdirSync('/proc').filter((n) => /^\d+$/.test(n) && cmdline(n) === 'sleep\u00003017\u0000');
      const err = await runtimeCallWithDeadline(s.socket, 'ExecSync', { containerId: id, cmd: ['sh', '-c', 'sleep 3017; echo never'], timeout: '0' }, 1500);
      expect(grpcCode(err)).toBe('DEADLINE_EXCEEDED');
      await until('the command killed', () => sleeps().length === 0, 5000).catch(() => undefined);
      expect(sleeps()).toEqual([]);
      expect((await exec(id, ['echo', 'still here'])).out).toBe('still here\n'); // the container itself lives on
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('ends a container whose start fails before the exec as containerd does: EXITED, 128, StartError, nothing left running', async () => {
    const p = await pod('start-error');
    try {
      const { containerId: id } = await s.runtime.CreateContainer({
        podSandboxId: p,
        config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'] },
      });
      const init = await initPid(id);
      // The monitor puts the init into its cgroups once created (those the server has made by then)
      // and at start (the rest, and any removed since): take one away, moving the init out first.
      const pids = Cgroups.detect().open(`peapod/${p}/${id}`).procsDirs().find((d) => d.includes('/pids/'))!;
      writeFileSync(join(pids, '..', 'cgroup.procs'), String(init));
      rmdirSync(pids);
      await expect(s.runtime.StartContainer({ containerId: id })).rejects.toSatisfy(
        (e) => grpcCode(e) === 'FAILED_PRECONDITION' && /join cgroup .*pids/.test(String(e)),
      );
      const st = (await s.runtime.ContainerStatus({ containerId: id })).status!;
      expect(st.state).toBe('CONTAINER_EXITED');
      expect(st.exitCode).toBe(128);
      expect(st.reason).toBe('StartError');
      expect(st.message).toMatch(/join cgroup/);
      expect(st.startedAt).toBe('0');
      expect(BigInt(st.finishedAt!)).toBeGreaterThan(0n);
      expect(existsSync(`/proc/${init}`)).toBe(false); // the waiting init is gone, not left to exec later
      await expect(s.runtime.StartContainer({ containerId: id })).rejects.toSatisfy((e) => grpcCode(e) === 'FAILED_PRECONDITION');
      await s.runtime.RemoveContainer({ containerId: id });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it("shows a container its own cgroups at /sys/fs/cgroup as runc does without a cgroup namespace: read-only, read-write when privileged, a CRI mount's instead", async () => {
    const cg = Cgroups.detect();
    const v2 = cg.mode === 'v2';
    const p = await pod('cgroupfs');
    const own = mkdtempSync(join(tmpdir(), 'peapod-cgroupfs-'));
    writeFileSync(join(own, 'mine'), '');
    try {
      const resources = { memoryLimitInBytes: String(64 * 1024 * 1024), cpuQuota: '50000', cpuPeriod: '100000' };
      const id = await run(p, 'limited', ['sleep', '300'], { linux: { resources } });
      // What the JVM, automaxprocs, .NET and Node read (cpu/ through a link where cpu,cpuacct are comounted).
      const files = v2 ? ['memory.max', 'cpu.max'] : ['memory/memory.limit_in_bytes', 'cpu/cpu.cfs_quota_us'];
      expect((await exec(id, ['cat', ...files.map((f) => `/sys/fs/cgroup/${f}`)])).out).toBe(v2 ? '67108864\n50000 100000\n' : '67108864\n50000\n');

      const view = async (c: string) => {
        const script = 'cat /proc/self/cgroup; echo --; grep " /sys/fs/cgroup" /proc/self/mountinfo; echo --; ls /sys/fs/cgroup';
        const [cgroups, mountinfo, ls] = (await exec(c, ['sh', '-c', script])).out.split('--\n') as [string, string, string];
        return {
          paths: new Set(cgroups.trim().split('\n').map((l) => l.split(':')[2])),
          mounts: mountinfo.trim().split('\n').map((l) => l.split(' ')).map((f) => ({ root: f[3], at: f[4], opts: f[5]!.split(',').slice(0, 4) })),
          names: ls.trim().split('\n').sort(),
        };
      };
      const shown = cg.view.names.flatMap((n) => (n === undefined ? [] : [n === '.' ? '/sys/fs/cgroup' : `/sys/fs/cgroup/${n}`]));
      const mine = await view(id);
      const path = `/peapod/${p}/${id}`;
      expect(mine.paths).toEqual(new Set([path]));
      // v1: a tmpfs, then each hierarchy's dir of the container (its root the path above); v2: that dir itself. All read-only.
      expect(mine.mounts).toEqual([
        ...(v2 ? [] : [{ root: '/', at: '/sys/fs/cgroup', opts: ['ro', 'nosuid', 'nodev', 'noexec'] }]),
        ...shown.map((at) => ({ root: path, at, opts: ['ro', 'nosuid', 'nodev', 'noexec'] })),
      ]);
      if (!v2) expect(mine.names).toEqual([...shown.map((at) => basename(at)), ...cg.view.links.map(([, link]) => link)].sort());
      // A hybrid host's cgroup2 hierarchy is not there: runc binds the v1 ones only.
      if (cg.mode === 'hybrid') expect(mine.names).not.toContain('unified');
      expect((await exec(id, ['mkdir', '/sys/fs/cgroup/x'])).code).not.toBe(0);

      const privileged = await run(p, 'privileged', ['sleep', '300'], { linux: { securityContext: { privileged: true } } });
      expect((await view(privileged)).mounts.map((m) => [m.at, m.opts])).toEqual(mine.mounts.map((m) => [m.at, ['rw', 'nosuid', 'nodev', 'noexec']]));

      const replaced = await run(p, 'replaced', ['sleep', '300'], { mounts: [{ containerPath: '/sys/fs/cgroup', hostPath: own }] });
      const theirs = await view(replaced);
      expect(theirs.names).toEqual(['mine']);
      expect(theirs.mounts.map((m) => m.at)).toEqual(['/sys/fs/cgroup']);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('reports OOMKilled when the memory limit is hit, and stats for a running container', async () => {
    const p = await pod('oom');
    try {
      const id = await run(p, 'hog', ['sh', '-c', 'head -c 200m /dev/zero | tail'], {
        linux: { resources: { memoryLimitInBytes: String(32 * 1024 * 1024) } },
      });
      const st = await waitExited(id, 20_000);
      expect(st.reason).toBe('OOMKilled');
      expect(st.exitCode).toBe(137);
      const busy = await run(p, 'busy', ['sh', '-c', 'while true; do :; done']);
      await sleep(300);
      const stats = (await s.runtime.ContainerStats({ containerId: busy })).stats!;
      expect(BigInt(stats.cpu!.usageCoreNanoSeconds!.value!)).toBeGreaterThan(50_000_000n);
      expect(Number(stats.memory!.workingSetBytes!.value)).toBeGreaterThan(0);
      expect(stats.writableLayer!.inodesUsed).toBeDefined();
      const podStats = (await s.runtime.PodSandboxStats({ podSandboxId: p })).stats!;
      expect(podStats.attributes!.id).toBe(p);
      expect(podStats.linux!.containers!.map((c) => c.attributes!.id)).toEqual([busy]);
      expect(BigInt(podStats.linux!.cpu!.usageCoreNanoSeconds!.value!)).toBeGreaterThanOrEqual(BigInt(stats.cpu!.usageCoreNanoSeconds!.value!));
      expect(Number(podStats.linux!.process!.processCount!.value)).toBeGreaterThanOrEqual(1);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('rejects bad input with the right status and leaves nothing behind', async () => {
    const p = await pod('bad');
    const code = (x: Promise<unknown>) => x.then(() => 'OK', (e) => grpcCode(e));
    const cfg = (extra: Record<string, unknown> = {}) => ({ metadata: { name: 'x' }, image: { image: BUSYBOX }, command: ['true'], ...extra });
    try {
      expect(await code(s.runtime.CreateContainer({ podSandboxId: 'f'.repeat(64), config: cfg() }))).toBe('NOT_FOUND');
      expect(await code(s.runtime.CreateContainer({ podSandboxId: p, config: cfg({ image: { image: 'nope:1' } }) }))).toBe('NOT_FOUND');
      const unusable = s.runtime.CreateContainer({ podSandboxId: p, config: cfg({ mounts: [{ containerPath: '/x', hostPath: '/etc/passwd/x' }] }) });
      await expect(unusable).rejects.toThrow(/\/etc\/passwd\/x.*ENOTDIR/);
      expect(await code(s.runtime.CreateContainer({ podSandboxId: p, config: cfg({ mounts: [{ containerPath: 'rel', hostPath: '/tmp' }] }) }))).toBe('INVALID_ARGUMENT');
      expect(await code(s.runtime.CreateContainer({ podSandboxId: p, config: { image: { image: BUSYBOX } } }))).toBe('INVALID_ARGUMENT');
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId: p, config: cfg() });
      expect(await code(s.runtime.CreateContainer({ podSandboxId: p, config: cfg() }))).toBe('ALREADY_EXISTS');
      await s.runtime.StartContainer({ containerId });
      expect(await code(s.runtime.StartContainer({ containerId }))).toBe('FAILED_PRECONDITION');
      expect(await code(s.runtime.ContainerStatus({ containerId: 'e'.repeat(64) }))).toBe('NOT_FOUND');
      expect(await code(s.runtime.StopContainer({ containerId: 'e'.repeat(64), timeout: '0' }))).toBe('OK');
      expect(await code(s.runtime.RemoveContainer({ containerId: 'e'.repeat(64) }))).toBe('OK');
      await s.runtime.RemoveContainer({ containerId });
      await s.runtime.RemoveContainer({ containerId });
      expect(existsSync(join(s.root, 'containers', containerId))).toBe(false);
      expect(existsSync(join(s.state, 'containers', containerId))).toBe(false);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
    expect(readdirSync(join(s.root, 'containers'))).toEqual([]);
    expect(() => Cgroups.detect().open(`peapod/${p}`)).toThrow(/not found|does not exist/i); // the pod cgroup went with the pod
  });
});

describe(`container failures and restarts [server on ${runtime}]`, () => {
  const cfg = { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'] };

  // The last: the monitor puts its init into the cgroups only after its report (while the server answers),
  // here late, while the rollback would wait between emptying the cgroup and removing it.
  it.each([
    ['container.after-prepare', ''],
    ['container.after-record', ''],
    ['container.after-monitor', ''],
    ['container.after-monitor', 'monitor.after-report=delay-100,container.rollback-emptied-cgroup=delay-400'],
  ])(
    'leaves nothing behind when CreateContainer fails at %s %s',
    async (fp, more) => {
      const s = await startServer({ PEAPOD_FAILPOINTS: [fp, more].filter(Boolean).join(',') }, preloadBusybox);
      try {
        const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('fp') });
        const pause = JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info!).pid as number;
        await expect(s.runtime.CreateContainer({ podSandboxId, config: cfg })).rejects.toThrow(new RegExp(fp));
        expect(readdirSync(join(s.root, 'containers'))).toEqual([]);
        expect(readdirSync(join(s.state, 'containers'))).toEqual([]);
        const cgDir = `/sys/fs/cgroup/memory/peapod/${podSandboxId}`;
        expect(existsSync(cgDir) ? readdirSync(cgDir).filter((n) => /^[0-9a-f]{64}$/.test(n)) : []).toEqual([]);
        expect(mountsContaining(join(s.state, 'containers'))).toEqual([]);
        // No init left in the pod, not even as a zombie nobody reaps: the pause alone.
        await until('the pod to hold its pause alone', () => pidNamespaceMembers(pause).length === 1, 5000).catch(() => undefined); // reaped at the next sweep
        expect(pidNamespaceMembers(pause)).toEqual([pause]);
        // The name is free again once the fault is gone.
        await s.restart();
        const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: cfg });
        await s.runtime.RemoveContainer({ containerId });
        await s.runtime.RemovePodSandbox({ podSandboxId });
      } finally {
        await s.cleanup();
      }
    },
  );

  it('a start whose answer is lost after the exec took effect: OK, RUNNING, the time of the exec from monitor.json', async () => {
    // The failpoint throws where the monitor's answer has come: as a connection cut after the exec would.
    const s = await startServer({ PEAPOD_FAILPOINTS: 'container.start-answered' }, preloadBusybox);
    try {
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('lost-answer') });
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: cfg });
      await s.runtime.StartContainer({ containerId });
      const st = (await s.runtime.ContainerStatus({ containerId })).status!;
      const mj = JSON.parse(readFileSync(join(s.state, 'containers', containerId, 'monitor.json'), 'utf8'));
      expect([st.state, st.startedAt]).toEqual(['CONTAINER_RUNNING', mj.startedAt]);
      await expect(s.runtime.StartContainer({ containerId })).rejects.toSatisfy((e) => grpcCode(e) === 'FAILED_PRECONDITION'); // started once
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      await s.cleanup();
    }
  });

  it("starts a container whose monitor answers a bare \"ok\" (an earlier version's): RUNNING, the time of the exec from monitor.json", async () => {
    const s = await startServer({}, preloadBusybox);
    let dirFd = -1;
    const proxy = createServer();
    try {
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('old-monitor') });
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: cfg });
      // A new server has no connection of the create's: it asks on control.sock, where an
      // earlier version's monitor stands here (the real one behind it, its answer cut to "ok").
      await s.restart();
      const dir = join(s.state, 'containers', containerId);
      renameSync(join(dir, 'control.sock'), join(dir, 'control.real.sock'));
      dirFd = openSync(dir, 'r'); // the full path is longer than a socket address holds
      const via = `/proc/self/fd/${dirFd}`;
      const seen: string[] = [];
      proxy.on('connection', (client) => {
        client.once('data', (command) => {
          const real = connect(`${via}/control.real.sock`, () => real.write(command));
          real.once('data', (reply) => {
            seen.push(`${command.toString().trim()} -> ${reply.toString().trim()}`);
            client.end('ok\n');
            real.destroy();
          });
        });
      });
      await new Promise<void>((resolve) => proxy.listen(`${via}/control.sock`, resolve));
      await s.runtime.StartContainer({ containerId });
      expect(seen).toEqual([expect.stringMatching(/^start -> ok [1-9][0-9]*$/)]);
      const st = (await s.runtime.ContainerStatus({ containerId })).status!;
      const mj = JSON.parse(readFileSync(join(dir, 'monitor.json'), 'utf8'));
      expect([st.state, st.startedAt]).toEqual(['CONTAINER_RUNNING', mj.startedAt]);
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      proxy.close();
      if (dirFd >= 0) closeSync(dirFd);
      await s.cleanup();
    }
  });

  // cgroup2 fills cpusets itself: only a v1 cpuset has something to hand down.
  const cpuset = Cgroups.detect().controllers.get('cpuset');
  it.skipIf(cpuset?.version !== 1)("makes peapod's own pod cgroup parent hand cpuset values down, one an earlier version made included", async () => {
    if (!cpuset) throw new Error('no cpuset controller');
    // A root of this test's own: the other files' servers set up the default one at any moment.
    const podRoot = `peapod-test-${process.pid}-own`;
    const cgroups = Cgroups.detect();
    const flag = join(cpuset.mount, podRoot, 'cgroup.clone_children');
    // As an earlier version left it.
    cgroups.create(podRoot);
    writeFileSync(flag, '0');
    const s = await startServer({}, preloadBusybox, { args: ['--pod-cgroup-root', podRoot] });
    try {
      expect(readFileSync(flag, 'utf8').trim()).toBe('0'); // nothing at start-up: a kubelet's pods never need it
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('own-parent') });
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: cfg });
      expect(readFileSync(flag, 'utf8').trim()).toBe('1');
      for (const rel of [podSandboxId, `${podSandboxId}/${containerId}`]) {
        const dir = join(cpuset.mount, podRoot, rel);
        expect(readFileSync(join(dir, 'cpuset.cpus'), 'utf8').trim(), rel).toBe(readFileSync(join(cpuset.mount, 'cpuset.cpus'), 'utf8').trim());
      }
      await s.runtime.StartContainer({ containerId });
      expect((await s.runtime.ContainerStatus({ containerId })).status!.state).toBe('CONTAINER_RUNNING');
      await s.runtime.RemovePodSandbox({ podSandboxId });
      expect(cgroups.mounts.filter((m) => existsSync(join(m, podRoot, podSandboxId!)))).toEqual([]);
    } finally {
      await s.cleanup();
      await cgroups.open(podRoot).remove();
    }
  });

  it("removes a pod's own cgroup made under an earlier podCgroupRoot, and keeps the pod's containers there", async () => {
    const [before, after] = ['a', 'b'].map((x) => `peapod-test-${process.pid}-${x}`);
    const cgroups = Cgroups.detect();
    const where = (rel: string) => cgroups.mounts.filter((m) => existsSync(join(m, rel)));
    const s = await startServer({}, preloadBusybox, { args: ['--pod-cgroup-root', before] });
    try {
      const old = (await s.runtime.RunPodSandbox({ config: podConfig('old-root') })).podSandboxId;
      const first = (await s.runtime.CreateContainer({ podSandboxId: old, config: cfg })).containerId;
      expect(where(`${before}/${old}/${first}`)).toEqual(cgroups.mounts);
      await s.restart({}, ['--pod-cgroup-root', after]);
      // The pod keeps the cgroup it was made with; a new pod gets one under the new root.
      const second = (await s.runtime.CreateContainer({ podSandboxId: old, config: { ...cfg, metadata: { name: 'second' } } })).containerId;
      expect(where(`${before}/${old}/${second}`)).toEqual(cgroups.mounts);
      const fresh = (await s.runtime.RunPodSandbox({ config: podConfig('new-root') })).podSandboxId;
      const third = (await s.runtime.CreateContainer({ podSandboxId: fresh, config: cfg })).containerId;
      expect(where(`${after}/${fresh}/${third}`)).toEqual(cgroups.mounts);
      // Started, each init is in every hierarchy of its cgroup (before, some may be joined at start).
      for (const id of [first, second]) await s.runtime.StartContainer({ containerId: id });
      const stats = (await s.runtime.PodSandboxStats({ podSandboxId: old })).stats!;
      expect(Number(stats.linux!.process!.processCount!.value)).toBe(2);
      for (const id of [old, fresh]) await s.runtime.RemovePodSandbox({ podSandboxId: id });
      expect([...where(`${before}/${old}`), ...where(`${after}/${fresh}`)]).toEqual([]);
    } finally {
      try {
        await s.cleanup();
      } finally {
        for (const root of [before, after]) if (where(root).length) await cgroups.open(root).remove();
      }
    }
  });

  it("finds the pod cgroup of a sandbox record written before records held it under today's root, and removes it with the pod", async () => {
    const root = `peapod-test-${process.pid}-legacy`;
    const cgroups = Cgroups.detect();
    const where = (rel: string) => cgroups.mounts.filter((m) => existsSync(join(m, rel)));
    const s = await startServer({}, preloadBusybox, { args: ['--pod-cgroup-root', root] });
    try {
      const pod = (await s.runtime.RunPodSandbox({ config: podConfig('legacy') })).podSandboxId;
      await s.runtime.CreateContainer({ podSandboxId: pod, config: cfg });
      await s.kill9();
      const file = join(s.state, 'sandboxes', pod, 'record.json');
      const rec = JSON.parse(readFileSync(file, 'utf8'));
      expect(rec.cgroup).toBe(`${root}/${pod}`);
      delete rec.cgroup; // as an earlier version wrote it
      writeFileSync(file, JSON.stringify(rec));
      await s.restart();
      const second = (await s.runtime.CreateContainer({ podSandboxId: pod, config: { ...cfg, metadata: { name: 'second' } } })).containerId;
      expect(where(`${root}/${pod}/${second}`)).toEqual(cgroups.mounts);
      await s.runtime.RemovePodSandbox({ podSandboxId: pod });
      expect(where(`${root}/${pod}`)).toEqual([]);
    } finally {
      try {
        await s.cleanup();
      } finally {
        if (where(root).length) await cgroups.open(root).remove();
      }
    }
  });

  it('drops writable layers whose container records are gone (the state dir empties at a reboot)', async () => {
    const stale = 'ab'.repeat(32);
    const s = await startServer({}, async (root) => {
      mkdirSync(join(root, 'containers', stale, 'upper', 'etc'), { recursive: true });
      writeFileSync(join(root, 'containers', stale, 'upper', 'etc', 'x'), 'x');
      // A spare an earlier server left half made: thrown away, not used.
      mkdirSync(join(root, 'spare-layers', 'half', 'upper'), { recursive: true });
      await preloadBusybox(root);
    });
    try {
      expect(existsSync(join(s.root, 'containers'))).toBe(true);
      expect(existsSync(join(s.root, 'containers', stale))).toBe(false);
      // Two spare writable layers are made ahead; a create takes one and another is made.
      const spares = () => readdirSync(join(s.root, 'spare-layers')).sort();
      // A spare is listed from its first mkdir; it is whole once its three targets are there.
      const whole = () =>
        spares().every((d) => ['hosts', 'resolv.conf', 'hostname'].every((f) => existsSync(join(s.root, 'spare-layers', d, 'upper', 'etc', f))));
      await until('two spares', () => spares().length === 2 && whole());
      expect(spares()).not.toContain('half');
      const before = spares().join();
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('spares') });
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['true'] } });
      await until('one spare taken, another made', () => spares().length === 2 && spares().join() !== before && whole());
      // busybox has /etc/hostname: of the spare's three targets, that one went.
      expect(readdirSync(join(s.root, 'containers', containerId, 'upper', 'etc')).sort()).toEqual(['hosts', 'resolv.conf']);
      // Spares that vanish under the server: the create makes its layer itself.
      rmSync(join(s.root, 'spare-layers'), { recursive: true, force: true });
      const second = await s.runtime.CreateContainer({ podSandboxId, config: { metadata: { name: 'd' }, image: { image: BUSYBOX }, command: ['true'] } });
      expect(readdirSync(join(s.root, 'containers', second.containerId, 'upper', 'etc')).sort()).toEqual(['hosts', 'resolv.conf']);
      await until('spares made again', () => existsSync(join(s.root, 'spare-layers')) && spares().length === 2);
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      await s.cleanup();
    }
  });

  it('keeps containers, logs and exit codes across a kill -9 of the server', async () => {
    const logs = mkdtempSync(join(tmpdir(), 'peapod-logs-'));
    const s = await startServer({}, preloadBusybox);
    try {
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('restart', { logDirectory: logs }) });
      const mk = async (name: string, script: string) => {
        const { containerId } = await s.runtime.CreateContainer({
          podSandboxId,
          config: { metadata: { name }, image: { image: BUSYBOX }, command: ['sh', '-c', script], logPath: `${name}.log` },
        });
        await s.runtime.StartContainer({ containerId });
        return containerId;
      };
      const short = await mk('short', 'i=0; while [ $i -lt 20 ]; do echo line $i; i=$((i+1)); sleep 0.05; done; exit 7');
      const long = await mk('long', 'sleep 300');
      await sleep(200);
      const before = await s.runtime.ContainerStatus({ containerId: long });
      await s.kill9();
      await sleep(1500); // "short" finishes while no server runs
      await s.restart();
      const st = (await s.runtime.ContainerStatus({ containerId: short })).status!;
      expect(st.state).toBe('CONTAINER_EXITED');
      expect(st.exitCode).toBe(7);
      expect(BigInt(st.finishedAt!)).toBeGreaterThan(BigInt(st.startedAt!));
      const lines = readFileSync(join(logs, 'short.log'), 'utf8').trim().split('\n');
      expect(lines.map((l) => l.split(' ').slice(3).join(' '))).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i}`));
      const after = await s.runtime.ContainerStatus({ containerId: long });
      expect(after.status).toEqual(before.status);
      expect(after.status!.state).toBe('CONTAINER_RUNNING');
      const r = await s.runtime.ExecSync({ containerId: long, cmd: ['echo', 'alive'], timeout: '5' });
      expect(Buffer.from(r.stdout).toString()).toBe('alive\n');
      await s.runtime.StopContainer({ containerId: long, timeout: '0' });
      expect((await s.runtime.ContainerStatus({ containerId: long })).status!.exitCode).toBe(137);
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      await s.cleanup();
      rmSync(logs, { recursive: true, force: true });
    }
  });
});
