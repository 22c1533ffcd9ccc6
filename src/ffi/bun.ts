// Bun backend: bun:ffi. Loaded only on Bun (see index.ts).
//
// Notes:
//  - bun:ffi has no errno support: after a call returned -1 we call libc's
//    __errno_location() (thread-local, so the main thread's errno) and read
//    the int at the returned address. Nothing runs in between.
//  - `ptr` parameters take TypedArrays directly (and null → NULL); strings
//    arrive here already NUL-terminated (wrap.ts cstr()).
//  - i64/u64 *results* come back as BigInt; `i64_fast` returns a number when
//    it fits. u64 *arguments* accept plain numbers.
//  - A symbol can only be declared once per dlopen(), so prctl's `int *`
//    variant passes the address from ptr() through the unsigned long arg2.

import { dlopen, FFIType, ptr, read } from 'bun:ffi';
import type { RawLibc } from './wrap.js';

export function createRawLibc(): RawLibc {
  const { i16, i32, u32, i64, i64_fast, u64, ptr: pointer } = FFIType;
  const { symbols: c } = dlopen('libc.so.6', {
    __errno_location: { args: [], returns: pointer },
    unshare: { args: [i32], returns: i32 },
    setns: { args: [i32, i32], returns: i32 },
    flock: { args: [i32, i32], returns: i32 },
    sethostname: { args: [pointer, u64], returns: i32 },
    mount: { args: [pointer, pointer, pointer, u64, pointer], returns: i32 },
    umount2: { args: [pointer, i32], returns: i32 },
    lsetxattr: { args: [pointer, pointer, pointer, u64, i32], returns: i32 },
    mknod: { args: [pointer, u32, u64], returns: i32 },
    open: { args: [pointer, i32, u32], returns: i32 },
    close: { args: [i32], returns: i32 },
    write: { args: [i32, pointer, u64], returns: i64_fast },
    syscall: { args: [i64, i64, i64, i64, i64], returns: i64_fast },
    kill: { args: [i32, i32], returns: i32 },
    waitpid: { args: [i32, pointer, i32], returns: i32 },
    waitid: { args: [i32, i32, pointer, i32], returns: i32 },
    prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
    socket: { args: [i32, i32, i32], returns: i32 },
    ioctl: { args: [i32, u64, pointer], returns: i32 },
    gettid: { args: [], returns: i32 },
    getpid: { args: [], returns: i32 },
    posix_spawn: { args: [pointer, pointer, pointer, pointer, pointer, pointer], returns: i32 },
    posix_spawn_file_actions_init: { args: [pointer], returns: i32 },
    posix_spawn_file_actions_addopen: { args: [pointer, i32, pointer, i32, u32], returns: i32 },
    posix_spawn_file_actions_destroy: { args: [pointer], returns: i32 },
    posix_spawnattr_init: { args: [pointer], returns: i32 },
    posix_spawnattr_setflags: { args: [pointer, i16], returns: i32 },
    posix_spawnattr_setsigmask: { args: [pointer, pointer], returns: i32 },
    posix_spawnattr_setsigdefault: { args: [pointer, pointer], returns: i32 },
    posix_spawnattr_destroy: { args: [pointer], returns: i32 },
  });
  // A NULL-terminated `char *[]`; the strings stay referenced by the caller for the call.
  const pointers = (strs: (Uint8Array | null)[]) => BigUint64Array.from(strs, (s) => (s === null ? 0n : BigInt(ptr(s))));

  return {
    backend: 'bun',
    errno: () => {
      const p = c.__errno_location() as number | null;
      return p === null ? 0 : read.i32(p, 0);
    },
    unshare: (flags) => c.unshare(flags) as number,
    setns: (fd, nstype) => c.setns(fd, nstype) as number,
    flock: (fd, operation) => c.flock(fd, operation) as number,
    sethostname: (name, len) => c.sethostname(name, len) as number,
    mount: (source, target, fstype, flags, data) => c.mount(source, target, fstype, flags, data) as number,
    umount2: (target, flags) => c.umount2(target, flags) as number,
    lsetxattr: (path, name, value, size, flags) => c.lsetxattr(path, name, value, size, flags) as number,
    mknod: (path, mode, dev) => c.mknod(path, mode, dev) as number,
    open: (path, flags, mode) => c.open(path, flags, mode) as number,
    close: (fd) => c.close(fd) as number,
    write: (fd, data, len) => Number(c.write(fd, data, len)),
    syscall: (nr, a1, a2, a3, a4) => Number(c.syscall(nr, a1, a2, a3, a4)),
    kill: (pid, sig) => c.kill(pid, sig) as number,
    waitpid: (pid, status, options) => c.waitpid(pid, status, options) as number,
    waitid: (idtype, id, info, options) => c.waitid(idtype, id, info, options) as number,
    prctl: (option, arg2) => c.prctl(option, arg2, 0, 0, 0) as number,
    prctlOut: (option, out) => c.prctl(option, ptr(out), 0, 0, 0) as number,
    socket: (domain, type, protocol) => c.socket(domain, type, protocol) as number,
    ioctl: (fd, request, arg) => c.ioctl(fd, request, arg) as number,
    gettid: () => c.gettid() as number,
    getpid: () => c.getpid() as number,
    posixSpawn: (pid, path, actions, attr, argv, envp) => c.posix_spawn(pid, path, actions, attr, pointers(argv), pointers(envp)) as number,
    posixSpawnFileActionsInit: (a) => c.posix_spawn_file_actions_init(a) as number,
    posixSpawnFileActionsAddopen: (a, fd, path, flags, mode) => c.posix_spawn_file_actions_addopen(a, fd, path, flags, mode) as number,
    posixSpawnFileActionsDestroy: (a) => c.posix_spawn_file_actions_destroy(a) as number,
    posixSpawnattrInit: (a) => c.posix_spawnattr_init(a) as number,
    posixSpawnattrSetflags: (a, flags) => c.posix_spawnattr_setflags(a, flags) as number,
    posixSpawnattrSetsigmask: (a, set) => c.posix_spawnattr_setsigmask(a, set) as number,
    posixSpawnattrSetsigdefault: (a, set) => c.posix_spawnattr_setsigdefault(a, set) as number,
    posixSpawnattrDestroy: (a) => c.posix_spawnattr_destroy(a) as number,
  };
}
