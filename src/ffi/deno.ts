// Deno backend: Deno.dlopen. Loaded only on Deno (see index.ts). Needs
// --allow-ffi (or -A); FFI is stable in Deno 2, no --unstable flag.
//
// Notes:
//  - Deno.dlopen has no errno support: after a call returned -1 we call
//    libc's __errno_location() and read the int through UnsafePointerView.
//  - `buffer` parameters take any TypedArray (or null → NULL) and pass a
//    pointer to its bytes, so in/out structs and int out-params just work;
//    strings arrive here already NUL-terminated (wrap.ts cstr()).
//  - i64/u64/isize/usize *results* are always BigInt; u64 *arguments* accept
//    plain numbers.
//  - A symbol may be bound twice under different keys with `name:`, which we
//    use for prctl's `int *` variant.

import type { RawLibc } from './wrap.js';

type Ptr = Deno.PointerValue;

interface Symbols {
  __errno_location(): Ptr;
  unshare(flags: number): number;
  setns(fd: number, nstype: number): number;
  flock(fd: number, operation: number): number;
  sethostname(name: Uint8Array, len: number): number;
  mount(source: Uint8Array | null, target: Uint8Array, fstype: Uint8Array | null, flags: number, data: Uint8Array | null): number;
  umount2(target: Uint8Array, flags: number): number;
  lsetxattr(path: Uint8Array, name: Uint8Array, value: Uint8Array, size: number, flags: number): number;
  mknod(path: Uint8Array, mode: number, dev: number): number;
  open(path: Uint8Array, flags: number, mode: number): number;
  close(fd: number): number;
  write(fd: number, data: Uint8Array, len: number | bigint): number | bigint;
  syscall(nr: number, a1: number, a2: number, a3: number, a4: number): bigint;
  kill(pid: number, sig: number): number;
  waitpid(pid: number, status: Int32Array, options: number): number;
  waitid(idtype: number, id: number, info: Uint8Array, options: number): number;
  prctl(option: number, arg2: number, arg3: number, arg4: number, arg5: number): number;
  prctlOut(option: number, out: Int32Array, arg3: number, arg4: number, arg5: number): number;
  socket(domain: number, type: number, protocol: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  gettid(): number;
  getpid(): number;
  posix_spawn(pid: Int32Array, path: Uint8Array, actions: Uint8Array, attr: Uint8Array, argv: BigUint64Array, envp: BigUint64Array): number;
  posix_spawn_file_actions_init(a: Uint8Array): number;
  posix_spawn_file_actions_addopen(a: Uint8Array, fd: number, path: Uint8Array, flags: number, mode: number): number;
  posix_spawn_file_actions_destroy(a: Uint8Array): number;
  posix_spawnattr_init(a: Uint8Array): number;
  posix_spawnattr_setflags(a: Uint8Array, flags: number): number;
  posix_spawnattr_setsigmask(a: Uint8Array, set: Uint8Array): number;
  posix_spawnattr_setsigdefault(a: Uint8Array, set: Uint8Array): number;
  posix_spawnattr_destroy(a: Uint8Array): number;
}

/** A NULL-terminated `char *[]`; the strings stay referenced by the caller for the call. */
function pointers(strs: (Uint8Array | null)[]): BigUint64Array {
  return BigUint64Array.from(strs, (s) => (s === null ? 0n : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s)))));
}

export function createRawLibc(): RawLibc {
  const lib = Deno.dlopen('libc.so.6', {
    __errno_location: { parameters: [], result: 'pointer' },
    unshare: { parameters: ['i32'], result: 'i32' },
    setns: { parameters: ['i32', 'i32'], result: 'i32' },
    flock: { parameters: ['i32', 'i32'], result: 'i32' },
    sethostname: { parameters: ['buffer', 'usize'], result: 'i32' },
    mount: { parameters: ['buffer', 'buffer', 'buffer', 'u64', 'buffer'], result: 'i32' },
    umount2: { parameters: ['buffer', 'i32'], result: 'i32' },
    lsetxattr: { parameters: ['buffer', 'buffer', 'buffer', 'usize', 'i32'], result: 'i32' },
    mknod: { parameters: ['buffer', 'u32', 'u64'], result: 'i32' },
    open: { parameters: ['buffer', 'i32', 'u32'], result: 'i32' },
    close: { parameters: ['i32'], result: 'i32' },
    write: { parameters: ['i32', 'buffer', 'usize'], result: 'isize' },
    syscall: { parameters: ['i64', 'i64', 'i64', 'i64', 'i64'], result: 'i64' },
    kill: { parameters: ['i32', 'i32'], result: 'i32' },
    waitpid: { parameters: ['i32', 'buffer', 'i32'], result: 'i32' },
    waitid: { parameters: ['i32', 'i32', 'buffer', 'i32'], result: 'i32' },
    prctl: { parameters: ['i32', 'u64', 'u64', 'u64', 'u64'], result: 'i32' },
    prctlOut: { name: 'prctl', parameters: ['i32', 'buffer', 'u64', 'u64', 'u64'], result: 'i32' },
    socket: { parameters: ['i32', 'i32', 'i32'], result: 'i32' },
    ioctl: { parameters: ['i32', 'u64', 'buffer'], result: 'i32' },
    gettid: { parameters: [], result: 'i32' },
    getpid: { parameters: [], result: 'i32' },
    posix_spawn: { parameters: ['buffer', 'buffer', 'buffer', 'buffer', 'buffer', 'buffer'], result: 'i32' },
    posix_spawn_file_actions_init: { parameters: ['buffer'], result: 'i32' },
    posix_spawn_file_actions_addopen: { parameters: ['buffer', 'i32', 'buffer', 'i32', 'u32'], result: 'i32' },
    posix_spawn_file_actions_destroy: { parameters: ['buffer'], result: 'i32' },
    posix_spawnattr_init: { parameters: ['buffer'], result: 'i32' },
    posix_spawnattr_setflags: { parameters: ['buffer', 'i16'], result: 'i32' },
    posix_spawnattr_setsigmask: { parameters: ['buffer', 'buffer'], result: 'i32' },
    posix_spawnattr_setsigdefault: { parameters: ['buffer', 'buffer'], result: 'i32' },
    posix_spawnattr_destroy: { parameters: ['buffer'], result: 'i32' },
  });
  const c = lib.symbols as unknown as Symbols;

  return {
    backend: 'deno',
    errno: () => {
      const p = c.__errno_location();
      return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32(0);
    },
    unshare: (flags) => c.unshare(flags),
    setns: (fd, nstype) => c.setns(fd, nstype),
    flock: (fd, operation) => c.flock(fd, operation),
    sethostname: (name, len) => c.sethostname(name, len),
    mount: (source, target, fstype, flags, data) => c.mount(source, target, fstype, flags, data),
    umount2: (target, flags) => c.umount2(target, flags),
    lsetxattr: (path, name, value, size, flags) => c.lsetxattr(path, name, value, size, flags),
    mknod: (path, mode, dev) => c.mknod(path, mode, dev),
    open: (path, flags, mode) => c.open(path, flags, mode),
    close: (fd) => c.close(fd),
    write: (fd, data, len) => Number(c.write(fd, data, len)),
    syscall: (nr, a1, a2, a3, a4) => Number(c.syscall(nr, a1, a2, a3, a4)),
    kill: (pid, sig) => c.kill(pid, sig),
    waitpid: (pid, status, options) => c.waitpid(pid, status, options),
    waitid: (idtype, id, info, options) => c.waitid(idtype, id, info, options),
    prctl: (option, arg2) => c.prctl(option, arg2, 0, 0, 0),
    prctlOut: (option, out) => c.prctlOut(option, out, 0, 0, 0),
    socket: (domain, type, protocol) => c.socket(domain, type, protocol),
    ioctl: (fd, request, arg) => c.ioctl(fd, request, arg),
    gettid: () => c.gettid(),
    getpid: () => c.getpid(),
    posixSpawn: (pid, path, actions, attr, argv, envp) => c.posix_spawn(pid, path, actions, attr, pointers(argv), pointers(envp)),
    posixSpawnFileActionsInit: (a) => c.posix_spawn_file_actions_init(a),
    posixSpawnFileActionsAddopen: (a, fd, path, flags, mode) => c.posix_spawn_file_actions_addopen(a, fd, path, flags, mode),
    posixSpawnFileActionsDestroy: (a) => c.posix_spawn_file_actions_destroy(a),
    posixSpawnattrInit: (a) => c.posix_spawnattr_init(a),
    posixSpawnattrSetflags: (a, flags) => c.posix_spawnattr_setflags(a, flags),
    posixSpawnattrSetsigmask: (a, set) => c.posix_spawnattr_setsigmask(a, set),
    posixSpawnattrSetsigdefault: (a, set) => c.posix_spawnattr_setsigdefault(a, set),
    posixSpawnattrDestroy: (a) => c.posix_spawnattr_destroy(a),
  };
}
