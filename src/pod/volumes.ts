// Pod volumes on the host: emptyDir (a directory of the pod, or a tmpfs for
// medium: Memory), hostPath (with the type checks of the kubelet), downwardAPI
// (a tmpfs of files written as the kubelet's atomic writer lays them out),
// and the subPaths of volume mounts (resolved, opened safely and staged as
// the kubelet does).

import {
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  promises as fsp,
  readdirSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { failedPrecondition } from '../errors.js';
import { MS_BIND, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH } from '../ffi/constants.js';
import { libc } from '../ffi/index.js';
import { isMountPoint, mountMemoryVolume, mountsUnder, unmount } from '../linux/mount.js';
import type { MountSpec } from '../container/types.js';
import { type Allocatable, nodeAllocatable } from './allocatable.js';
import { downwardAPIContent } from './env.js';
import type { PodContainer, PodSpec, VolumeSpec } from './types.js';

export interface VolumeDirs {
  /** Disk-backed emptyDirs: <root>/pods/<uid>/volumes. */
  disk: string;
  /** tmpfs emptyDirs: <state>/pods/<uid>/volumes (unmounted with the pod's runtime dir). */
  memory: string;
}

export function volumePath(v: VolumeSpec, dirs: VolumeDirs): string {
  if (v.hostPath) return v.hostPath.path;
  return join(v.downwardAPI || v.emptyDir!.medium === 'Memory' ? dirs.memory : dirs.disk, v.name);
}

/** The kubelet's hostPath type checks: stat follows symlinks, and a path that cannot be stat'd does not exist. */
function checkHostPath(v: VolumeSpec): void {
  const { path, type } = v.hostPath!;
  const st = (): Stats | undefined => {
    try {
      return statSync(path);
    } catch {
      return undefined;
    }
  };
  const fail = (what: string) => {
    throw new Error(`hostPath type check failed: ${path} is not ${what}`);
  };
  switch (type) {
    case 'DirectoryOrCreate':
      if (!st()) mkdirSync(path, { recursive: true, mode: 0o755 });
      if (!st()?.isDirectory()) fail('a directory');
      return;
    case 'Directory':
      if (!st()?.isDirectory()) fail('a directory');
      return;
    case 'FileOrCreate':
      if (!st()) closeSync(openSync(path, 'a', 0o644));
      if (st()?.isDirectory() !== false) fail('a file');
      return;
    case 'File':
      // Anything but a directory (/dev/null too), as the kubelet's IsFile.
      if (st()?.isDirectory() !== false) fail('a file');
      return;
    case 'Socket':
      if (!st()?.isSocket()) fail('a socket file');
      return;
    case 'CharDevice':
      if (!st()?.isCharacterDevice()) fail('a character device');
      return;
    case 'BlockDevice':
      if (!st()?.isBlockDevice()) fail('a block device');
      return;
  }
}

/**
 * The pod's memory limit as the kubelet's ResourceConfigForPod takes it
 * (PodLimits): the app containers' and sidecars' summed, at least each init
 * container's (with the sidecars before it); 0 unless every container has one.
 */
function podMemoryLimit(pod: PodSpec): number {
  const limit = (c: PodContainer) => c.resources.limits.memory ?? 0;
  let declared = pod.containers.every((c) => limit(c) > 0);
  let sum = pod.containers.reduce((n, c) => n + limit(c), 0);
  let sidecars = 0;
  let init = 0;
  for (const c of pod.initContainers) {
    let own = limit(c) + sidecars;
    if (c.restartPolicy === 'Always') {
      sum += limit(c);
      sidecars += limit(c);
      own = sidecars;
    }
    if (own === 0) declared = false;
    init = Math.max(init, own);
  }
  return declared ? Math.max(sum, init) : 0;
}

/**
 * The most a Memory emptyDir of the pod holds, as the kubelet's
 * calculateEmptyDirMemorySize: the node's allocatable memory, or the pod's
 * limit if below it (a smaller sizeLimit is applied per volume).
 */
export function memoryVolumeCeiling(pod: PodSpec, nodeMemory: number): number {
  const podLimit = podMemoryLimit(pod);
  return podLimit > 0 && podLimit <= nodeMemory ? podLimit : nodeMemory;
}

/**
 * Makes every volume ready; idempotent (a tmpfs already mounted stays). A
 * failure names the volume as the kubelet's FailedMount event does.
 */
export function prepareVolumes(pod: PodSpec, dirs: VolumeDirs, allocatable = nodeAllocatable()): void {
  const memoryCeiling = memoryVolumeCeiling(pod, allocatable.memory);
  for (const v of pod.volumes) {
    try {
      prepareVolume(pod, v, dirs, memoryCeiling, allocatable);
    } catch (err) {
      throw new Error(`MountVolume.SetUp failed for volume "${v.name}" : ${(err as Error).message}`);
    }
  }
}

function prepareVolume(pod: PodSpec, v: VolumeSpec, dirs: VolumeDirs, memoryCeiling: number, allocatable: Allocatable): void {
  if (v.hostPath) {
    checkHostPath(v);
    return;
  }
  const dir = volumePath(v, dirs);
  mkdirSync(dir, { recursive: true });
  if (v.downwardAPI) {
    // The kubelet wraps it in a Memory emptyDir.
    if (mountsUnder(dir).length === 0) mountMemoryVolume(dir, memoryCeiling);
    const files = v.downwardAPI.items.map((item) => ({ path: item.path, content: downwardAPIContent(pod, item, allocatable), mode: item.mode ?? v.downwardAPI!.defaultMode }));
    writePayload(dir, files);
    return;
  }
  chmodSync(dir, 0o777); // as the kubelet: any user of the pod writes to it, whatever the daemon's umask
  if (v.emptyDir!.medium === 'Memory' && mountsUnder(dir).length === 0) {
    const sizeLimit = v.emptyDir!.sizeLimit?.bytes ?? 0;
    const size = sizeLimit > 0 && sizeLimit <= memoryCeiling ? sizeLimit : memoryCeiling;
    mountMemoryVolume(dir, size); // the root is tmpfs's 1777, as the kubelet leaves it
  }
}

/**
 * Files as the kubelet's AtomicWriter lays them out: written into a new
 * `..<time>` directory, which the `..data` symlink is then renamed onto, each
 * top-level name a symlink through `..data`; the previous payload removed.
 * A container that reads `..data/…` never sees half an update.
 */
function writePayload(dir: string, files: Array<{ path: string; content: string; mode: number }>): void {
  const stamp = new Date().toISOString().replace(/[-:T]/g, '_').replace(/\.(\d+)Z$/, '.$1');
  const ts = `..${stamp}${String(process.hrtime.bigint() % 1_000_000n).padStart(6, '0')}`;
  for (const f of files) {
    const target = join(dir, ts, f.path);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    writeFileSync(target, f.content, { mode: f.mode });
    chmodSync(target, f.mode);
  }
  mkdirSync(join(dir, ts), { recursive: true, mode: 0o755 });
  const previous = readdirSync(dir).filter((n) => n.startsWith('..') && n !== '..data' && n !== ts);
  rmSync(join(dir, '..data_tmp'), { force: true }); // left by a write cut short
  symlinkSync(ts, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const top of new Set(files.map((f) => f.path.split('/')[0]!))) {
    if (!existsSync(join(dir, top))) symlinkSync(join('..data', top), join(dir, top));
  }
  for (const old of previous) rmSync(join(dir, old), { recursive: true, force: true });
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

/**
 * Where subPath mounts are staged: <state>/pods/<uid>/volume-subpaths, beside
 * the tmpfs emptyDirs (the kubelet's pods/<uid>/volume-subpaths).
 */
function subPathRoot(dirs: VolumeDirs): string {
  return join(dirname(dirs.memory), 'volume-subpaths');
}

export function teardownVolumes(dirs: VolumeDirs): void {
  for (const root of [subPathRoot(dirs), dirs.memory]) for (const mp of mountsUnder(root).reverse()) unmount(mp);
}

/**
 * A terminated pod's volumes go as the kubelet tears them down: subPath
 * staging and tmpfs unmounted, every emptyDir removed with its content (a
 * hostPath is the node's and stays).
 */
export async function removeVolumes(dirs: VolumeDirs): Promise<void> {
  teardownVolumes(dirs);
  for (const dir of [subPathRoot(dirs), dirs.memory, dirs.disk]) await fsp.rm(dir, { recursive: true, force: true });
}

/** The path of an open fd, or of `name` in the directory an fd holds (openat/mkdirat by path). */
function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/**
 * Where `names` lead from `base`, symlinks resolved (an absolute target from
 * the host's /) as the kubelet's EvalSymlinks: the existing path reached, the
 * names missing after it, and the first symlink followed (as a subPath).
 */
function resolveSubPath(base: string, names: string[]): { path: string; missing: string[]; link: string } {
  let path = base;
  let link = '';
  for (const [i, name] of names.entries()) {
    const next = join(path, name);
    const st = lstatSync(next, { throwIfNoEntry: false });
    if (!st) return { path, missing: names.slice(i), link };
    if (st.isSymbolicLink()) {
      link ||= names.slice(0, i + 1).join('/');
      path = realpathSync(next);
    } else path = next;
  }
  return { path, missing: [], link };
}

/**
 * Opens `subPath` of the volume at `root` (O_PATH) as the kubelet's
 * doBindSubPath: symlinks are resolved and the subPath refused unless they
 * lead to a path in the volume, so a container that swaps a directory of a
 * shared volume for a symlink (to / , CVE-2017-1002101) gets a refusal rather
 * than the host. The path found is then opened one component at a time from
 * the volume's fd, never following a symlink (doSafeOpen: a swap after the
 * resolution is refused too), and missing directories are made below it with
 * the mode of the root (doSafeMakeDir).
 */
function openSubPath(root: string, subPath: string, volume: string): number {
  const refuse = (why: string) => failedPrecondition(`subPath "${subPath}" of volume "${volume}": ${why}`);
  const names = subPath.split('/').filter((n) => n !== '' && n !== '.');
  if (names.includes('..')) throw refuse('".." leaves the volume');
  let base: string;
  let found: ReturnType<typeof resolveSubPath>;
  try {
    base = realpathSync(root);
    found = resolveSubPath(base, names);
  } catch (err) {
    throw refuse((err as Error).message);
  }
  if (found.path !== base && !found.path.startsWith(base === '/' ? '/' : `${base}/`)) {
    throw refuse(`${JSON.stringify(found.link)} is a symbolic link leading out of the volume, to ${JSON.stringify(found.path)}`);
  }
  const inside = relative(base, found.path).split('/').filter((n) => n !== '');
  let fd = libc().open(base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  try {
    const mode = statSync(fdPath(fd)).mode & 0o7777;
    const all = [...inside, ...found.missing];
    for (const [i, name] of all.entries()) {
      const at = JSON.stringify(all.slice(0, i + 1).join('/'));
      const open = () => libc().open(fdPath(fd, name), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      const create = i >= inside.length;
      let child: number;
      try {
        if (create) mkdirSync(fdPath(fd, name)); // a directory of the fd's: mkdirat, no symlink followed
        child = open();
      } catch (err) {
        throw refuse(`${at}: ${(err as Error).message}`);
      }
      libc().close(fd);
      fd = child;
      // stat of the magic link is of what the fd holds: a symlink itself, with O_NOFOLLOW.
      const st = statSync(fdPath(fd));
      if (st.isSymbolicLink()) throw refuse(`${at} is a symbolic link`);
      if (i < all.length - 1 && !st.isDirectory()) throw refuse(`${at} is not a directory`);
      if (create) chmodSync(fdPath(fd), mode); // mkdir's mode is masked by the umask
    }
    return fd;
  } catch (err) {
    libc().close(fd);
    throw err;
  }
}

/**
 * Binds the opened subPath onto `target` (its kind: directory or file), first
 * unmounting and removing what a previous start of the container staged
 * there: the subPath is resolved again at every start.
 */
function stageSubPath(fd: number, target: string): void {
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  let old = lstatSync(target, { throwIfNoEntry: false });
  while (old && isMountPoint(target)) {
    unmount(target);
    old = lstatSync(target);
  }
  if (old) (old.isDirectory() ? rmdirSync : unlinkSync)(target);
  if (statSync(fdPath(fd)).isDirectory()) mkdirSync(target, { mode: 0o700 });
  else closeSync(openSync(target, 'w', 0o600));
  libc().mount(fdPath(fd), target, null, MS_BIND, null);
}

/**
 * A container's volumeMounts as CRI mounts. A subPath is given to the
 * container as its staging mount, <subPathRoot>/<volume>/<container>/<index>,
 * never as a path in the volume (which the pod's containers can change).
 */
export function containerMounts(pod: PodSpec, c: PodContainer, dirs: VolumeDirs): MountSpec[] {
  const staged: string[] = [];
  try {
    return c.volumeMounts.map((m, index) => {
      const v = pod.volumes.find((x) => x.name === m.name)!;
      let hostPath = volumePath(v, dirs);
      if (m.subPath) {
        const fd = openSubPath(hostPath, m.subPath, v.name);
        hostPath = join(subPathRoot(dirs), v.name, c.name, String(index));
        try {
          stageSubPath(fd, hostPath);
        } finally {
          libc().close(fd);
        }
        staged.push(hostPath);
      }
      // A downwardAPI volume is read-only whatever the mount says, as the kubelet's plugin.
      return { containerPath: m.mountPath, hostPath, readonly: m.readOnly || !!v.downwardAPI, propagation: 'PRIVATE' as const };
    });
  } catch (err) {
    for (const target of staged.reverse()) unmount(target);
    throw err;
  }
}
