// The pod runner end to end: each examples/pods/*.yaml run through the CLI
// against a real server (on the matrix runtime), asserting the outcome its
// header comment documents.

import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preloadBusybox } from '../support/images.js';
import { repoRoot, runtime, startServer, type TestServer } from '../support/server.js';
import type { PodView } from '../../src/pod/status.js';

const examples = join(repoRoot, 'examples', 'pods');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`pod runner examples [server on ${runtime}]`, () => {
  let s: TestServer;
  let base: string;
  let manifestDir: string;
  let logDir: string;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-pods-'));
    manifestDir = join(base, 'manifests');
    logDir = join(base, 'logs');
    for (const d of [manifestDir, logDir]) rmSync(d, { recursive: true, force: true });
    await import('node:fs/promises').then((f) => Promise.all([f.mkdir(manifestDir), f.mkdir(logDir)]));
    s = await startServer({ PEAPOD_BACKOFF_BASE_MS: '300' }, preloadBusybox, {
      args: ['--manifest-dir', manifestDir, '--pod-log-dir', logDir],
    });
  });
  afterAll(async () => {
    if (s) {
      const list = await cli(['get', 'pods', '-A', '-o', 'json']).catch(() => undefined);
      for (const p of list ? (JSON.parse(list.out).items as PodView[]) : []) {
        await cli(['delete', p.metadata.name, '-n', p.metadata.namespace, '--force']);
      }
      await s.cleanup();
    }
    rmSync(base, { recursive: true, force: true });
  });

  function cli(args: string[], input?: string): Promise<{ code: number; out: string; err: string }> {
    return new Promise((resolve) => {
      const child = execFile(process.execPath, [join(repoRoot, 'dist', 'cli.js'), args[0]!, '--socket', s.socket, ...args.slice(1)], (error, out, err) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err });
      });
      if (input !== undefined) child.stdin!.end(input);
    });
  }

  async function pod(name: string, ns = 'default'): Promise<PodView> {
    const r = await cli(['get', 'pods', name, '-n', ns, '-o', 'json']);
    if (r.code !== 0) throw new Error(r.err);
    return JSON.parse(r.out) as PodView;
  }

  async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    let last: unknown;
    for (;;) {
      try {
        const v = await fn();
        if (v !== undefined && v !== false) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
      await sleep(150);
    }
  }

  const status = async (name: string) => (await pod(name)).status.display;
  const waitStatus = (name: string, want: string, ms?: number) =>
    waitFor(`${name} to be ${want}`, async () => ((await status(name)) === want ? true : undefined), ms);
  const run = async (file: string) => {
    const r = await cli(['run', '-f', join(examples, file)]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    return r.out;
  };
  const del = async (name: string) => {
    const r = await cli(['delete', name]);
    expect(r.code, r.err).toBe(0);
  };

  it('web-emptydir: one container writes index.html, the other serves it over the shared network', async () => {
    expect(await run('web-emptydir.yaml')).toBe('pod/web-emptydir created\n');
    await waitFor('2/2 ready', async () => (await pod('web-emptydir')).ready === '2/2');
    const r = await cli(['exec', 'web-emptydir', '-c', 'content', '--', 'wget', '-qO-', 'http://127.0.0.1:8080/']);
    expect(r.out).toBe('hello from peapod\n');
    const table = await cli(['get', 'pods']);
    expect(table.out).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    expect(table.out).toMatch(/^web-emptydir\s+2\/2\s+Running\s+0\s+\d+s$/m);
    const wide = await cli(['get', 'pods', '-o', 'wide']);
    expect(wide.out).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\n/);
    // The CRI objects carry the kubelet's labels.
    const { containers } = await s.runtime.ListContainers({ filter: { labelSelector: { 'io.kubernetes.pod.name': 'web-emptydir' } } });
    expect(containers.map((c) => c.labels['io.kubernetes.container.name']).sort()).toEqual(['content', 'web']);
    const dup = await cli(['run', '-f', join(examples, 'web-emptydir.yaml')]);
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(/already exists/);
    await del('web-emptydir');
    expect((await s.runtime.ListPodSandbox({})).items.filter((p) => p.metadata!.name === 'web-emptydir')).toEqual([]);
    expect((await cli(['get', 'pods', 'web-emptydir'])).err).toMatch(/not found/);
  });

  it('init-copy: an init container prepares a file the app container reads', async () => {
    await run('init-copy.yaml');
    await waitStatus('init-copy', 'Running');
    await waitFor('the app log', async () => (await cli(['logs', 'init-copy'])).out === 'config: generated by init\n');
    const v = await pod('init-copy');
    expect(v.status.initContainerStatuses[0]!.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect((await cli(['logs', 'init-copy', '-c', 'make-config'])).out).toBe('');
    expect(readdirSync(logDir).some((d) => d.startsWith(`default_init-copy_${v.metadata.uid}`))).toBe(true);
    expect(existsSync(join(logDir, `default_init-copy_${v.metadata.uid}`, 'app', '0.log'))).toBe(true);
    await del('init-copy');
  });

  it('init-wait: init containers run strictly in order (Init:0/2 → Init:1/2 → Running)', async () => {
    await run('init-wait.yaml');
    await waitFor('wait-db running', async () => !!(await pod('init-wait')).status.initContainerStatuses[0]!.state.running);
    expect(await status('init-wait')).toBe('Init:0/2');
    await sleep(500);
    expect(await status('init-wait')).toBe('Init:0/2');
    expect((await cli(['exec', 'init-wait', '-c', 'wait-db', '--', 'touch', '/cond/db'])).code).toBe(0);
    await waitStatus('init-wait', 'Init:1/2');
    expect((await cli(['logs', 'init-wait', '-c', 'wait-db'])).out).toBe('db is up\n');
    // The emptyDir is a tmpfs (medium: Memory) shared by both init containers.
    const df = await waitFor('exec in wait-cache', async () => {
      const r = await cli(['exec', 'init-wait', '-c', 'wait-cache', '--', 'sh', '-c', 'ls /cond; grep " /cond " /proc/mounts']);
      return r.code === 0 ? r.out : undefined;
    });
    expect(df).toMatch(/^db$/m);
    expect(df).toMatch(/tmpfs \/cond tmpfs .*size=1024k/);
    await cli(['exec', 'init-wait', '-c', 'wait-cache', '--', 'touch', '/cond/cache']);
    await waitStatus('init-wait', 'Running');
    expect((await pod('init-wait')).ready).toBe('1/1');
    await del('init-wait');
  });

  it('env: values, $(VAR) expansion, fieldRef and resourceFieldRef', async () => {
    await run('env.yaml');
    await waitStatus('env-demo', 'Completed');
    const v = await pod('env-demo');
    expect(v.status.phase).toBe('Succeeded');
    const out = (await cli(['logs', 'env-demo'])).out;
    expect(out).toMatch(/^args: hello world$/m);
    for (const line of [
      'GREETING=hello world',
      'ESCAPED=$(NOT_EXPANDED)',
      'POD_NAME=env-demo',
      'POD_NAMESPACE=default',
      `POD_UID=${v.metadata.uid}`,
      'TIER=backend',
      'MEM_LIMIT=67108864',
      'CPU_LIMIT_M=500',
      `NODE_NAME=${v.node}`,
    ]) {
      expect(out.split('\n')).toContain(line);
    }
    await del('env-demo');
  });

  it('liveness-http: a failing liveness probe restarts the container, the restart count grows', async () => {
    await run('liveness-http.yaml');
    await waitFor('two restarts', async () => (await pod('liveness-http')).restarts >= 2, 40_000);
    const v = await pod('liveness-http');
    const c = v.status.containerStatuses[0]!;
    expect(c.lastState.terminated).toBeDefined();
    expect(v.events.some((e) => e.reason === 'Unhealthy' && /Liveness probe failed: HTTP probe failed with statuscode: 404/.test(e.message))).toBe(true);
    expect(v.events.some((e) => e.reason === 'Killing' && /failed liveness probe/.test(e.message))).toBe(true);
    const d = await cli(['describe', 'pod', 'liveness-http']);
    expect(d.out).toMatch(/Restart Count:\s+[2-9]/);
    expect(d.out).toMatch(/Liveness probe:/);
    expect(d.out).toMatch(/Last State:\s+Terminated/);
    // The previous instance's log is kept.
    expect((await cli(['logs', 'liveness-http', '--previous'])).code).toBe(0);
    await del('liveness-http');
  });

  it('readiness: READY follows the readiness probe (0/1 → 1/1 → 0/1)', async () => {
    await run('readiness.yaml');
    await waitStatus('readiness', 'Running');
    await sleep(1500);
    expect((await pod('readiness')).ready).toBe('0/1');
    expect((await cli(['exec', 'readiness', '--', 'touch', '/tmp/ready'])).code).toBe(0);
    await waitFor('1/1', async () => (await pod('readiness')).ready === '1/1');
    const v = await pod('readiness');
    expect(v.status.conditions).toContainEqual({ type: 'Ready', status: 'True' });
    await cli(['exec', 'readiness', '--', 'rm', '/tmp/ready']);
    await waitFor('0/1 again', async () => (await pod('readiness')).ready === '0/1');
    expect((await pod('readiness')).restarts).toBe(0);
    await del('readiness');
  });

  it('prestop: delete runs preStop within the grace period before stopping', async () => {
    const hostDir = join(base, 'prestop-out');
    const yaml = readFileSync(join(examples, 'prestop.yaml'), 'utf8').replaceAll('/tmp/peapod-prestop', hostDir);
    const r = await cli(['run', '-f', '-'], yaml);
    expect(r.code, r.err).toBe(0);
    await waitStatus('prestop', 'Running');
    const began = Date.now();
    await del('prestop');
    const took = Date.now() - began;
    expect(took).toBeGreaterThanOrEqual(2000);
    expect(took).toBeLessThan(8000);
    expect(readFileSync(join(hostDir, 'marker'), 'utf8')).toBe('prestop ran\n');
  });

  it('static pods: a manifest file added starts, changed recreates, removed deletes its pod', async () => {
    const file = join(manifestDir, 'static-web.yaml');
    copyFileSync(join(examples, 'static-pod.yaml'), file);
    await waitStatus('static-web', 'Running');
    const uid1 = (await pod('static-web')).metadata.uid;
    await waitFor('v1 log', async () => (await cli(['logs', 'static-web'])).out === 'static version 1\n');
    writeFileSync(file, readFileSync(file, 'utf8').replace('version 1', 'version 2').replace('version: "1"', 'version: "2"'));
    const v2 = await waitFor('a recreated pod', async () => {
      const v = await pod('static-web');
      return v.metadata.uid !== uid1 && v.status.display === 'Running' ? v : undefined;
    });
    expect(v2.metadata.annotations.version).toBe('2');
    await waitFor('v2 log', async () => (await cli(['logs', 'static-web'])).out === 'static version 2\n');
    rmSync(file);
    await waitFor('the pod gone', async () => (await cli(['get', 'pods', 'static-web'])).code !== 0);
  });

  it('restartPolicy Never with a failing init container: the pod fails, the app never runs', async () => {
    await run('init-fails-never.yaml');
    await waitFor('Failed', async () => (await pod('init-fails')).status.phase === 'Failed');
    const v = await pod('init-fails');
    expect(v.status.display).toBe('Init:Error');
    expect(v.status.initContainerStatuses[0]!.state.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(v.status.containerStatuses[0]!.state.waiting?.reason).toBe('PodInitializing');
    expect(v.status.containerStatuses[0]!.restartCount).toBe(0);
    expect((await cli(['logs', 'init-fails', '-c', 'check'])).out).toBe('precondition not met\n');
    await del('init-fails');
  });

  it('restartPolicy OnFailure with exit 0: Completed, no restart', async () => {
    await run('job-onfailure.yaml');
    await waitStatus('job', 'Completed');
    await sleep(1000);
    const v = await pod('job');
    expect(v.status.phase).toBe('Succeeded');
    expect(v.restarts).toBe(0);
    expect(v.status.containerStatuses[0]!.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect((await cli(['logs', 'job'])).out).toBe('working\ndone\n');
    await del('job');
  });

  it('an unsupported field: a clear error naming the field, nothing started', async () => {
    const r = await cli(['run', '-f', join(examples, 'unsupported-field.yaml')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('spec.containers[0].volumeDevices is not supported by peapod');
    expect((await cli(['get', 'pods', 'fine'])).code).toBe(1);
    expect((await s.runtime.ListPodSandbox({})).items).toEqual([]);
  });
});
