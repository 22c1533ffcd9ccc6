// Node backend: koffi. Loaded only on Node (see index.ts).
//
// Notes:
//  - koffi saves errno right after every call; koffi.errno() returns that
//    saved value, so nothing in between can clobber it.
//  - `const char *` parameters accept our NUL-terminated Uint8Arrays (and
//    null → NULL); `void *` parameters accept TypedArrays, passed in/out.
//  - Variadic C functions (open, ioctl, prctl, syscall) are declared with a
//    fixed prototype, which is ABI-identical for integer/pointer arguments on
//    x86_64 and arm64 Linux.

import koffi from 'koffi';
import type { RawLibc } from './wrap.js';

export function createRawLibc(): RawLibc {
  const lib = koffi.load('libc.so.6');

  const unshare = lib.func('unshare', 'int', ['int']);
  const setns = lib.func('setns', 'int', ['int', 'int']);
  const flock = lib.func('flock', 'int', ['int', 'int']);
  const sethostname = lib.func('sethostname', 'int', ['const char *', 'size_t']);
  const mount = lib.func('mount', 'int', ['const char *', 'const char *', 'const char *', 'unsigned long', 'const char *']);
  const umount2 = lib.func('umount2', 'int', ['const char *', 'int']);
  const lsetxattr = lib.func('lsetxattr', 'int', ['const char *', 'const char *', 'void *', 'size_t', 'int']);
  const mknod = lib.func('mknod', 'int', ['const char *', 'unsigned int', 'unsigned long']);
  const open = lib.func('open', 'int', ['const char *', 'int', 'unsigned int']);
  const close = lib.func('close', 'int', ['int']);
  const write = lib.func('write', 'long', ['int', 'void *', 'size_t']);
  const syscall = lib.func('syscall', 'long', ['long', 'long', 'long', 'long', 'long']);
  const kill = lib.func('kill', 'int', ['int', 'int']);
  const waitpid = lib.func('waitpid', 'int', ['int', 'void *', 'int']);
  const waitid = lib.func('waitid', 'int', ['int', 'int', 'void *', 'int']);
  const prctl = lib.func('prctl', 'int', ['int', 'unsigned long', 'unsigned long', 'unsigned long', 'unsigned long']);
  const prctlPtr = lib.func('prctl', 'int', ['int', 'void *', 'unsigned long', 'unsigned long', 'unsigned long']);
  const socket = lib.func('socket', 'int', ['int', 'int', 'int']);
  const ioctl = lib.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
  const gettid = lib.func('gettid', 'int', []);
  const getpid = lib.func('getpid', 'int', []);
  const posixSpawn = lib.func('posix_spawn', 'int', ['int *', 'const char *', 'void *', 'void *', 'const char **', 'const char **']);
  const faInit = lib.func('posix_spawn_file_actions_init', 'int', ['void *']);
  const faAddopen = lib.func('posix_spawn_file_actions_addopen', 'int', ['void *', 'int', 'const char *', 'int', 'unsigned int']);
  const faDestroy = lib.func('posix_spawn_file_actions_destroy', 'int', ['void *']);
  const attrInit = lib.func('posix_spawnattr_init', 'int', ['void *']);
  const attrSetflags = lib.func('posix_spawnattr_setflags', 'int', ['void *', 'short']);
  const attrSetsigmask = lib.func('posix_spawnattr_setsigmask', 'int', ['void *', 'void *']);
  const attrSetsigdefault = lib.func('posix_spawnattr_setsigdefault', 'int', ['void *', 'void *']);
  const attrDestroy = lib.func('posix_spawnattr_destroy', 'int', ['void *']);

  return {
    backend: 'koffi',
    errno: () => koffi.errno(),
    unshare: (flags) => unshare(flags) as number,
    setns: (fd, nstype) => setns(fd, nstype) as number,
    flock: (fd, operation) => flock(fd, operation) as number,
    sethostname: (name, len) => sethostname(name, len) as number,
    mount: (source, target, fstype, flags, data) => mount(source, target, fstype, flags, data) as number,
    umount2: (target, flags) => umount2(target, flags) as number,
    lsetxattr: (path, name, value, size, flags) => lsetxattr(path, name, value, size, flags) as number,
    mknod: (path, mode, dev) => mknod(path, mode, dev) as number,
    open: (path, flags, mode) => open(path, flags, mode) as number,
    close: (fd) => close(fd) as number,
    write: (fd, data, len) => Number(write(fd, data, len)),
    syscall: (nr, a1, a2, a3, a4) => Number(syscall(nr, a1, a2, a3, a4)),
    kill: (pid, sig) => kill(pid, sig) as number,
    waitpid: (pid, status, options) => waitpid(pid, status, options) as number,
    waitid: (idtype, id, info, options) => waitid(idtype, id, info, options) as number,
    prctl: (option, arg2) => prctl(option, arg2, 0, 0, 0) as number,
    prctlOut: (option, out) => prctlPtr(option, out, 0, 0, 0) as number,
    socket: (domain, type, protocol) => socket(domain, type, protocol) as number,
    ioctl: (fd, request, arg) => ioctl(fd, request, arg) as number,
    gettid: () => gettid() as number,
    getpid: () => getpid() as number,
    // `const char **` takes a JS array (koffi builds the C array for the call).
    posixSpawn: (pid, path, actions, attr, argv, envp) => posixSpawn(pid, path, actions, attr, argv, envp) as number,
    posixSpawnFileActionsInit: (a) => faInit(a) as number,
    posixSpawnFileActionsAddopen: (a, fd, path, flags, mode) => faAddopen(a, fd, path, flags, mode) as number,
    posixSpawnFileActionsDestroy: (a) => faDestroy(a) as number,
    posixSpawnattrInit: (a) => attrInit(a) as number,
    posixSpawnattrSetflags: (a, flags) => attrSetflags(a, flags) as number,
    posixSpawnattrSetsigmask: (a, set) => attrSetsigmask(a, set) as number,
    posixSpawnattrSetsigdefault: (a, set) => attrSetsigdefault(a, set) as number,
    posixSpawnattrDestroy: (a) => attrDestroy(a) as number,
  };
}
