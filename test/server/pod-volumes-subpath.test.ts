// subPath volume mounts end to end: the container sees the subdirectory of a
// shared emptyDir (0777, so a non-root user writes to it); when another
// container swaps that subdirectory for a symlink to the host's /, the next
// start of the subPath container is refused (CreateContainerConfigError)
// instead of mounting the host's root; no staging mount outlives the pod. A
// symlink that stays in the volume is followed, as by the kubelet.

import { describe, expect, it } from 'vitest';
import { mountsUnder } from '../../src/linux/mount.js';
import { LOCAL_BUSYBOX, podManifest, podServer } from '../support/pods.js';
import { runtime } from '../support/server.js';
import { waitFor } from '../support/wait.js';

describe(`pod subPath mounts [server on ${runtime}]`, () => {
  const k = podServer('peapod-subpath-', { PEAPOD_BACKOFF_BASE_MS: '300' });
  const { cli, pod, apply, exec } = k;

  it('a subPath swapped for a symlink to / by another container is refused at the next start', async () => {
    await apply(`apiVersion: v1
kind: Pod
metadata:
  name: swap
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: v, emptyDir: {}}]
  containers:
    - name: a
      image: busybox
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
      volumeMounts: [{name: v, mountPath: /v}]
    - name: b
      image: busybox
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "touch /data/by-b; until test -f /data/stop; do sleep 0.1; done; rm /data/stop; sleep 1; exit 1"]
      securityContext: {runAsUser: 1000}
      volumeMounts: [{name: v, mountPath: /data, subPath: s}]
`);
    await waitFor('Running 2/2', async () => {
      const p = await pod('swap');
      return p.status.display === 'Running' && p.ready === '2/2' ? p : undefined;
    });
    // b (uid 1000) wrote into the subdirectory peapod created for it.
    await waitFor('by-b', async () => (await exec('swap', 'a', ['stat', '-c', '%u %a', '/v/s/by-b']).catch(() => '')) === '1000 644\n');
    expect(await exec('swap', 'a', ['stat', '-c', '%a', '/v/s'])).toBe('777\n');
    // a swaps s for a symlink to / while b is on its way out (it left once it saw the stop file go).
    await exec('swap', 'a', ['sh', '-c', 'touch /v/s/stop; while [ -e /v/s/stop ]; do sleep 0.05; done; rm -rf /v/s; ln -s / /v/s']);
    const v = await waitFor('CreateContainerConfigError', async () => {
      const p = await pod('swap');
      return p.status.containerStatuses[1]!.state.waiting?.reason === 'CreateContainerConfigError' ? p : undefined;
    });
    expect(v.status.containerStatuses[1]!.state.waiting!.message).toMatch(/subPath "s" of volume "v": "s" is a symbolic link/);
    expect(mountsUnder(k.server().state).some((mp) => mp.includes('/volume-subpaths/'))).toBe(true);
    await cli(['delete', 'swap', '--force']);
    expect(mountsUnder(k.server().state).filter((mp) => mp.includes('/volume-subpaths/'))).toEqual([]);
  });

  it('a subPath through a symlink that stays in the volume is followed, as by the kubelet; a missing directory under it is made there', async () => {
    await apply(
      podManifest(
        'linked',
        `  volumes: [{name: v, emptyDir: {}}]
  initContainers:
    - name: init
      ${LOCAL_BUSYBOX}
      command: ["sh", "-c", "mkdir /v/real && echo hi > /v/real/x && ln -s real /v/cur"]
      volumeMounts: [{name: v, mountPath: /v}]
  containers:
    - name: c
      ${LOCAL_BUSYBOX}
      command: ["sleep", "3600"]
      volumeMounts: [{name: v, mountPath: /v}, {name: v, mountPath: /data, subPath: cur}, {name: v, mountPath: /made, subPath: cur/new}]`,
      ),
    );
    await waitFor('Running', async () => (await pod('linked')).status.phase === 'Running');
    expect(await exec('linked', 'c', ['cat', '/data/x'])).toBe('hi\n');
    expect(await exec('linked', 'c', ['stat', '-c', '%F', '/v/real/new'])).toBe('directory\n');
    await cli(['delete', 'linked', '--force']);
  });
});
