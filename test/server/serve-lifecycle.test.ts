// `peapod serve` starting and stopping, under the matrix runtime: the root and
// state locks (flock through this runtime's FFI), what a start that fails
// leaves, the socket path, bad flags, shutdown on signals, a log reader that
// goes away, a `get -w` that outlives the server. The CLI runs under the
// matrix runtime too.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfig } from '../support/cri-client.js';
import { layeredImage } from '../support/image-archive.js';
import { preloadBusybox } from '../support/images.js';
import { podCli, podManifest, LOCAL_BUSYBOX } from '../support/pods.js';
import { serveImage, startStub } from '../support/registry.js';
import { mountsContaining, peapodCommand, reclaim, runtime, startServer, type TestServer } from '../support/server.js';
import { sleep, until, waitFor } from '../support/wait.js';

const [peapodBin, ...peapodArgs] = peapodCommand;

/** Runs `peapod ARGS` under the matrix runtime to its end. */
function run(args: string[]) {
  const r = spawnSync(peapodBin, [...peapodArgs, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr };
}

/** Whether `pid` runs (a zombie or a reaped pid does not). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

/** Pids of the processes whose command line names `fragment` (a server's helpers name its state dir). */
function processesNaming(fragment: string): number[] {
  const out: number[] = [];
  for (const p of spawnSync('pgrep', ['-f', fragment], { encoding: 'utf8' }).stdout.split('\n')) if (p) out.push(Number(p));
  return out;
}

describe(`peapod serve lifecycle [server on ${runtime}]`, () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'peapod-serve-'));
  });
  afterAll(() => reclaim(tmp));

  it('a second server on the same root or state is refused and leaves the first one whole', async () => {
    const manifests = join(tmp, 'no-such-manifests');
    const s = await startServer({}, undefined, { args: ['--manifest-dir', manifests] });
    try {
      const other = (name: string) => join(tmp, name);
      const same = ['--socket', s.socket, '--root', s.root, '--state', s.state, '--network', 'none'];
      for (const args of [
        same,
        ['--socket', other('b.sock'), '--root', s.root, '--state', s.state, '--network', 'none'],
        ['--socket', other('c.sock'), '--root', other('root-c'), '--state', s.state, '--network', 'none'],
      ]) {
        const r = run(['serve', ...args]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`peapod: another peapod server (pid ${s.pid}) is using --state ${s.state}`);
      }
      const r = run(['serve', '--socket', other('d.sock'), '--root', s.root, '--state', other('state-d'), '--network', 'none']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`peapod: another peapod server (pid ${s.pid}) is using --root ${s.root}`);
      for (const name of ['b.sock', 'c.sock', 'd.sock']) expect(existsSync(other(name))).toBe(false);

      // The first server still hears its helpers: a pod starts.
      expect(statSync(join(s.state, 'helpers.sock')).isSocket()).toBe(true);
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('after-refusals') });
      await s.runtime.RemovePodSandbox({ podSandboxId });

      // A manifest dir that does not exist is named, as the kubelet does.
      expect(s.output()).toMatch(new RegExp(`static pod manifest directory does not exist.*${manifests}`));
    } finally {
      await s.cleanup();
    }
  });

  it('a start that fails undoes what it began, and names the flag', async () => {
    const held = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => held.once('listening', r));
    const port = (held.address() as AddressInfo).port;
    const dir = join(tmp, 'metrics-in-use');
    try {
      const r = run(['serve', '--socket', join(dir, 's.sock'), '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--network', 'none', '--metrics-address', `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`peapod: --metrics-address 127.0.0.1:${port}: address in use`);
      // No spare monitor asleep, no socket or bind left.
      await until('spare monitors gone', () => processesNaming(join(dir, 'state')).length === 0);
      expect(existsSync(join(dir, 'state', 'helpers.sock'))).toBe(false);
      expect(mountsContaining(dir)).toEqual([]);
      expect(existsSync(join(dir, 's.sock'))).toBe(false);
    } finally {
      held.close();
    }
  });

  it('runs its helpers from a read-only bind of the native dir: one, reused after a kill -9, gone at shutdown', async () => {
    const s = await startServer();
    const bind = join(s.root, 'native');
    try {
      expect(mountsContaining(bind)).toEqual([bind]);
      expect(() => writeFileSync(join(bind, 'new-file'), '')).toThrow(/EROFS/);
      const spares = () => processesNaming(join(s.state, 'spare-monitors'));
      await until('the spare monitors', () => spares().length > 0);
      for (const pid of spares()) expect(readlinkSync(`/proc/${pid}/exe`)).toBe(join(bind, 'peapod-monitor'));
      await s.restart();
      expect(mountsContaining(bind)).toEqual([bind]);
      const pid = s.pid;
      process.kill(pid, 'SIGTERM');
      await until('the server gone', () => !alive(pid), 6000);
      expect(mountsContaining(bind)).toEqual([]);
      await s.restart();
    } finally {
      await s.cleanup();
    }
  });

  it('refuses a --socket path that holds something else than a socket, and keeps it', () => {
    const file = join(tmp, 'not-a-socket');
    writeFileSync(file, 'precious\n');
    const r = run(['serve', '--socket', file, '--root', join(tmp, 'r'), '--state', join(tmp, 's'), '--network', 'none']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`peapod: ${file} exists and is not a socket`);
    expect(readFileSync(file, 'utf8')).toBe('precious\n');
  });

  it('bad flag values are usage errors naming the flag', () => {
    for (const [flag, value, why] of [
      ['--network', 'foo', 'must be one of "cni", "none"'],
      ['--metrics-address', 'foo', 'must be HOST:PORT'],
      ['--pod-cgroup-root', '../x', 'is not usable'],
    ]) {
      const r = run(['serve', '--socket', join(tmp, 'flags.sock'), flag!, value!]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`peapod: ${flag} ${why}`);
      expect(r.stderr).toContain('Run "peapod --help" for usage.');
    }
  });

  it('a log reader that goes away costs the log lines, not the server', async () => {
    // The server's stderr and stdout go to a reader that leaves after one byte.
    const s = await startServer({}, undefined, { wrapper: ['sh', '-c', '"$@" 2>&1 | head -c 1 >/dev/null', 'sh'] });
    try {
      for (let i = 0; i < 20; i++) expect((await s.runtime.Version({})).runtimeName).toBe('peapod');
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('epipe') });
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      await s.cleanup();
    }
  });
});

describe(`peapod serve shutdown [server on ${runtime}]`, () => {
  let s: TestServer;
  let base: string;
  const k = podCli(() => s);
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-shutdown-'));
    s = await startServer({}, preloadBusybox, { args: ['--pod-log-dir', join(base, 'logs')] });
  });
  afterAll(async () => {
    try {
      await s?.cleanup();
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  /**
   * A pod whose deadline passes at once: its sync then stops a container that
   * ignores SIGTERM (PID 1 of its own PID namespace), which takes the whole
   * 10 s grace period (the cleanup waits for what is left of it).
   */
  const stuckSync = async (name: string) => {
    await k.apply(podManifest(name, `  activeDeadlineSeconds: 1\n  containers:\n    - name: c\n      ${LOCAL_BUSYBOX}\n      command: [sleep, "3600"]\n`, 10));
    await waitFor('the pod running', async () => (await k.pod(name)).status.containerStatuses[0]?.state.running !== undefined);
    await waitFor('the deadline stop under way', async () => (await k.pod(name)).events.some((e) => e.reason === 'DeadlineExceeded'));
  };

  it('SIGTERM stops accepting at once and exits within the grace, though a pod sync is under way', async () => {
    await stuckSync('stuck-term');
    const pid = s.pid;
    const t0 = Date.now();
    process.kill(pid, 'SIGTERM');
    await until('the socket gone', () => !existsSync(s.socket), 1500);
    await until('the server gone', () => !alive(pid), 6000);
    expect(Date.now() - t0).toBeLessThan(5000);
    await s.restart();
  });

  it('get -w ends when the server does: exit 1, the reason on stderr, after the rows it printed', async () => {
    await k.apply(podManifest('watched-away', `  containers:\n    - name: c\n      ${LOCAL_BUSYBOX}\n      command: [sleep, "3600"]\n`, 1));
    await waitFor('the pod running', async () => (await k.pod('watched-away')).status.containerStatuses[0]?.state.running !== undefined);
    const watch = spawn(peapodBin, [...peapodArgs, 'get', 'pods', 'watched-away', '-w', '-o', 'name', '--socket', s.socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    watch.stdout.on('data', (d: Buffer) => (out += d));
    watch.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((resolve) => watch.once('close', (code) => resolve(code)));
    try {
      await waitFor('the pod listed', async () => out === 'pod/watched-away\n');
      process.kill(s.pid, 'SIGTERM');
      const code = await Promise.race([exited, sleep(10_000).then(() => 'still watching')]);
      expect([code, out]).toEqual([1, 'pod/watched-away\n']);
      expect(err).toMatch(new RegExp(`^peapod: cannot reach the peapod server at ${s.socket} .*\n$`));
    } finally {
      watch.kill('SIGKILL');
      await until('the server gone', () => !existsSync(s.socket), 15_000).catch(() => undefined);
      await s.restart();
    }
  });

  it('a pull under way when the server stops is given up, not failed: after the restart no ErrImagePull, no back-off', async () => {
    const img = await layeredImage(2, { repeat: 2000 });
    const layer = (JSON.parse(img.manifest.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    const reg = await startStub(serveImage(img, layer)); // sends half the layer, then stalls
    try {
      await k.apply(podManifest('pull-at-stop', `  containers:\n    - name: c\n      image: ${reg.host}/team/app:1\n      command: [sleep, "3600"]\n`, 1));
      await waitFor('the stalled layer asked for', async () => reg.requests.some((r) => r.path.endsWith(layer)));
      const pid = s.pid;
      process.kill(pid, 'SIGTERM');
      await until('the server gone', () => !alive(pid), 6000);
      await s.restart();
      const v = await k.pod('pull-at-stop');
      expect(v.events.filter((e) => e.type === 'Warning').map((e) => e.message)).toEqual([]);
      expect(v.status.containerStatuses[0]!.state.waiting?.reason).toBe('ContainerCreating');
      await k.deleteAll();
    } finally {
      await reg.stop();
    }
  });

  it('a second signal exits at once', async () => {
    await stuckSync('stuck-twice');
    const pid = s.pid;
    process.kill(pid, 'SIGINT');
    await sleep(200);
    const t0 = Date.now();
    process.kill(pid, 'SIGINT');
    await until('the server gone', () => !alive(pid), 1500);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(existsSync(s.socket)).toBe(false);
    await s.restart();
  });
});

describe('peapod CLI usage checks', () => {
  it('get: a NAME with -A is a usage error, as kubectl; an unreachable server is said without gRPC\'s trailing note', () => {
    const named = spawnSync(peapodBin, [...peapodArgs, 'get', 'pods', 'x', '-A', '--socket', '/nonexistent.sock'], { encoding: 'utf8' });
    expect([named.status, named.stderr.split('\n')[0]]).toEqual([2, 'peapod: get: a resource cannot be retrieved by name across all namespaces']);
    const away = spawnSync(peapodBin, [...peapodArgs, 'get', 'pods', '--socket', '/nonexistent.sock'], { encoding: 'utf8' });
    expect(away.status).toBe(1);
    expect(away.stderr).toMatch(/^peapod: cannot reach the peapod server at \/nonexistent\.sock .*ENOENT \/nonexistent\.sock\n$/);
  });

  it('doctor takes the flags of serve, and --network none leaves CNI out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-doctor-cli-'));
    try {
      mkdirSync(join(dir, 'net.d'));
      const r = spawnSync(
        peapodBin,
        [...peapodArgs, 'doctor', '--json', '--network', 'none', '--cni-conf-dir', join(dir, 'net.d'), '--socket', join(dir, 's.sock'), '--root', join(dir, 'root'), '--state', join(dir, 'state')],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.stderr).toBe('');
      const cni = (JSON.parse(r.stdout).checks as Array<{ name: string; status: string; detail: string }>).find((c) => c.name === 'cni');
      expect(cni).toMatchObject({ status: 'OK', detail: expect.stringMatching(/^network "none"/) });
      const bad = spawnSync(peapodBin, [...peapodArgs, 'doctor', '--network', 'foo'], { encoding: 'utf8' });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('peapod: --network must be one of');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
