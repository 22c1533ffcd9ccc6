// Pod volumes on the host: emptyDir (a directory of the pod, or a tmpfs for
// medium: Memory) and hostPath (with the type checks of the kubelet).

import { closeSync, lstatSync, mkdirSync, openSync, promises as fsp, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { MS_NODEV, MS_NOSUID } from '../ffi/constants.js';
import { libc } from '../ffi/index.js';
import { mountsUnder, unmount } from '../linux/mount.js';
import type { MountSpec } from '../container/types.js';
import type { PodContainer, PodSpec, VolumeSpec } from './types.js';

export interface VolumeDirs {
  /** Disk-backed emptyDirs: <root>/pods/<uid>/volumes. */
  disk: string;
  /** tmpfs emptyDirs: <state>/pods/<uid>/volumes (unmounted with the pod's runtime dir). */
  memory: string;
}

export function volumePath(v: VolumeSpec, dirs: VolumeDirs): string {
  if (v.hostPath) return v.hostPath.path;
  return join(v.emptyDir!.medium === 'Memory' ? dirs.memory : dirs.disk, v.name);
}

function checkHostPath(v: VolumeSpec): void {
  const { path, type } = v.hostPath!;
  const st = (): ReturnType<typeof statSync> | undefined => statSync(path, { throwIfNoEntry: false });
  const fail = (what: string) => {
    throw new Error(`hostPath type check failed: ${path} is not ${what}`);
  };
  switch (type) {
    case 'DirectoryOrCreate':
      mkdirSync(path, { recursive: true, mode: 0o755 });
      if (!st()?.isDirectory()) fail('a directory');
      return;
    case 'Directory':
      if (!st()?.isDirectory()) fail('a directory');
      return;
    case 'FileOrCreate':
      if (!st()) closeSync(openSync(path, 'a', 0o644));
      if (!st()?.isFile()) fail('a file');
      return;
    case 'File':
      if (!st()?.isFile()) fail('a file');
      return;
    case 'Socket':
      if (!lstatSync(path, { throwIfNoEntry: false })?.isSocket()) fail('a socket file');
      return;
    case 'CharDevice':
      if (!st()?.isCharacterDevice()) fail('a character device');
      return;
    case 'BlockDevice':
      if (!st()?.isBlockDevice()) fail('a block device');
      return;
  }
}

/** Makes every volume ready; idempotent (a tmpfs already mounted stays). */
export function prepareVolumes(pod: PodSpec, dirs: VolumeDirs): void {
  for (const v of pod.volumes) {
    if (v.hostPath) {
      checkHostPath(v);
      continue;
    }
    const dir = volumePath(v, dirs);
    mkdirSync(dir, { recursive: true, mode: 0o777 });
    if (v.emptyDir!.medium === 'Memory' && mountsUnder(dir).length === 0) {
      const size = v.emptyDir!.sizeLimit ? `,size=${v.emptyDir!.sizeLimit.bytes}` : '';
      libc().mount('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV, `mode=0777${size}`);
    }
  }
}

/**
 * The bytes a directory tree takes on disk, counted as `du -sx` does (and the
 * kubelet's volume metrics): st_blocks * 512 of every entry, a file with
 * several links once, nothing on another file system. One lstat at a time,
 * so a large tree is walked slowly rather than with a burst of I/O.
 */
export async function diskUsage(dir: string): Promise<number> {
  const top = await fsp.lstat(dir);
  const linked = new Set<number>();
  let total = top.blocks * 512;
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await fsp.readdir(d);
    } catch {
      return; // removed or unreadable meanwhile: nothing to count
    }
    for (const name of names) {
      const p = join(d, name);
      let st: Stats;
      try {
        st = await fsp.lstat(p);
      } catch {
        continue;
      }
      if (st.dev !== top.dev) continue;
      if (!st.isDirectory() && st.nlink > 1) {
        if (linked.has(st.ino)) continue;
        linked.add(st.ino);
      }
      total += st.blocks * 512;
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return total;
}

export function teardownVolumes(dirs: VolumeDirs): void {
  for (const mp of mountsUnder(dirs.memory).reverse()) unmount(mp);
}

/** A container's volumeMounts as CRI mounts (subPaths created inside emptyDirs as the kubelet does). */
export function containerMounts(pod: PodSpec, c: PodContainer, dirs: VolumeDirs): MountSpec[] {
  return c.volumeMounts.map((m) => {
    const v = pod.volumes.find((x) => x.name === m.name)!;
    let hostPath = volumePath(v, dirs);
    if (m.subPath) {
      hostPath = join(hostPath, m.subPath);
      if (v.emptyDir && !statSync(hostPath, { throwIfNoEntry: false })) mkdirSync(hostPath, { recursive: true, mode: 0o777 });
    }
    return { containerPath: m.mountPath, hostPath, readonly: m.readOnly, propagation: 'PRIVATE' as const };
  });
}
