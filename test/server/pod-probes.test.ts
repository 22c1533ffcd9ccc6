// Probe workers as the kubelet's: a probe that cannot run (a port name that
// does not resolve) is reported and never counted, and initialDelaySeconds
// counts from the container's start, also after a startup probe and after a
// server restart; gRPC probes against a health server in the pod's network;
// a preStop sleep hook.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PodView } from '../../src/pod/status.js';
import { LOCAL_BUSYBOX, podManifest, podServer } from '../support/pods.js';
import { repoRoot, runtime } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

describe(`pod probes [server on ${runtime}]`, () => {
  const k = podServer('peapod-probes-');
  const { cli, pod, apply } = k;
  const bb = LOCAL_BUSYBOX;
  const app = (name: string, probes: string) => podManifest(name, `  containers:\n    - name: c\n      ${bb}\n      command: ["sleep", "3600"]\n${probes}`);
  const killing = (v: PodView) => v.events.find((e) => e.reason === 'Killing');
  /** When the container (its first instance) started, from its running state. */
  const startedAt = async (name: string) =>
    Date.parse(await waitFor(`${name} running`, async () => (await pod(name)).status.containerStatuses[0]!.state.running?.startedAt || undefined));

  it('a probe whose port name does not resolve is reported as errored and never kills the container', async () => {
    await apply(app('bad-port', '      ports: [{name: web, containerPort: 8080}]\n      livenessProbe: {tcpSocket: {port: nope}, periodSeconds: 1, failureThreshold: 1}'));
    const v = await waitFor('three errored probes', async () => {
      const p = await pod('bad-port');
      return (p.events.find((e) => e.reason === 'Unhealthy')?.count ?? 0) >= 3 ? p : undefined;
    });
    expect(v.events.find((e) => e.reason === 'Unhealthy')).toMatchObject({ type: 'Warning', message: 'Liveness probe errored: port name "nope" is not a port of the container' });
    expect(killing(v)).toBeUndefined();
    expect(v.restarts).toBe(0);
    expect(v.status.containerStatuses[0]!.state.running).toBeDefined();
    await cli(['delete', 'bad-port', '--force']);
  });

  it('after a startup probe succeeds, liveness waits only what is left of its initialDelaySeconds', async () => {
    // Startup succeeds at about 4 s; liveness (failing) is due at 4 s too, not at 4 + 4 s.
    await apply(
      app(
        'after-startup',
        `      startupProbe: {exec: {command: ["true"]}, initialDelaySeconds: 4, periodSeconds: 1}
      livenessProbe: {exec: {command: ["false"]}, initialDelaySeconds: 4, periodSeconds: 1, failureThreshold: 1}`,
      ),
    );
    const started = await startedAt('after-startup');
    const kill = await waitFor('the liveness kill', async () => killing(await pod('after-startup')));
    const after = Date.parse(kill.lastTimestamp) - started;
    expect(after).toBeGreaterThanOrEqual(4000);
    expect(after).toBeLessThan(6500);
    await cli(['delete', 'after-startup', '--force']);
  });

  it('a gRPC readiness probe asks grpc.health.v1 in the pod\'s network: ready while SERVING, not once NOT_SERVING, with the kubelet\'s message', async () => {
    await apply(app('grpc', '      readinessProbe: {grpc: {port: 9555, service: app}, periodSeconds: 1, failureThreshold: 1}'));
    const { sandboxId } = await waitFor('a sandbox', async () => {
      const p = await pod('grpc');
      return p.sandboxId ? p : undefined;
    });
    // The health server runs on the host, in the pod's network namespace only: its 127.0.0.1 is the pod's.
    const netns = join(k.server().state, 'sandboxes', sandboxId, 'ns', 'net');
    const server = spawn('nsenter', [`--net=${netns}`, process.execPath, join(repoRoot, 'test', 'support', 'grpc-health-server.mjs'), '9555'], { cwd: repoRoot });
    try {
      await waitFor('ready', async () => (await pod('grpc')).ready === '1/1', 20_000);
      server.stdin.write('NOT_SERVING\n');
      const v = await waitFor('not ready', async () => {
        const p = await pod('grpc');
        return p.ready === '0/1' ? p : undefined;
      });
      expect(v.events.find((e) => e.reason === 'Unhealthy')).toMatchObject({ type: 'Warning', message: 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")' });
    } finally {
      server.kill('SIGKILL');
    }
    await cli(['delete', 'grpc', '--force']);
  });

  it('a preStop sleep hook holds the stop signal back that long', async () => {
    const out = mkdtempSync(join(k.base(), 'sleep-'));
    await apply(
      podManifest(
        'slept',
        `  volumes: [{name: out, hostPath: {path: ${out}}}]
  containers:
    - name: c
      ${bb}
      command: ["sh", "-c", "trap 'touch /out/term; exit 0' TERM; while true; do sleep 0.1; done"]
      lifecycle: {preStop: {sleep: {seconds: 2}}}
      volumeMounts: [{name: out, mountPath: /out}]`,
        10,
      ),
    );
    await startedAt('slept');
    const t0 = Date.now();
    const deleted = cli(['delete', 'slept']);
    await sleep(1500);
    expect(existsSync(join(out, 'term'))).toBe(false);
    expect((await deleted).code).toBe(0);
    expect(existsSync(join(out, 'term'))).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
  });

  it('after a server restart, a container past its initialDelaySeconds is probed at once', async () => {
    await apply(app('resumed', '      livenessProbe: {exec: {command: ["sh", "-c", "test ! -f /tmp/broken"]}, initialDelaySeconds: 8, periodSeconds: 1, failureThreshold: 1}'));
    await startedAt('resumed');
    await waitFor('a passing liveness probe', async () => (await pod('resumed')).status.containerStatuses[0]!.probes.liveness?.result === 'success', 20_000);
    await k.server().restart();
    await k.exec('resumed', 'c', ['touch', '/tmp/broken']);
    const broken = Date.now();
    // Probed every second from the restart on; not after another 8 s.
    const kill = await waitFor('the liveness kill', async () => killing(await pod('resumed')), 15_000);
    expect(Date.parse(kill.lastTimestamp) - broken).toBeLessThan(4000);
    await cli(['delete', 'resumed', '--force']);
  });
});
