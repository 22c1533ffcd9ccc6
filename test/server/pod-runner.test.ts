// Pod runner semantics beyond the examples: sidecars, hooks, deadline, image
// pull policy, security checks, a finished pod's volumes, and a server restart
// resuming control.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mountsUnder } from '../../src/linux/mount.js';
import { layeredImage } from '../support/image-archive.js';
import { LOCAL_BUSYBOX, podManifest, podServer } from '../support/pods.js';
import { serveImage, startStub } from '../support/registry.js';
import { runtime } from '../support/server.js';
import { waitFor } from '../support/wait.js';

describe(`pod runner [server on ${runtime}]`, () => {
  const k = podServer('peapod-runner-', { PEAPOD_BACKOFF_BASE_MS: '300' });
  const { cli, pod, apply } = k;
  const manifest = (name: string, spec: string) => podManifest(name, spec);
  const bb = LOCAL_BUSYBOX;

  it('sidecars start before the next init container, keep running, and count towards READY', async () => {
    await apply(
      manifest(
        'sidecar',
        `  volumes: [{name: shared, emptyDir: {}}]
  initContainers:
    - name: log-agent
      ${bb}
      restartPolicy: Always
      command: ["sh", "-c", "touch /shared/agent-up; exec sleep 3600"]
      volumeMounts: [{name: shared, mountPath: /shared}]
      startupProbe: {exec: {command: ["test", "-f", "/shared/agent-up"]}, periodSeconds: 1}
    - name: needs-agent
      ${bb}
      command: ["test", "-f", "/shared/agent-up"]
      volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
    - name: app
      ${bb}
      command: ["sleep", "3600"]`,
      ),
    );
    const v = await waitFor('Running 2/2', async () => {
      const p = await pod('sidecar');
      return p.status.display === 'Running' && p.ready === '2/2' ? p : undefined;
    });
    expect(v.status.initContainerStatuses[0]!.state.running).toBeDefined();
    expect(v.status.initContainerStatuses[1]!.state.terminated).toMatchObject({ exitCode: 0 });
    expect(v.restarts).toBe(0);
    await cli(['delete', 'sidecar']);
  });

  it('postStart runs before the container counts as running; a failing postStart kills it', async () => {
    await apply(
      manifest(
        'hooks',
        `  containers:
    - name: ok
      ${bb}
      command: ["sleep", "3600"]
      lifecycle: {postStart: {exec: {command: ["sh", "-c", "sleep 1; echo started > /tmp/poststart"]}}}
    - name: bad
      ${bb}
      command: ["sleep", "3600"]
      lifecycle: {postStart: {exec: {command: ["false"]}}}`,
      ),
    );
    await waitFor('ok running', async () => !!(await pod('hooks')).status.containerStatuses[0]!.state.running);
    expect((await cli(['exec', 'hooks', '-c', 'ok', '--', 'cat', '/tmp/poststart'])).out).toBe('started\n');
    const v = await waitFor('bad restarted', async () => {
      const p = await pod('hooks');
      return p.status.containerStatuses[1]!.restartCount >= 1 ? p : undefined;
    });
    expect(v.events.some((e) => e.reason === 'FailedPostStartHook')).toBe(true);
    await cli(['delete', 'hooks', '--force']);
  });

  it('activeDeadlineSeconds fails the pod with DeadlineExceeded', async () => {
    await apply(manifest('deadline', `  activeDeadlineSeconds: 2\n  containers:\n    - name: c\n      ${bb}\n      command: ["sleep", "3600"]`));
    const v = await waitFor('Failed', async () => {
      const p = await pod('deadline');
      return p.status.phase === 'Failed' ? p : undefined;
    });
    expect(v.status.reason).toBe('DeadlineExceeded');
    expect(v.status.display).toBe('DeadlineExceeded');
    expect(v.status.containerStatuses[0]!.state.terminated).toBeDefined();
    await cli(['delete', 'deadline']);
  });

  it('a finished pod keeps no volume (tmpfs, subPath staging, emptyDir content), and its logs stay readable', async () => {
    await apply(
      manifest(
        'finished',
        `  restartPolicy: Never
  volumes: [{name: mem, emptyDir: {medium: Memory}}, {name: disk, emptyDir: {}}]
  containers:
    - name: c
      ${bb}
      command: ["sh", "-c", "echo x > /mem/f; echo y > /disk/f; echo z > /sub/f; echo done"]
      volumeMounts: [{name: mem, mountPath: /mem}, {name: disk, mountPath: /disk}, {name: mem, mountPath: /sub, subPath: s}]`,
      ),
    );
    const v = await waitFor('Succeeded', async () => {
      const p = await pod('finished');
      return p.status.phase === 'Succeeded' ? p : undefined;
    });
    const uid = v.metadata.uid;
    // The phase comes with the containers' ends, the tear-down just after.
    await waitFor('the volumes torn down', async () => !existsSync(join(k.server().root, 'pods', uid, 'volumes')));
    expect(mountsUnder(k.server().state).filter((mp) => mp.includes(`/pods/${uid}/`))).toEqual([]);
    expect((await cli(['logs', 'finished'])).out).toBe('done\n');
    await cli(['delete', 'finished']);
  });

  it('termination messages: the file a container writes (a non-root user too, at its own path), or with FallbackToLogsOnError the end of a failed one\'s log', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('; echo ');
    await apply(
      manifest(
        'messages',
        `  restartPolicy: Never
  containers:
    - name: file
      ${bb}
      command: ["sh", "-c", "printf 'bye\\n' > /dev/termination-log; exit 3"]
    - name: custom
      ${bb}
      command: ["sh", "-c", "printf custom > /tmp/why"]
      terminationMessagePath: /tmp/why
      securityContext: {runAsUser: 1000}
    - name: logs
      ${bb}
      command: ["sh", "-c", "echo ${lines}; exit 1"]
      terminationMessagePolicy: FallbackToLogsOnError
    - name: quiet
      ${bb}
      command: ["sh", "-c", "echo not a message; exit 0"]
      terminationMessagePolicy: FallbackToLogsOnError`,
      ),
    );
    const v = await waitFor('Failed', async () => {
      const p = await pod('messages');
      return p.status.phase === 'Failed' ? p : undefined;
    });
    const message = (name: string) => v.status.containerStatuses.find((c) => c.name === name)!.state.terminated!.message;
    expect(message('file')).toBe('bye\n');
    expect(message('custom')).toBe('custom');
    // The log's last 80 lines.
    expect(message('logs')).toBe(Array.from({ length: 80 }, (_, i) => `line ${i + 20}\n`).join(''));
    // A success with nothing written has no message: the log stands in only for a failure.
    expect(message('quiet')).toBeUndefined();
    await cli(['delete', 'messages']);
  });

  it('imagePullPolicy Never without the image: ErrImageNeverPull; runAsNonRoot with a root image: CreateContainerConfigError', async () => {
    await apply(manifest('never', `  containers:\n    - name: c\n      image: example.invalid/none:1\n      imagePullPolicy: Never`));
    await waitFor('ErrImageNeverPull', async () => (await pod('never')).status.display === 'ErrImageNeverPull');
    await apply(manifest('nonroot', `  containers:\n    - name: c\n      ${bb}\n      command: ["sleep", "1"]\n      securityContext: {runAsNonRoot: true}`));
    const v = await waitFor('CreateContainerConfigError', async () => {
      const p = await pod('nonroot');
      return p.status.display === 'CreateContainerConfigError' ? p : undefined;
    });
    expect(v.status.containerStatuses[0]!.state.waiting!.message).toMatch(/runAsNonRoot and image will run as root/);
    await cli(['delete', 'never']);
    await cli(['delete', 'nonroot']);
  });

  it("deleting a pod whose image is being pulled stops the pull, as the kubelet's cancelled sync: nothing of it is kept", async () => {
    const img = await layeredImage(2, { repeat: 2000 });
    const layer = (JSON.parse(img.manifest.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    const reg = await startStub(serveImage(img, layer)); // sends half the layer, then stalls
    try {
      const blobs = () => readdirSync(join(k.server().root, 'images/blobs/sha256')).sort();
      const before = blobs();
      await apply(manifest('stalled-pull', `  containers:\n    - name: c\n      image: ${reg.host}/team/app:1\n      command: ["sleep", "3600"]`));
      await waitFor('the stalled layer asked for', async () => reg.requests.some((r) => r.path.endsWith(layer)));
      const t0 = Date.now();
      expect((await cli(['delete', 'stalled-pull'])).code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
      await waitFor('the registry requests dropped', async () => reg.open() === 0);
      await waitFor('the fetched blobs dropped', async () => JSON.stringify(blobs()) === JSON.stringify(before));
      expect(readdirSync(join(k.server().root, 'images/ingest'))).toEqual([]);
    } finally {
      await reg.stop();
    }
  });

  it('applies resources, security and the kubelet labels to the CRI container', async () => {
    await apply(
      manifest(
        'limits',
        `  containers:
    - name: c
      ${bb}
      command: ["sleep", "3600"]
      resources: {limits: {cpu: 500m, memory: 64Mi}, requests: {cpu: 250m}}
      securityContext: {runAsUser: 1000, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}`,
      ),
    );
    const v = await waitFor('running', async () => {
      const p = await pod('limits');
      return p.status.containerStatuses[0]!.state.running ? p : undefined;
    });
    const id = v.status.containerStatuses[0]!.containerID.replace('peapod://', '');
    const st = (await k.server().runtime.ContainerStatus({ containerId: id })).status!;
    expect(st.resources!.linux).toMatchObject({ cpuQuota: '50000', cpuPeriod: '100000', cpuShares: '256', memoryLimitInBytes: '67108864' });
    expect(st.labels).toMatchObject({ 'io.kubernetes.container.name': 'c', 'io.kubernetes.pod.name': 'limits', 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.uid': v.metadata.uid });
    expect(st.logPath).toMatch(/\/default_limits_[0-9a-f-]+\/c\/0\.log$/);
    const ex = await cli(['exec', 'limits', '--', 'sh', '-c', 'id -u; grep NoNewPrivs /proc/self/status; touch /x 2>&1; grep CapEff /proc/self/status']);
    expect(ex.out).toMatch(/^1000$/m);
    expect(ex.out).toMatch(/NoNewPrivs:\s+1/);
    expect(ex.out).toMatch(/Read-only file system/);
    expect(ex.out).toMatch(/CapEff:\s+0+$/m);
    await cli(['delete', 'limits']);
  });

  it('a restarted server resumes control: restart counts persist and crashing containers keep restarting', async () => {
    await apply(manifest('crasher', `  containers:\n    - name: c\n      ${bb}\n      command: ["sh", "-c", "echo run; sleep 0.3; exit 1"]`));
    await waitFor('2 restarts', async () => (await pod('crasher')).restarts >= 2);
    const before = (await pod('crasher')).restarts;
    const uid = (await pod('crasher')).metadata.uid;
    await k.server().restart({ PEAPOD_BACKOFF_BASE_MS: '300' });
    const v = await pod('crasher');
    expect(v.metadata.uid).toBe(uid);
    expect(v.restarts).toBeGreaterThanOrEqual(before);
    await waitFor('more restarts after the restart', async () => (await pod('crasher')).restarts > before + 1, 30_000);
    // RESTARTS as kubectl shows it, with the time since the last one.
    expect((await cli(['get', 'pods', 'crasher'])).out).toMatch(/^crasher\s+[01]\/1\s+\S+\s+\d+ \(\d+s ago\)\s+\S+$/m);
    const d = await cli(['describe', 'pod', 'crasher']);
    expect(d.out).toMatch(/Last State:\s+Terminated/);
    expect(d.out).toMatch(/Exit Code:\s+1/);
    // Only the current instance's termination-message file is kept, not one per restart.
    expect(readdirSync(join(k.server().root, 'pods', uid, 'containers', 'c'))).toHaveLength(1);
    await cli(['delete', 'crasher', '--force']);
    expect((await cli(['get', 'pods'])).err).toMatch(/No resources found/);
  });
});
