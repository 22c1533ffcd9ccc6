// Security boundaries between the server, its helpers and the containers:
// the socket's permissions, the PID namespace wall, and no file descriptor of
// the server (above all its gRPC sockets) held by a monitor or a container.
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execText, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

/** Inode of the unix socket listening on `path` (from /proc/net/unix). */
function listeningInode(path: string): string {
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[7] === path) return f[6]!;
  }
  throw new Error(`no unix socket listening on ${path}`);
}

/** The socket inodes a process holds open. */
function socketInodes(pid: number | string): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Every process holding the socket inode (the server, whatever wrapper started it). */
function holders(inode: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => socketInodes(p).has(inode))
    .map(Number);
}

describe(`security boundaries [server on ${runtime}]`, () => {
  let s: TestServer;
  let logDir: string;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    logDir = mkdtempSync(join(tmpdir(), 'peapod-security-'));
  });
  afterAll(async () => {
    await s?.cleanup();
    rmSync(logDir, { recursive: true, force: true });
  });

  const exec = (id: string, cmd: string[]) => execText(s.runtime, id, cmd);

  async function podWithContainer(name: string) {
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig(name, { logDirectory: join(logDir, name) }) });
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId,
      config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'], logPath: 'c.log' },
    });
    await s.runtime.StartContainer({ containerId });
    const info = JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!);
    return { podSandboxId, containerId, pid: info.pid as number, monitorPid: info.monitorPid as number };
  }

  it('the socket is mode 0660, owned by root:root', () => {
    const st = statSync(s.socket);
    expect(st.isSocket()).toBe(true);
    expect((st.mode & 0o7777).toString(8)).toBe('660');
    expect([st.uid, st.gid]).toEqual([0, 0]);
  });

  it('a container sees and signals only its own pod', async () => {
    const a = await podWithContainer('wall-a');
    const b = await podWithContainer('wall-b');
    try {
      const [server] = holders(listeningInode(s.socket));
      expect(server).toBeGreaterThan(0);
      // The server's pid means nothing in the pod's PID namespace: no such process.
      const kill = await exec(a.containerId, ['sh', '-c', `kill -0 ${server}; echo rc=$?`]);
      expect(kill.out).toMatch(/rc=1/);
      // Nor can it reach the other pod's container (by its host pid) or the host's init.
      expect((await exec(a.containerId, ['sh', '-c', `kill -0 ${b.pid}; echo rc=$?`])).out).toMatch(/rc=1/);
      // /proc lists the pod's processes only: pause (1), sleep, and the exec's own.
      const pids = (await exec(a.containerId, ['sh', '-c', 'for p in /proc/[0-9]*; do echo "${p#/proc/} $(cat $p/comm)"; done'])).out
        .trim()
        .split('\n')
        .map((l) => l.split(' '));
      const comms = pids.map(([, c]) => c);
      expect(pids.find(([p]) => p === '1')?.[1]).toBe('pause');
      expect(comms).toContain('sleep');
      expect(comms.every((c) => ['pause', 'sleep', 'sh', 'cat'].includes(c!)), comms.join(',')).toBe(true);
      expect(pids.length).toBeLessThan(8);
      const hostPids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).length;
      expect(hostPids).toBeGreaterThan(pids.length + 5);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: a.podSandboxId });
      await s.runtime.RemovePodSandbox({ podSandboxId: b.podSandboxId });
    }
  });

  it('neither the monitor nor the container holds any socket of the server', async () => {
    const c = await podWithContainer('no-fds');
    try {
      const listening = listeningInode(s.socket);
      const servers = holders(listening);
      expect(servers.length).toBeGreaterThan(0);
      const serverSockets = new Set<string>();
      for (const p of servers) for (const i of socketInodes(p)) serverSockets.add(i);
      expect(serverSockets.has(listening)).toBe(true);
      // The gRPC connection of this test's client is open meanwhile: it must not leak either.
      await s.runtime.Version({});
      const helpers = [c.monitorPid, c.pid];
      for (const pid of helpers) {
        expect(servers).not.toContain(pid);
        const held = [...socketInodes(pid)].filter((i) => serverSockets.has(i));
        expect(held, `pid ${pid} holds server sockets`).toEqual([]);
      }
      // The monitor's own sockets are its control socket's, nothing else of the server's.
      const monitorFds = readdirSync(`/proc/${c.monitorPid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${c.monitorPid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      expect(monitorFds.filter((l) => l.includes(s.root) && !l.includes('/containers/'))).toEqual([]);
      // An exec'd process inherits nothing of the server either (its stdout and stderr are
      // socketpairs on Node: their far ends are the server's, their own inodes are not).
      const links = (await exec(c.containerId, ['sh', '-c', 'for f in /proc/self/fd/*; do readlink $f; done'])).out;
      const execSockets = [...links.matchAll(/socket:\[(\d+)\]/g)].map((m) => m[1]!);
      const now = new Set<string>();
      for (const p of servers) for (const i of socketInodes(p)) now.add(i);
      expect(execSockets.filter((i) => now.has(i))).toEqual([]);
      expect(execSockets.length).toBeLessThanOrEqual(2);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
    }
  });
});
