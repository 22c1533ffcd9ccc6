import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCode, podConfig } from '../support/cri-client.js';
import { mountsContaining, nsOf, peapodCommand, procStatus, runtime, startServer, threadNamespaces, type TestServer } from '../support/server.js';
import { processesWithArgv } from '../../src/linux/proc.js';
import { pauseArgv } from '../../src/sandbox/pause.js';

const hostNs = (ns: string) => nsOf('self', ns);

async function pausePid(s: TestServer, id: string): Promise<number> {
  const st = await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true });
  return JSON.parse(st.info.info!).pid;
}

function childrenNamed(ppid: number, comm: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const st = procStatus(Number(p));
      if (st.Name === comm && Number(st.PPid) === ppid) out.push(Number(p));
    } catch {
      // exited while scanning
    }
  }
  return out;
}

function sandboxDirsEmpty(s: TestServer): boolean {
  const dirs = [join(s.root, 'sandboxes'), join(s.state, 'sandboxes')];
  return dirs.every((d) => !existsSync(d) || readdirSync(d).length === 0);
}

describe(`pod sandboxes [server on ${runtime}]`, () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  it('answers Version and Status with both conditions', async () => {
    const v = await s.runtime.Version({ version: '0.1.0' });
    expect(v).toMatchObject({ runtimeName: 'peapod', runtimeApiVersion: 'v1' });
    const st = await s.runtime.Status({ verbose: true });
    const types = st.status!.conditions.map((c) => c.type);
    expect(types).toEqual(['RuntimeReady', 'NetworkReady']);
    expect(st.status!.conditions[0]!.status).toBe(true);
    const net = st.status!.conditions[1]!;
    if (!net.status) expect(net.reason).toBe('NetworkPluginNotReady');
    expect(JSON.parse(st.info.config!).socket).toBe(s.socket);
  });

  it('names the cgroupfs driver in RuntimeConfig (the kubelet takes its driver from there)', async () => {
    // CGROUPFS is 1: a default (unset) field would decode as SYSTEMD.
    expect(await s.runtime.RuntimeConfig({})).toEqual({ linux: { cgroupDriver: 'CGROUPFS' } });
  });

  it('builds a real sandbox: pause is PID 1 holding its net/ipc/uts/pid namespaces, the netns pinned', async () => {
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('real-ns') });
    try {
      const st = await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true });
      const info = JSON.parse(st.info.info!);
      const pid: number = info.pid;
      expect(procStatus(pid).NSpid!.split(/\s+/)).toEqual([String(pid), '1']);
      expect(procStatus(pid).Uid!.split(/\s+/)[0]).toBe('65535');
      for (const ns of ['net', 'ipc', 'uts', 'pid']) {
        const inPod = statSync(`/proc/${pid}/ns/${ns}`).ino;
        expect(inPod, ns).not.toBe(statSync(`/proc/self/ns/${ns}`).ino);
        expect(statSync(info.namespaces[ns]).ino, `${ns} of the pod`).toBe(inPod);
        // Only the netns outlives pause (for CNI DEL); the others are joined through pause.
        if (ns === 'net') expect(info.namespaces[ns].startsWith(s.state)).toBe(true);
        else expect(info.namespaces[ns]).toBe(`/proc/${pid}/ns/${ns}`);
      }
      const hostname = execFileSync('nsenter', [`--uts=${info.namespaces.uts}`, 'hostname'], { encoding: 'utf8' });
      expect(hostname.trim()).toBe('real-ns');
      const link = execFileSync('nsenter', [`--net=${info.namespaces.net}`, 'ip', '-o', 'link', 'show', 'lo'], {
        encoding: 'utf8',
      });
      expect(link).toMatch(/<[^>]*\bUP\b[^>]*>/);
      const links = execFileSync('nsenter', [`--net=${info.namespaces.net}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
      expect(links.trim().split('\n')).toHaveLength(1);
      expect(st.status!.state).toBe('SANDBOX_READY');
      expect(BigInt(st.status!.createdAt!)).toBeGreaterThan(1_600_000_000_000_000_000n);
      expect(st.status!.metadata).toEqual({ name: 'real-ns', namespace: 'default', uid: 'uid-real-ns', attempt: 1 });
      expect(st.status!.labels).toEqual({ app: 'real-ns' });
      expect(st.status!.annotations).toEqual({ 'peapod.test/created-by': 'vitest' });
      expect(st.status!.linux!.namespaces!.options).toMatchObject({ network: 'POD', pid: 'POD', ipc: 'POD' });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
    }
  });

  it('stop reaps pause; remove leaves no mount, directory or process; both are idempotent', async () => {
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('lifecycle') });
    const pid = await pausePid(s, id);
    expect(mountsContaining(id)).toHaveLength(2); // the netns pin and the pod's /dev/shm
    await s.runtime.StopPodSandbox({ podSandboxId: id });
    expect(existsSync(`/proc/${pid}`)).toBe(false); // reaped, not a zombie
    const st = await s.runtime.PodSandboxStatus({ podSandboxId: id });
    expect(st.status!.state).toBe('SANDBOX_NOTREADY');
    expect(mountsContaining(id)).toHaveLength(2); // stop keeps the netns pinned
    await s.runtime.StopPodSandbox({ podSandboxId: id });
    await s.runtime.RemovePodSandbox({ podSandboxId: id });
    expect(mountsContaining(id)).toEqual([]);
    expect(existsSync(join(s.root, 'sandboxes', id))).toBe(false);
    expect(existsSync(join(s.state, 'sandboxes', id))).toBe(false);
    await s.runtime.RemovePodSandbox({ podSandboxId: id });
    await s.runtime.StopPodSandbox({ podSandboxId: id });
    await expect(s.runtime.PodSandboxStatus({ podSandboxId: id })).rejects.toSatisfy((e) => grpcCode(e) === 'NOT_FOUND');
  });

  it('keeps the server threads in the host namespaces across every RPC, also under concurrent RunPodSandbox', async () => {
    const before = threadNamespaces(s.pid);
    expect([...before].some((n) => n.startsWith('net='))).toBe(true);
    const check = () => expect(threadNamespaces(s.pid)).toEqual(before);
    const one = await s.runtime.RunPodSandbox({ config: podConfig('ns-check') });
    check();
    await s.runtime.PodSandboxStatus({ podSandboxId: one.podSandboxId, verbose: true });
    check();
    await s.runtime.ListPodSandbox({});
    check();
    const many = await Promise.all(
      Array.from({ length: 8 }, (_, i) => s.runtime.RunPodSandbox({ config: podConfig(`ns-check-${i}`) })),
    );
    check();
    await s.runtime.StopPodSandbox({ podSandboxId: one.podSandboxId });
    check();
    await Promise.all([one, ...many].map((r) => s.runtime.RemovePodSandbox({ podSandboxId: r.podSandboxId })));
    check();
    // The host's namespaces of this test process are those the server started with.
    expect(before.has(`net=${hostNs('net')}`)).toBe(true);
  });

  it('creates 50 sandboxes concurrently with distinct namespaces and removes them all', async () => {
    const ids = (
      await Promise.all(Array.from({ length: 50 }, (_, i) => s.runtime.RunPodSandbox({ config: podConfig(`many-${i}`) })))
    ).map((r) => r.podSandboxId);
    try {
      const pids = await Promise.all(ids.map((id) => pausePid(s, id)));
      expect(new Set(pids).size).toBe(50);
      for (const ns of ['net', 'ipc', 'uts', 'pid']) {
        expect(new Set(pids.map((p) => nsOf(p, ns))).size, ns).toBe(50);
      }
      const { items } = await s.runtime.ListPodSandbox({ filter: { state: { state: 'SANDBOX_READY' } } });
      expect(items.filter((i) => ids.includes(i.id!))).toHaveLength(50);
    } finally {
      await Promise.all(ids.map((id) => s.runtime.RemovePodSandbox({ podSandboxId: id })));
    }
    for (const id of ids) expect(mountsContaining(id)).toEqual([]);
    expect(childrenNamed(s.pid, 'pause')).toEqual([]);
  });

  it('honours host network, IPC and PID namespace options', async () => {
    const hostShm = mountsContaining('/dev/shm');
    expect(hostShm).toContain('/dev/shm'); // else the check below could not fail
    const cfg = podConfig('host-ns', {
      linux: { securityContext: { namespaceOptions: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } },
    });
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: cfg });
    try {
      const st = await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true });
      const info = JSON.parse(st.info.info!);
      for (const ns of ['net', 'ipc', 'uts', 'pid']) expect(nsOf(info.pid, ns), ns).toBe(hostNs(ns));
      expect(info.namespaces).toEqual({});
      expect(st.status!.linux!.namespaces!.options).toMatchObject({ network: 'NODE', pid: 'NODE', ipc: 'NODE' });
      expect(st.status!.state).toBe('SANDBOX_READY');
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
    }
    // pid CONTAINER still gives pause a PID namespace of its own; ipc NODE shares the host's.
    const mixed = await s.runtime.RunPodSandbox({
      config: podConfig('mixed-ns', { linux: { securityContext: { namespaceOptions: { pid: 'CONTAINER', ipc: 'NODE' } } } }),
    });
    try {
      const pid = await pausePid(s, mixed.podSandboxId);
      expect(procStatus(pid).NSpid!.split(/\s+/)).toEqual([String(pid), '1']);
      expect(nsOf(pid, 'ipc')).toBe(hostNs('ipc'));
      expect(nsOf(pid, 'net')).not.toBe(hostNs('net'));
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: mixed.podSandboxId });
    }
    // Removing pods that share the host's IPC namespace leaves the host's /dev/shm mounted.
    expect(mountsContaining('/dev/shm')).toEqual(hostShm);
  });

  it("writes the pod's files as containerd: an empty DNSConfig gives an empty resolv.conf, none the host's; a host-network pod keeps the hostname asked for and has the host's /etc/hosts", async () => {
    const hostNet = { linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } };
    const ids = await Promise.all([
      podConfig('dns-empty', { dnsConfig: {} }),
      podConfig('dns-none'),
      podConfig('hostnet-name', { hostname: 'node-name', ...hostNet }),
    ].map(async (config) => (await s.runtime.RunPodSandbox({ config })).podSandboxId));
    try {
      const file = (id: string, name: string) => readFileSync(join(s.state, 'sandboxes', id, name), 'utf8');
      expect(file(ids[0]!, 'resolv.conf')).toBe('');
      expect(file(ids[1]!, 'resolv.conf')).toBe(readFileSync('/etc/resolv.conf', 'utf8'));
      expect(file(ids[2]!, 'hostname')).toBe('node-name\n');
      // The host's names on the host's network, as containerd and the kubelet give it; its own pod's otherwise.
      expect(file(ids[2]!, 'hosts')).toBe(readFileSync('/etc/hosts', 'utf8'));
      expect(file(ids[1]!, 'hosts')).toMatch(/^127\.0\.0\.1\tlocalhost\n/);
    } finally {
      for (const id of ids) await s.runtime.RemovePodSandbox({ podSandboxId: id });
    }
  });

  it('sets namespaced sysctls inside the pod only', async () => {
    const cfg = podConfig('sysctl', { linux: { sysctls: { 'kernel.shm_rmid_forced': '1', 'net.ipv4.ip_forward': '1' } } });
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: cfg });
    try {
      const info = JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })).info.info!);
      const inIpc = execFileSync('nsenter', [`--ipc=${info.namespaces.ipc}`, 'cat', '/proc/sys/kernel/shm_rmid_forced']);
      expect(inIpc.toString().trim()).toBe('1');
      const inNet = execFileSync('nsenter', [`--net=${info.namespaces.net}`, 'cat', '/proc/sys/net/ipv4/ip_forward']);
      expect(inNet.toString().trim()).toBe('1');
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
    }
  });

  it('rejects bad input with the right status and keeps names reserved', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'OK', (e) => grpcCode(e));
    await expect(code(s.runtime.RunPodSandbox({}))).resolves.toBe('INVALID_ARGUMENT');
    await expect(s.runtime.RunPodSandbox({ config: { hostname: 'x' } })).rejects.toThrow(/config\.metadata/);
    await expect(s.runtime.RunPodSandbox({ config: podConfig('') })).rejects.toThrow(/metadata\.name/);
    const bad = [
      podConfig('badhost', { hostname: 'a'.repeat(65) }),
      podConfig('badsysctl', { linux: { sysctls: { 'kernel.hostname': 'x' } } }),
      podConfig('badlog', { logDirectory: 'relative/dir' }),
      podConfig('nul\0name'),
      podConfig('badns', { linux: { securityContext: { namespaceOptions: { network: 'CONTAINER' } } } }),
    ];
    for (const config of bad) {
      await expect(code(s.runtime.RunPodSandbox({ config })), config.metadata.name).resolves.toBe('INVALID_ARGUMENT');
    }
    await expect(code(s.runtime.RunPodSandbox({ config: podConfig('x'), runtimeHandler: 'kata' }))).resolves.toBe(
      'INVALID_ARGUMENT',
    );
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('dup') });
    try {
      await expect(code(s.runtime.RunPodSandbox({ config: podConfig('dup') }))).resolves.toBe('ALREADY_EXISTS');
      const other = await s.runtime.RunPodSandbox({ config: { ...podConfig('dup'), metadata: { ...podConfig('dup').metadata, attempt: 2 } } });
      await s.runtime.RemovePodSandbox({ podSandboxId: other.podSandboxId });
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
    }
    const again = await s.runtime.RunPodSandbox({ config: podConfig('dup') });
    await s.runtime.RemovePodSandbox({ podSandboxId: again.podSandboxId });
    await expect(code(s.runtime.PodSandboxStatus({ podSandboxId: 'f'.repeat(64) }))).resolves.toBe('NOT_FOUND');
    await expect(code(s.runtime.StopPodSandbox({ podSandboxId: 'f'.repeat(64) }))).resolves.toBe('OK');
    await expect(code(s.runtime.RemovePodSandbox({ podSandboxId: 'f'.repeat(64) }))).resolves.toBe('OK');
    expect(sandboxDirsEmpty(s)).toBe(true);
  });

  it('answers unimplemented RPCs with UNIMPLEMENTED at once', async () => {
    const t = Date.now();
    await expect(s.runtime.CheckpointContainer({ containerId: 'x' })).rejects.toSatisfy((e) => grpcCode(e) === 'UNIMPLEMENTED');
    await expect(s.runtime.CheckpointPod({})).rejects.toSatisfy((e) => grpcCode(e) === 'UNIMPLEMENTED');
    expect(Date.now() - t).toBeLessThan(5000);
  });

  it('filters ListPodSandbox by id prefix, state and labels', async () => {
    const a = await s.runtime.RunPodSandbox({ config: podConfig('list-a', { labels: { tier: 'web', app: 'a' } }) });
    const b = await s.runtime.RunPodSandbox({ config: podConfig('list-b', { labels: { tier: 'db', app: 'b' } }) });
    try {
      await s.runtime.StopPodSandbox({ podSandboxId: b.podSandboxId });
      const ids = async (filter: object) =>
        (await s.runtime.ListPodSandbox({ filter })).items.map((i) => i.id).filter((i) => i === a.podSandboxId || i === b.podSandboxId);
      expect(await ids({ id: a.podSandboxId.slice(0, 12) })).toEqual([a.podSandboxId]);
      expect(await ids({ state: { state: 'SANDBOX_NOTREADY' } })).toEqual([b.podSandboxId]);
      expect(await ids({ labelSelector: { tier: 'web' } })).toEqual([a.podSandboxId]);
      expect(await ids({ labelSelector: { tier: 'web', app: 'b' } })).toEqual([]);
      expect((await s.runtime.PodSandboxStatus({ podSandboxId: a.podSandboxId.slice(0, 10) })).status!.id).toBe(
        a.podSandboxId,
      );
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: a.podSandboxId });
      await s.runtime.RemovePodSandbox({ podSandboxId: b.podSandboxId });
    }
  });

  it('turns NOTREADY when pause dies, and stop/remove still clean up', async () => {
    const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('pause-dies') });
    const pid = await pausePid(s, id);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && (await s.runtime.PodSandboxStatus({ podSandboxId: id })).status!.state === 'SANDBOX_READY'; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await s.runtime.PodSandboxStatus({ podSandboxId: id })).status!.state).toBe('SANDBOX_NOTREADY');
    await s.runtime.StopPodSandbox({ podSandboxId: id });
    await s.runtime.RemovePodSandbox({ podSandboxId: id });
    expect(mountsContaining(id)).toEqual([]);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});

describe(`sandbox persistence and failure handling [server on ${runtime}]`, () => {
  it('survives kill -9 of the server: sandboxes reload with the same pause and state', async () => {
    const s = await startServer();
    try {
      const { podSandboxId: id } = await s.runtime.RunPodSandbox({ config: podConfig('survivor') });
      const before = (await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })) as any;
      const stopped = await s.runtime.RunPodSandbox({ config: podConfig('stopped-before') });
      await s.runtime.StopPodSandbox({ podSandboxId: stopped.podSandboxId });
      await s.restart();
      const after = (await s.runtime.PodSandboxStatus({ podSandboxId: id, verbose: true })) as any;
      expect(after.status).toEqual(before.status);
      expect(JSON.parse(after.info.info).pid).toBe(JSON.parse(before.info.info).pid);
      const st2 = await s.runtime.PodSandboxStatus({ podSandboxId: stopped.podSandboxId });
      expect(st2.status!.state).toBe('SANDBOX_NOTREADY');
      await expect(s.runtime.RunPodSandbox({ config: podConfig('survivor') })).rejects.toSatisfy(
        (e) => grpcCode(e) === 'ALREADY_EXISTS',
      );
      await s.runtime.RemovePodSandbox({ podSandboxId: id });
      expect(mountsContaining(id)).toEqual([]);
    } finally {
      await s.cleanup();
    }
  });

  it('replaces a stale socket and refuses a live one', async () => {
    const s = await startServer();
    try {
      // A second server on the same socket must refuse to start.
      const res = spawnSync(peapodCommand[0], [...peapodCommand.slice(1), 'serve', '--socket', s.socket, '--root', s.root + '2', '--state', s.state + '2'], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(res.status).toBe(1);
      expect(res.stderr).toMatch(/already listening/);
      await s.kill9(); // leaves the socket file behind
      expect(existsSync(s.socket)).toBe(true);
      await s.restart();
      expect((await s.runtime.Version({})).runtimeName).toBe('peapod');
      expect(statSync(s.socket).mode & 0o777).toBe(0o660);
    } finally {
      await s.cleanup();
    }
  });

  const failpoints = [
    'sandbox.after-record',
    'sandbox.in-namespaces',
    'sandbox.after-pause',
    'sandbox.after-pin-net',
    'sandbox.after-files',
    'sandbox.after-commit',
  ];
  it.each(failpoints)('leaves nothing behind when RunPodSandbox fails at %s', async (fp) => {
    const s = await startServer({ PEAPOD_FAILPOINTS: fp });
    try {
      const hostBefore = threadNamespaces(s.pid);
      await expect(s.runtime.RunPodSandbox({ config: podConfig('fails') })).rejects.toThrow(new RegExp(fp));
      expect(threadNamespaces(s.pid)).toEqual(hostBefore);
      expect(childrenNamed(s.pid, 'pause')).toEqual([]);
      expect(mountsContaining(s.state)).toEqual([]);
      expect(sandboxDirsEmpty(s)).toBe(true);
      expect((await s.runtime.ListPodSandbox({})).items).toEqual([]);
      // The name was released: the same pod can be run once the fault is gone.
      await s.restart();
      const ok = await s.runtime.RunPodSandbox({ config: podConfig('fails') });
      await s.runtime.RemovePodSandbox({ podSandboxId: ok.podSandboxId });
    } finally {
      await s.cleanup();
    }
  });

  it.each(['sandbox.after-launch', 'sandbox.after-pause', 'sandbox.after-pin-net'])(
    'cleans up at start-up after the server was killed during RunPodSandbox (%s)',
    async (fp) => {
      const s = await startServer({ PEAPOD_FAILPOINTS: `${fp}=exit` });
      try {
        await expect(s.runtime.RunPodSandbox({ config: podConfig('killed') })).rejects.toBeDefined();
        // after-launch: pause runs, but the server died before it recorded its pid.
        const [id] = readdirSync(join(s.state, 'sandboxes'));
        const pauses = () => processesWithArgv(pauseArgv(join(s.root, 'native'), join(s.state, 'sandboxes', id!)));
        expect(pauses()).toHaveLength(1);
        await s.restart();
        expect(pauses()).toEqual([]);
        expect((await s.runtime.ListPodSandbox({})).items).toEqual([]);
        expect(mountsContaining(s.state)).toEqual([]);
        expect(sandboxDirsEmpty(s)).toBe(true);
        const ok = await s.runtime.RunPodSandbox({ config: podConfig('killed') });
        await s.runtime.RemovePodSandbox({ podSandboxId: ok.podSandboxId });
      } finally {
        await s.cleanup();
      }
    },
  );
});
