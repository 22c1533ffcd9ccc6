// The kubelet's restart back-off (a StartError does not reset it), sidecars in
// back-off not holding up later init containers, and lifecycle hooks: an
// httpGet hook judged by transport only, preStop after a failed postStart.
// The server runs with the kubelet's own back-off (10 s).

import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_BUSYBOX, podManifest, podServer } from '../support/pods.js';
import { runtime } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

describe(`pod back-off and hooks [server on ${runtime}]`, () => {
  const k = podServer('peapod-backoff-');
  const { cli, pod, apply } = k;
  const manifest = (name: string, spec: string) => podManifest(name, spec, 2);
  const bb = LOCAL_BUSYBOX;

  it.each([
    ['app', `  containers:\n    - name: c\n      ${bb}\n      command: ["/nope"]`],
    ['init', `  initContainers:\n    - name: c\n      ${bb}\n      command: ["/nope"]\n  containers:\n    - name: app\n      ${bb}\n      command: ["sleep", "3600"]`],
  ])('a program that cannot be executed exits 128 StartError and backs off (%s container)', async (kind, spec) => {
    const name = `nope-${kind}`;
    await apply(manifest(name, spec));
    const display = kind === 'app' ? 'CrashLoopBackOff' : 'Init:CrashLoopBackOff';
    await waitFor(display, async () => (await pod(name)).status.display === display);
    // Restarted once at once, then 10 s of back-off.
    await sleep(3000);
    const v = await pod(name);
    const c = (kind === 'app' ? v.status.containerStatuses : v.status.initContainerStatuses)[0]!;
    expect(c.restartCount).toBeLessThanOrEqual(1);
    expect(c.state.waiting?.reason).toBe('CrashLoopBackOff');
    expect(c.lastState.terminated).toMatchObject({ exitCode: 128, reason: 'StartError' });
    await cli(['delete', name, '--force']);
  });

  it('a sidecar in back-off that had started does not hold up the next init container', async () => {
    await apply(
      manifest(
        'side-backoff',
        `  initContainers:
    - name: side
      ${bb}
      restartPolicy: Always
      command: ["sh", "-c", "sleep 1; exit 1"]
    - name: i1
      ${bb}
      command: ["sleep", "3"]
    - name: i2
      ${bb}
      command: ["sleep", "3600"]
  containers:
    - name: app
      ${bb}
      command: ["sleep", "3600"]`,
      ),
    );
    // side crashes at about 1 s (restarted at once) and 2 s (10 s back-off); i1 ends at about 3 s.
    const v = await waitFor('i2 running', async () => {
      const p = await pod('side-backoff');
      return p.status.initContainerStatuses[2]!.state.running ? p : undefined;
    }, 8000);
    expect(v.status.initContainerStatuses[0]!.state.waiting?.reason).toBe('CrashLoopBackOff');
    expect(v.status.initContainerStatuses[1]!.state.terminated).toMatchObject({ exitCode: 0 });
    await cli(['delete', 'side-backoff', '--force']);
  });

  it('a postStart httpGet answered 404 succeeds: only a transport error fails a hook', async () => {
    const hits: string[] = [];
    const http: Server = createServer((req, res) => {
      hits.push(`${req.url} ${req.headers['user-agent']}`);
      res.writeHead(404).end('not here');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      const port = (http.address() as AddressInfo).port;
      await apply(
        manifest(
          'hook404',
          `  hostNetwork: true
  containers:
    - name: c
      ${bb}
      command: ["sleep", "3600"]
      lifecycle: {postStart: {httpGet: {host: 127.0.0.1, port: ${port}, path: /started}}}`,
        ),
      );
      await waitFor('the hook request', async () => hits.length > 0);
      await sleep(1500);
      const p = await pod('hook404');
      expect(p.status.containerStatuses[0]!.state.running).toBeDefined();
      expect(p.status.containerStatuses[0]!.restartCount).toBe(0);
      expect(p.events.some((e) => e.reason === 'FailedPostStartHook')).toBe(false);
      expect(hits[0]).toMatch(/^\/started kube-lifecycle\//);
      await cli(['delete', 'hook404', '--force']);
    } finally {
      http.close();
    }
  });

  it('a failed postStart kills the container through preStop', async () => {
    const out = join(k.base(), 'prestop-out');
    await apply(
      manifest(
        'poststart-fails',
        `  volumes: [{name: out, hostPath: {path: ${out}, type: DirectoryOrCreate}}]
  containers:
    - name: c
      ${bb}
      command: ["sleep", "3600"]
      volumeMounts: [{name: out, mountPath: /out}]
      lifecycle:
        postStart: {exec: {command: ["false"]}}
        preStop: {exec: {command: ["sh", "-c", "echo stopping > /out/prestop"]}}`,
      ),
    );
    // The shell creates the file before it writes to it.
    await waitFor('the preStop file', async () => (existsSync(join(out, 'prestop')) && readFileSync(join(out, 'prestop'), 'utf8') === 'stopping\n' ? true : undefined));
    const p = await pod('poststart-fails');
    expect(p.events.some((e) => e.reason === 'FailedPostStartHook')).toBe(true);
    await cli(['delete', 'poststart-fails', '--force']);
  });
});
