// Volumes as the kubelet sets them up: a Memory emptyDir is a tmpfs of mode
// 1777 sized at the pod's memory limit, `noswap` where the kernel takes it
// (or a smaller sizeLimit, or without a
// limit the node's allocatable memory, as limits.memory is then); a
// downwardAPI volume's files and layout; hostPath
// type checks (File takes any non-directory, Socket follows a symlink, a
// failed check is a FailedMount event worded as the kubelet's).

import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_BUSYBOX, podManifest, podServer } from '../support/pods.js';
import { runtime } from '../support/server.js';
import { waitFor } from '../support/wait.js';

describe(`pod volumes [server on ${runtime}]`, () => {
  const k = podServer('peapod-volumes-env-', { PEAPOD_BACKOFF_BASE_MS: '300' });
  const { cli, pod, apply, exec } = k;
  const running = (name: string) =>
    waitFor(`${name} Running`, async () => {
      const p = await pod(name);
      return p.status.phase === 'Running' && p.ready === '1/1' ? p : undefined;
    });

  it('a Memory emptyDir is a 1777 tmpfs of the pod memory limit, or of a smaller sizeLimit', async () => {
    await apply(
      podManifest(
        'mem',
        `  volumes: [{name: m, emptyDir: {medium: Memory}}, {name: big, emptyDir: {medium: Memory, sizeLimit: 1Gi}}, {name: small, emptyDir: {medium: Memory, sizeLimit: 32Mi}}]
  containers:
    - name: c
      ${LOCAL_BUSYBOX}
      command: ["sleep", "3600"]
      resources: {limits: {memory: 64Mi}}
      volumeMounts: [{name: m, mountPath: /m}, {name: big, mountPath: /big}, {name: small, mountPath: /small}]`,
      ),
    );
    await running('mem');
    const size = async (dir: string) => {
      const [blocks, bsize] = (await exec('mem', 'c', ['stat', '-f', '-c', '%b %S', dir])).trim().split(' ').map(Number);
      return blocks! * bsize!;
    };
    expect(await size('/m')).toBe(64 * 2 ** 20);
    expect(await size('/big')).toBe(64 * 2 ** 20);
    expect(await size('/small')).toBe(32 * 2 ** 20);
    expect(await exec('mem', 'c', ['stat', '-c', '%a', '/m'])).toBe('1777\n');
    // Whether this kernel takes the option, asked of mount(8) in a mount namespace of its own.
    const takes = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o noswap,size=1m tmpfs /mnt'], { stdio: 'ignore' }).status === 0;
    const options = (await exec('mem', 'c', ['sh', '-c', 'grep " /small " /proc/mounts | cut -d" " -f4'])).trim().split(',');
    expect(options.includes('noswap'), options.join(',')).toBe(takes);
    await cli(['delete', 'mem', '--force']);
  });

  it('without limits, a Memory emptyDir and limits.memory are the node\'s allocatable: its memory less the kubelet\'s 100Mi evictionHard', async () => {
    await apply(
      podManifest(
        'unlimited',
        `  volumes: [{name: m, emptyDir: {medium: Memory}}]
  containers:
    - name: c
      ${LOCAL_BUSYBOX}
      command: ["sleep", "3600"]
      env: [{name: LIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory}}}]
      volumeMounts: [{name: m, mountPath: /m}]`,
      ),
    );
    await running('unlimited');
    const allocatable = totalmem() - 100 * 2 ** 20;
    const [blocks, bsize] = (await exec('unlimited', 'c', ['stat', '-f', '-c', '%b %S', '/m'])).trim().split(' ').map(Number);
    // tmpfs rounds its size up to whole pages.
    expect(blocks! * bsize!).toBe(Math.ceil(allocatable / bsize!) * bsize!);
    expect(await exec('unlimited', 'c', ['sh', '-c', 'echo $LIMIT'])).toBe(`${allocatable}\n`);
    await cli(['delete', 'unlimited', '--force']);
  });

  it('a downwardAPI volume: read-only files of the pod\'s metadata and resources, laid out as the kubelet\'s atomic writer', async () => {
    await apply(
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: dapi\n  labels: {app: web, tier: front}\n  annotations: {build: "42"}\nspec:\n  terminationGracePeriodSeconds: 1
  volumes:
    - name: info
      downwardAPI:
        items:
          - {path: labels, fieldRef: {fieldPath: metadata.labels}}
          - {path: meta/build, mode: 0400, fieldRef: {fieldPath: "metadata.annotations['build']"}}
          - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
  containers:
    - name: c
      ${LOCAL_BUSYBOX}
      command: ["sleep", "3600"]
      resources: {limits: {memory: 64Mi}}
      volumeMounts: [{name: info, mountPath: /etc/podinfo}]`,
    );
    await running('dapi');
    const sh = (cmd: string) => exec('dapi', 'c', ['sh', '-c', cmd]);
    expect(await sh('cat /etc/podinfo/labels; echo; cat /etc/podinfo/meta/build; echo; cat /etc/podinfo/mem')).toBe('app="web"\ntier="front"\n42\n64');
    // Each name a symlink through ..data to a timestamped directory; the modes as asked (0644 by default).
    expect(await sh('for f in labels meta ..data; do readlink /etc/podinfo/$f; done')).toMatch(/^\.\.data\/labels\n\.\.data\/meta\n\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+\n$/);
    expect(await sh('stat -L -c %a /etc/podinfo/labels /etc/podinfo/meta/build')).toBe('644\n400\n');
    expect(await sh('touch /etc/podinfo/x 2>&1; grep " /etc/podinfo " /proc/mounts | cut -d" " -f3,4 | cut -d, -f1')).toMatch(/Read-only file system\ntmpfs ro\n$/);
    await cli(['delete', 'dapi', '--force']);
  });

  it('hostPath File takes /dev/null, Socket a symlink to a socket; DirectoryOrCreate on a file fails as the kubelet words it', async () => {
    const dir = join(k.base(), 'host');
    mkdirSync(dir);
    const sock = join(dir, 'real.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      symlinkSync(sock, join(dir, 'link.sock'));
      await apply(
        podManifest(
          'host-ok',
          `  volumes: [{name: devnull, hostPath: {path: /dev/null, type: File}}, {name: sock, hostPath: {path: ${dir}/link.sock, type: Socket}}]
  containers:
    - name: c
      ${LOCAL_BUSYBOX}
      command: ["sleep", "3600"]
      volumeMounts: [{name: devnull, mountPath: /n}, {name: sock, mountPath: /s}]`,
        ),
      );
      await running('host-ok');
      expect(await exec('host-ok', 'c', ['stat', '-c', '%F', '/n', '/s'])).toBe('character special file\nsocket\n');

      const file = join(dir, 'file');
      writeFileSync(file, '');
      await apply(
        podManifest(
          'host-bad',
          `  volumes: [{name: d, hostPath: {path: ${file}, type: DirectoryOrCreate}}]
  containers:
    - name: c
      ${LOCAL_BUSYBOX}
      command: ["sleep", "3600"]
      volumeMounts: [{name: d, mountPath: /d}]`,
        ),
      );
      const ev = await waitFor('FailedMount', async () => (await pod('host-bad')).events.find((e) => e.reason === 'FailedMount'));
      expect(ev.message).toBe(`MountVolume.SetUp failed for volume "d" : hostPath type check failed: ${file} is not a directory`);
      await cli(['delete', 'host-ok', '--force']);
      await cli(['delete', 'host-bad', '--force']);
    } finally {
      server.close();
    }
  });
});
