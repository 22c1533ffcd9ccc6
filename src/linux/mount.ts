import { closeSync, openSync, readFileSync } from 'node:fs';
import { libc } from '../ffi/index.js';
import { MNT_DETACH, MS_BIND } from '../ffi/constants.js';
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

/** Mount points at or below `prefix` in this process's mount table. */
export function mountsUnder(prefix: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    const path = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')) out.push(path);
  }
  return out;
}
