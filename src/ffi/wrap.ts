// Shared layer between the three FFI backends and the public Libc interface.
// A backend only has to expose the raw C functions (RawLibc: numbers in,
// numbers out, strings already encoded) plus a way to read errno; the -1
// checks, errno → SyscallError mapping, string encoding and message
// formatting live here once, so the backends behave identically.

import {
  CLONE_FLAGS,
  formatFlags,
  LOCK_FLAGS,
  MS_FLAGS,
  O_FLAGS,
  PR_GET_CHILD_SUBREAPER,
  PR_GET_PDEATHSIG,
  signalName,
  SYS_pidfd_open,
  SYS_pidfd_send_signal,
  UMOUNT_FLAGS,
} from './constants.js';
import { type Backend, type Libc, type SpawnOptions, SyscallError } from './types.js';

/** A NUL-terminated byte string, ready to be passed as `const char *`. */
export type CString = Uint8Array;

/** What a backend provides. Every function maps 1:1 onto the C symbol. */
export interface RawLibc {
  readonly backend: Backend;
  /** errno of the calling thread; called immediately after a call returned -1. */
  errno(): number;
  unshare(flags: number): number;
  setns(fd: number, nstype: number): number;
  flock(fd: number, operation: number): number;
  sethostname(name: Uint8Array, len: number): number;
  mount(source: CString | null, target: CString, fstype: CString | null, flags: number, data: CString | null): number;
  umount2(target: CString, flags: number): number;
  lsetxattr(path: CString, name: CString, value: Uint8Array, size: number, flags: number): number;
  mknod(path: CString, mode: number, dev: number): number;
  open(path: CString, flags: number, mode: number): number;
  close(fd: number): number;
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write(fd: number, data: Uint8Array, len: number): number;
  /** long syscall(long nr, long a1, long a2, long a3, long a4) */
  syscall(nr: number, a1: number, a2: number, a3: number, a4: number): number;
  kill(pid: number, sig: number): number;
  waitpid(pid: number, status: Int32Array, options: number): number;
  /** waitid(idtype, id, infop, options); `info` is a 128-byte siginfo_t. */
  waitid(idtype: number, id: number, info: Uint8Array, options: number): number;
  /** prctl(option, arg2, 0, 0, 0) with an integer arg2. */
  prctl(option: number, arg2: number): number;
  /** prctl(option, &out[0], 0, 0, 0) for options whose arg2 is an int *. */
  prctlOut(option: number, out: Int32Array): number;
  socket(domain: number, type: number, protocol: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  gettid(): number;
  getpid(): number;
  /** posix_spawn(3); argv and envp end with null. Returns 0 or an errno value (not -1). */
  posixSpawn(pid: Int32Array, path: CString, actions: Uint8Array, attr: Uint8Array, argv: (CString | null)[], envp: (CString | null)[]): number;
  posixSpawnFileActionsInit(actions: Uint8Array): number;
  posixSpawnFileActionsAddopen(actions: Uint8Array, fd: number, path: CString, flags: number, mode: number): number;
  posixSpawnFileActionsDestroy(actions: Uint8Array): number;
  posixSpawnattrInit(attr: Uint8Array): number;
  posixSpawnattrSetflags(attr: Uint8Array, flags: number): number;
  posixSpawnattrSetsigmask(attr: Uint8Array, set: Uint8Array): number;
  posixSpawnattrSetsigdefault(attr: Uint8Array, set: Uint8Array): number;
  posixSpawnattrDestroy(attr: Uint8Array): number;
}

const encoder = new TextEncoder();

/** UTF-8 encodes `s` with a trailing NUL; rejects embedded NULs (C would silently truncate). */
export function cstr(s: string): CString {
  if (s.includes('\0')) throw new TypeError(`string passed to C contains a NUL byte: ${JSON.stringify(s)}`);
  return encoder.encode(`${s}\0`);
}

const q = (s: string | null): string => (s === null ? 'NULL' : JSON.stringify(s));

/** siginfo_t on x86_64 and aarch64 Linux. */
const SIGINFO_SIZE = 128;
const SIGINFO_PID_OFFSET = 16;

/** Options of prctl(2) whose arg2 is an `int *` the kernel writes to. */
const PRCTL_INT_OUT = new Set([PR_GET_CHILD_SUBREAPER, PR_GET_PDEATHSIG]);

export function wrapLibc(raw: RawLibc): Libc {
  // Reads errno first (before anything else can clobber it) and throws.
  const fail = (call: string, args: () => string): never => {
    const errno = raw.errno();
    throw new SyscallError(call, errno, args());
  };

  return Object.freeze({
    backend: raw.backend,

    unshare(flags: number): void {
      if (raw.unshare(flags) === -1) fail('unshare', () => formatFlags(flags, CLONE_FLAGS));
    },

    setns(fd: number, nstype: number): void {
      if (raw.setns(fd, nstype) === -1) fail('setns', () => `${fd}, ${formatFlags(nstype, CLONE_FLAGS)}`);
    },

    flock(fd: number, operation: number): void {
      if (raw.flock(fd, operation) === -1) fail('flock', () => `${fd}, ${formatFlags(operation, LOCK_FLAGS)}`);
    },

    sethostname(name: string): void {
      const bytes = cstr(name);
      if (raw.sethostname(bytes, bytes.length - 1) === -1) fail('sethostname', () => q(name));
    },

    mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void {
      const r = raw.mount(
        source === null ? null : cstr(source),
        cstr(target),
        fstype === null ? null : cstr(fstype),
        flags,
        data === null ? null : cstr(data),
      );
      if (r === -1) {
        fail('mount', () => `${q(source)}, ${q(target)}, ${q(fstype)}, ${formatFlags(flags, MS_FLAGS)}, ${q(data)}`);
      }
    },

    umount2(target: string, flags: number): void {
      if (raw.umount2(cstr(target), flags) === -1) fail('umount2', () => `${q(target)}, ${formatFlags(flags, UMOUNT_FLAGS)}`);
    },

    lsetxattr(path: string, name: string, value: Uint8Array): void {
      if (raw.lsetxattr(cstr(path), cstr(name), value, value.length, 0) === -1) {
        fail('lsetxattr', () => `${q(path)}, ${q(name)}, <${value.length} bytes>`);
      }
    },

    mknod(path: string, mode: number, dev: number): void {
      if (raw.mknod(cstr(path), mode, dev) === -1) fail('mknod', () => `${q(path)}, 0${mode.toString(8)}, ${dev}`);
    },

    open(path: string, flags: number, mode = 0): number {
      const fd = raw.open(cstr(path), flags, mode);
      if (fd === -1) fail('open', () => `${q(path)}, ${formatFlags(flags, O_FLAGS, 'O_RDONLY')}, 0o${mode.toString(8)}`);
      return fd;
    },

    close(fd: number): void {
      if (raw.close(fd) === -1) fail('close', () => String(fd));
    },

    write(fd: number, data: Uint8Array): number {
      const n = raw.write(fd, data, data.length);
      if (n === -1) fail('write', () => `${fd}, <${data.length} bytes>`);
      return n;
    },

    pidfdOpen(pid: number, flags = 0): number {
      const fd = raw.syscall(SYS_pidfd_open, pid, flags, 0, 0);
      if (fd === -1) fail('pidfd_open', () => `${pid}, ${flags}`);
      return fd;
    },

    pidfdSendSignal(pidfd: number, sig: number): void {
      if (raw.syscall(SYS_pidfd_send_signal, pidfd, sig, 0, 0) === -1) {
        fail('pidfd_send_signal', () => `${pidfd}, ${signalName(sig)}, NULL, 0`);
      }
    },

    kill(pid: number, sig: number): void {
      if (raw.kill(pid, sig) === -1) fail('kill', () => `${pid}, ${signalName(sig)}`);
    },

    waitpid(pid: number, options: number): { pid: number; status: number } {
      const status = new Int32Array(1);
      const r = raw.waitpid(pid, status, options);
      if (r === -1) fail('waitpid', () => `${pid}, ${options}`);
      return { pid: r, status: r === 0 ? 0 : status[0] };
    },

    waitid(idtype: number, id: number, options: number): number {
      const info = new Uint8Array(SIGINFO_SIZE);
      if (raw.waitid(idtype, id, info, options) === -1) fail('waitid', () => `${idtype}, ${id}, &info, ${options}`);
      // si_pid (0 when WNOHANG found nothing): after si_signo, si_errno, si_code and the union's 8-byte alignment.
      return new DataView(info.buffer).getInt32(SIGINFO_PID_OFFSET, true);
    },

    prctl(option: number, arg2: number): number {
      if (PRCTL_INT_OUT.has(option)) {
        const out = new Int32Array(1);
        if (raw.prctlOut(option, out) === -1) fail('prctl', () => `${option}, &int`);
        return out[0];
      }
      const r = raw.prctl(option, arg2);
      if (r === -1) fail('prctl', () => `${option}, ${arg2}`);
      return r;
    },

    socket(domain: number, type: number, protocol: number): number {
      const fd = raw.socket(domain, type, protocol);
      if (fd === -1) fail('socket', () => `${domain}, ${type}, ${protocol}`);
      return fd;
    },

    ioctl(fd: number, request: number, arg: Uint8Array): number {
      const r = raw.ioctl(fd, request, arg);
      if (r === -1) fail('ioctl', () => `${fd}, 0x${request.toString(16)}, <${arg.length} bytes>`);
      return r;
    },

    gettid: () => raw.gettid(),
    getpid: () => raw.getpid(),

    spawn(path: string, argv: string[], opts: SpawnOptions): number {
      // Opaque glibc structs (80 and 336 bytes on x86_64 and arm64): room to spare.
      const actions = new Uint8Array(512);
      const attr = new Uint8Array(512);
      const check = (call: string, err: number) => {
        if (err !== 0) throw new SyscallError(call, err, q(path));
      };
      check('posix_spawn_file_actions_init', raw.posixSpawnFileActionsInit(actions));
      try {
        check('posix_spawnattr_init', raw.posixSpawnattrInit(attr));
        try {
          for (const f of opts.files) {
            check('posix_spawn_file_actions_addopen', raw.posixSpawnFileActionsAddopen(actions, f.fd, cstr(f.path), f.flags, f.mode ?? 0o600));
          }
          // No signal blocked, every one at its default: what the runtime ignores (SIGPIPE) must not leak into helpers.
          check('posix_spawnattr_setsigmask', raw.posixSpawnattrSetsigmask(attr, new Uint8Array(SIGSET_BYTES)));
          check('posix_spawnattr_setsigdefault', raw.posixSpawnattrSetsigdefault(attr, new Uint8Array(SIGSET_BYTES).fill(0xff)));
          check('posix_spawnattr_setflags', raw.posixSpawnattrSetflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
          const pid = new Int32Array(1);
          const err = raw.posixSpawn(pid, cstr(path), actions, attr, [...argv.map(cstr), null], [...opts.env.map(cstr), null]);
          check('posix_spawn', err);
          return pid[0];
        } finally {
          raw.posixSpawnattrDestroy(attr);
        }
      } finally {
        raw.posixSpawnFileActionsDestroy(actions);
      }
    },
  });
}

/** sigset_t: 1024 bits in glibc. */
const SIGSET_BYTES = 128;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
