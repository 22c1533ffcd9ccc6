// The one libc interface every FFI backend (koffi on Node, bun:ffi on Bun,
// Deno.dlopen on Deno) implements. Nothing here is runtime-specific.

import { errnoDescription, errnoName } from './errno.js';

export type Backend = 'koffi' | 'bun' | 'deno';

/**
 * Thin, synchronous libc bindings. Every call that fails (returns -1) throws
 * a SyscallError carrying errno; successful calls return the C result where
 * it means something (an fd, a pid) and nothing otherwise.
 *
 * Namespace calls (unshare/setns/sethostname) act on the calling OS thread,
 * which for every backend is the JS main thread; children spawned from that
 * thread afterwards inherit the namespaces.
 */
export interface Libc {
  readonly backend: Backend;
  unshare(flags: number): void;
  setns(fd: number, nstype: number): void;
  /** flock(2) on an fd from open() above; with LOCK_NB a lock held elsewhere throws EAGAIN (EWOULDBLOCK). */
  flock(fd: number, operation: number): void;
  sethostname(name: string): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** lsetxattr(2): sets an extended attribute without following a final symlink. */
  lsetxattr(path: string, name: string, value: Uint8Array): void;
  /** mknod(2); `dev` is makedev(major, minor). */
  mknod(path: string, mode: number, dev: number): void;
  /** open(2); returns the fd. `mode` defaults to 0 (only meaningful with O_CREAT/O_TMPFILE). */
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): void;
  /**
   * write(2) of `data` to an fd from open() above: the runtimes' own fs calls
   * do not all take a raw descriptor (Deno's do not). Returns the bytes written.
   */
  write(fd: number, data: Uint8Array): number;
  /** syscall(SYS_pidfd_open = 434, pid, flags); returns the pidfd. */
  pidfdOpen(pid: number, flags?: number): number;
  /** syscall(SYS_pidfd_send_signal = 424, pidfd, sig, NULL, 0). */
  pidfdSendSignal(pidfd: number, sig: number): void;
  kill(pid: number, sig: number): void;
  /** waitpid(2); `pid` is 0 when WNOHANG was given and nothing has changed state. */
  waitpid(pid: number, options: number): { pid: number; status: number };
  /** waitid(2); returns the child's pid from its siginfo, 0 when WNOHANG was given and none is waitable. */
  waitid(idtype: number, id: number, options: number): number;
  /**
   * prctl(option, arg2, 0, 0, 0); returns prctl's result. For the options whose
   * arg2 is an `int *` out-parameter (PR_GET_CHILD_SUBREAPER, PR_GET_PDEATHSIG)
   * arg2 is ignored and the int written by the kernel is returned instead.
   */
  prctl(option: number, arg2: number): number;
  socket(domain: number, type: number, protocol: number): number;
  /** ioctl(fd, request, arg) where arg is an in/out buffer (e.g. a 40-byte struct ifreq). */
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  gettid(): number;
  getpid(): number;
  /**
   * posix_spawn(3): glibc clones with CLONE_VM|CLONE_VFORK, so nothing of the
   * caller's memory is copied (a fork of a 100 MB runtime costs milliseconds)
   * and no thread is created. The child starts in the calling thread's
   * namespaces, every signal unblocked and at its default. Returns the pid;
   * the caller reaps it.
   */
  spawn(path: string, argv: string[], opts: SpawnOptions): number;
}

export interface SpawnOptions {
  env: string[];
  /** Opened in the child onto these fds (the others it gets are the caller's non-CLOEXEC ones). */
  files: Array<{ fd: number; path: string; flags: number; mode?: number }>;
}

/** A libc call returned -1. `code` is the errno name ('EPERM'), `errno` its number. */
export class SyscallError extends Error {
  override readonly name = 'SyscallError';
  readonly code: string;

  /**
   * @param call  the C function name, e.g. 'unshare'
   * @param errno the errno value read right after the failing call
   * @param args  optional rendering of the arguments for the message, e.g. 'CLONE_NEWNET'
   */
  constructor(
    readonly call: string,
    readonly errno: number,
    args?: string,
  ) {
    const code = errnoName(errno);
    super(`${args === undefined ? call : `${call}(${args})`}: ${code} (${errnoDescription(errno)})`);
    this.code = code;
  }
}

export function isSyscallError(err: unknown, code?: string): err is SyscallError {
  return err instanceof SyscallError && (code === undefined || err.code === code);
}
