// Pod volumes on the host, against the real kernel in a temporary root:
// emptyDirs are 0777 whatever the umask; a subPath is opened one component at
// a time without following symlinks (a container can swap a directory of a
// shared volume for a symlink to the host's /) and bound onto a per-pod
// staging path that teardownVolumes unmounts.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadLibc } from '../../src/ffi/index.js';
import { isMountPoint, mountsUnder } from '../../src/linux/mount.js';
import { containerMounts, prepareVolumes, teardownVolumes, volumePath, type VolumeDirs } from '../../src/pod/volumes.js';
import type { PodContainer, PodSpec, VolumeMountSpec, VolumeSpec } from '../../src/pod/types.js';
import { superOptions, unmountAndRemove } from '../support/mounts.js';
import { ROOT } from '../support/runtimes.js';

const isRoot = process.getuid?.() === 0;
let base: string;

beforeAll(async () => {
  await loadLibc();
});

afterEach(() => unmountAndRemove(base));

/** A pod with the volumes (emptyDir `v` unless given) in a fresh temporary root, and a directory outside it. */
function setUp(volumes: VolumeSpec[] = [{ name: 'v', emptyDir: { medium: '', sizeLimit: null } }]) {
  base = mkdtempSync(join(tmpdir(), 'peapod-volumes-'));
  const dirs: VolumeDirs = { disk: join(base, 'root', 'pods', 'uid1', 'volumes'), memory: join(base, 'state', 'pods', 'uid1', 'volumes') };
  const pod = { volumes, containers: [], initContainers: [] } as unknown as PodSpec;
  const outside = join(base, 'outside');
  mkdirSync(outside);
  prepareVolumes(pod, dirs);
  return { pod, dirs, outside, vol: volumePath(volumes[0]!, dirs) };
}

function container(name: string, ...mounts: Array<Partial<VolumeMountSpec>>): PodContainer {
  return { name, volumeMounts: mounts.map((m) => ({ name: 'v', mountPath: '/v', readOnly: false, subPath: '', ...m })) } as PodContainer;
}

describe.skipIf(!isRoot)('pod volumes on the host', () => {
  it('an emptyDir is 0777 under umask 022', () => {
    const old = process.umask(0o022);
    try {
      const { vol } = setUp();
      expect(statSync(vol).mode & 0o7777).toBe(0o777);
    } finally {
      process.umask(old);
    }
  });

  it('a Memory emptyDir and a downwardAPI volume are tmpfs mounted noswap, as the kubelet does where the kernel takes it', () => {
    // Whether this kernel takes the option, asked of mount(8) in a mount namespace of its own.
    const takes = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o noswap,size=1m tmpfs /mnt'], { stdio: 'ignore' }).status === 0;
    const { pod, dirs } = setUp([
      { name: 'm', emptyDir: { medium: 'Memory', sizeLimit: { bytes: 2 ** 20 } } },
      { name: 'd', downwardAPI: { items: [], defaultMode: 0o644 } },
    ] as unknown as VolumeSpec[]);
    for (const v of pod.volumes) {
      const opts = superOptions(volumePath(v, dirs)).split(',');
      expect(opts[0]).toBe('rw');
      expect(opts.includes('noswap'), `${v.name}: ${opts.join(',')}`).toBe(takes);
    }
  });

  it('in a user namespace, whose tmpfs refuses noswap, it mounts without it, every time', () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-volumes-'));
    const [a, b] = [join(base, 'a'), join(base, 'b')];
    mkdirSync(a);
    mkdirSync(b);
    // The mount namespace goes with the probe, and its mounts with it.
    const out = execFileSync('unshare', ['-Urm', process.execPath, join(ROOT, 'node_modules/vite-node/vite-node.mjs'), 'test/support/tmpfs-probe.ts'], {
      cwd: ROOT,
      env: { ...process.env, PROBE_DIRS: `${a}:${b}` },
      encoding: 'utf8',
    });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual(['rw,size=1024k', 'rw,size=1024k']);
  });

  it('an existing subPath is bound onto a staging path outside the volume, and writes through it land in the volume', () => {
    const { pod, dirs, vol } = setUp();
    mkdirSync(join(vol, 's'));
    const [m] = containerMounts(pod, container('b', { subPath: 's', mountPath: '/data' }), dirs);
    expect(m!.containerPath).toBe('/data');
    expect(m!.hostPath.startsWith(vol)).toBe(false);
    expect(isMountPoint(m!.hostPath)).toBe(true);
    writeFileSync(join(m!.hostPath, 'x'), 'through');
    expect(readFileSync(join(vol, 's', 'x'), 'utf8')).toBe('through');
  });

  it('a subPath to a file is bound as a file', () => {
    const { pod, dirs, vol } = setUp();
    writeFileSync(join(vol, 'conf'), 'settings');
    const [m] = containerMounts(pod, container('b', { subPath: 'conf', mountPath: '/etc/conf' }), dirs);
    expect(lstatSync(m!.hostPath).isFile()).toBe(true);
    expect(readFileSync(m!.hostPath, 'utf8')).toBe('settings');
  });

  it('a missing subPath is created inside the volume, each directory 0777 under umask 022', () => {
    const old = process.umask(0o022);
    try {
      const { pod, dirs, vol } = setUp();
      const [m] = containerMounts(pod, container('b', { subPath: 'a/b' }), dirs);
      for (const d of ['a', 'a/b']) expect(statSync(join(vol, d)).mode & 0o7777).toBe(0o777);
      writeFileSync(join(m!.hostPath, 'y'), 'made');
      expect(readFileSync(join(vol, 'a', 'b', 'y'), 'utf8')).toBe('made');
    } finally {
      process.umask(old);
    }
  });

  it('a subPath that is a symlink to / is refused and nothing is mounted', () => {
    const { pod, dirs, vol } = setUp();
    // What container A does: rmdir /v/s; ln -s / /v/s.
    mkdirSync(join(vol, 's'));
    rmdirSync(join(vol, 's'));
    symlinkSync('/', join(vol, 's'));
    const before = mountsUnder(base);
    expect(() => containerMounts(pod, container('b', { subPath: 's' }), dirs)).toThrow(/subPath "s" of volume "v".*symbolic link/);
    expect(mountsUnder(base)).toEqual(before);
  });

  it('a subPath through an intermediate symlink is refused and nothing is created outside the volume', () => {
    const { pod, dirs, vol, outside } = setUp();
    symlinkSync(outside, join(vol, 'link'));
    const before = mountsUnder(base);
    expect(() => containerMounts(pod, container('b', { subPath: 'link/sub' }), dirs)).toThrow(/subPath "link\/sub" of volume "v".*"link" is a symbolic link/);
    expect(existsSync(join(outside, 'sub'))).toBe(false);
    expect(mountsUnder(base)).toEqual(before);
  });

  it('a refused subPath rolls back the staging mounts made for the mounts before it', () => {
    const { pod, dirs, vol } = setUp();
    symlinkSync('/', join(vol, 'bad'));
    const before = mountsUnder(base);
    expect(() => containerMounts(pod, container('b', { subPath: 'good', mountPath: '/g' }, { subPath: 'bad', mountPath: '/b' }), dirs)).toThrow(/symbolic link/);
    expect(mountsUnder(base)).toEqual(before);
  });

  it('a restart re-resolves the subPath and replaces its staging mount; teardownVolumes leaves no staging mount', () => {
    const { pod, dirs, vol } = setUp([
      { name: 'v', emptyDir: { medium: '', sizeLimit: null } },
      { name: 'm', emptyDir: { medium: 'Memory', sizeLimit: null } },
    ]);
    const c = container('b', { subPath: 's' }, { name: 'm', subPath: 't', mountPath: '/m' });
    const [first] = containerMounts(pod, c, dirs);
    writeFileSync(join(vol, 's', 'old'), '');
    rmSync(join(vol, 's'), { recursive: true });
    mkdirSync(join(vol, 's'));
    const mounts = containerMounts(pod, c, dirs);
    expect(mounts[0]!.hostPath).toBe(first!.hostPath);
    expect(existsSync(join(mounts[0]!.hostPath, 'old'))).toBe(false);
    const staged = mounts.map((m) => m.hostPath);
    expect(mountsUnder(base).filter((mp) => staged.includes(mp))).toEqual(staged);
    teardownVolumes(dirs);
    expect(mountsUnder(base)).toEqual([]);
  });
});
