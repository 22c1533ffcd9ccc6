// Probe workers as the kubelet's: a probe that cannot run (a port name that
// does not resolve) is reported and never counted, and initialDelaySeconds
// counts from the container's start, also after a startup probe and after a
// server restart.

import { describe, expect, it } from 'vitest';
import type { PodView } from '../../src/pod/status.js';
import { LOCAL_BUSYBOX, podManifest, podServer } from '../support/pods.js';
import { runtime } from '../support/server.js';
import { waitFor } from '../support/wait.js';

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
