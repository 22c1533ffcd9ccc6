import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { libc } from '../ffi/index.js';
import { MNT_DETACH, MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REMOUNT, O_CLOEXEC, O_PATH } from '../ffi/constants.js';
import { SyscallError } from '../ffi/types.js';

/** Bind-mounts `source` onto `target`, creating target as an empty file. */
export function bindFile(source: string, target: string): void {
  closeSync(openSync(target, 'a', 0o444));
  libc().mount(source, target, null, MS_BIND, null);
}

/**
 * Binds the directory `source` read-only at `target` (made if missing). A
 * bind of `source` found there (a server killed before it unmounted its own)
 * is kept, made read-only if it is not yet; anything else mounted there goes.
 */
export function bindReadOnly(source: string, target: string): void {
  mkdirSync(target, { recursive: true });
  if (isMountPoint(target) && !sameFile(source, target)) unmount(target);
  if (!isMountPoint(target)) libc().mount(source, target, null, MS_BIND, null);
  else if (isReadOnly(target)) return;
  try {
    libc().mount(null, target, null, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, null);
  } catch (err) {
    unmount(target);
    throw err;
  }
}

function sameFile(a: string, b: string): boolean {
  const [x, y] = [statSync(a), statSync(b)];
  return x.dev === y.dev && x.ino === y.ino;
}

function isReadOnly(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EROFS') return true;
    throw err;
  }
}

/** Whether tmpfs takes `noswap` (Linux 6.4+, and not in a user namespace): learnt at the first mount. */
let tmpfsNoswap: boolean | undefined;

/**
 * A tmpfs for a memory-backed pod volume, as the kubelet mounts it: with
 * `noswap` where the kernel has it, so the pod's data never reaches a swap
 * device. A kernel without it refuses the option (EINVAL): then without.
 */
export function mountMemoryVolume(target: string, size: number): void {
  const mount = (options: string) => libc().mount('tmpfs', target, 'tmpfs', 0, options);
  if (tmpfsNoswap === false) return mount(`size=${size}`);
  try {
    mount(`size=${size},noswap`);
    tmpfsNoswap = true;
  } catch (err) {
    if (tmpfsNoswap || !(err instanceof SyscallError && err.code === 'EINVAL')) throw err;
    mount(`size=${size}`);
    tmpfsNoswap = false; // only once the mount without it worked: the EINVAL was the option's
  }
}

/** Lazily unmounts `target`; a path that is not mounted is fine. */
export function unmount(target: string): void {
  try {
    libc().umount2(target, MNT_DETACH);
  } catch (err) {
    if (err instanceof SyscallError && (err.code === 'EINVAL' || err.code === 'ENOENT')) return;
    throw err;
  }
}

/**
 * Mount points at or below `prefix` in this process's mount table, which
 * shows resolved paths: a prefix through a symlink (/var/run) is resolved first.
 */
export function mountsUnder(prefix: string): string[] {
  try {
    prefix = realpathSync(prefix);
  } catch {
    // Missing: matched as given.
  }
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    const path = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')) out.push(path);
  }
  return out;
}

/**
 * Whether something is mounted at `path` itself (it sits on another mount
 * than its parent), from the mnt_id of an fd on each: no read of the mount
 * table, which grows with every pod.
 */
export function isMountPoint(path: string): boolean {
  return mountIdOf(path) !== mountIdOf(dirname(path));
}

function mountIdOf(path: string): string {
  const fd = libc().open(path, O_PATH | O_CLOEXEC);
  try {
    const id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1];
    if (id === undefined) throw new Error(`no mnt_id in /proc/self/fdinfo/${fd}`);
    return id;
  } finally {
    libc().close(fd);
  }
}
