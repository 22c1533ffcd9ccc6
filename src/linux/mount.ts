import { closeSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { libc } from '../ffi/index.js';
import { MNT_DETACH, MS_BIND, O_CLOEXEC, O_PATH } from '../ffi/constants.js';
import { SyscallError } from '../ffi/types.js';

/** Bind-mounts `source` onto `target`, creating target as an empty file. */
export function bindFile(source: string, target: string): void {
  closeSync(openSync(target, 'a', 0o444));
  libc().mount(source, target, null, MS_BIND, null);
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
