// The libc FFI layer through the backend of the runtime vitest runs on
// (Node → koffi). Other runtimes: see ffi-runtimes.test.ts. Nothing here
// changes the host: every call that could (mount, sethostname, unshare) is
// made to fail before it does anything.

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AF_INET,
  CLONE_NEWNET,
  CLONE_NEWUTS,
  detectBackend,
  ERRNO,
  errnoDescription,
  errnoName,
  formatFlags,
  CLONE_FLAGS,
  IFF_LOOPBACK,
  IFF_UP,
  IFREQ_SIZE,
  isSyscallError,
  LOCK_EX,
  LOCK_NB,
  type Libc,
  libc,
  loadLibc,
  MS_BIND,
  MS_FLAGS,
  MS_PRIVATE,
  MS_REC,
  O_CLOEXEC,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  PR_GET_CHILD_SUBREAPER,
  PR_SET_CHILD_SUBREAPER,
  SIGKILL,
  SIGNAL_NAMES,
  SIGNALS,
  signalName,
  signalNumber,
  SIGTERM,
  SIOCGIFFLAGS,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SyscallError,
  WEXITSTATUS,
  WIFEXITED,
  WIFSIGNALED,
  WNOHANG,
  WTERMSIG,
} from '../../src/ffi/index.js';

/** Runs fn, expects a SyscallError and returns it. */
function syscallError(fn: () => unknown): SyscallError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SyscallError);
    return err as SyscallError;
  }
  throw new Error('expected a SyscallError, call succeeded');
}

function ifreq(name: string): Uint8Array {
  const buf = new Uint8Array(IFREQ_SIZE);
  buf.set(new TextEncoder().encode(name));
  return buf;
}

const UNUSED_PID = 0x3ffffff0; // above any pid_max (max 2^22)

describe('errno table', () => {
  it('names and describes 1..133', () => {
    expect(errnoName(1)).toBe('EPERM');
    expect(errnoDescription(1)).toBe('Operation not permitted');
    expect(errnoName(9)).toBe('EBADF');
    expect(errnoName(11)).toBe('EAGAIN');
    expect(errnoName(95)).toBe('EOPNOTSUPP');
    expect(errnoName(133)).toBe('EHWPOISON');
    for (let n = 1; n <= 133; n++) {
      if (n === 41 || n === 58) continue; // unused on Linux
      expect(errnoName(n), `errno ${n}`).toMatch(/^E[A-Z0-9]+$/);
      expect(errnoDescription(n), `errno ${n}`).not.toMatch(/^Unknown/);
    }
    expect(errnoName(4095)).toBe('EUNKNOWN4095');
    expect(ERRNO.ENOENT).toBe(2);
    expect(ERRNO.EWOULDBLOCK).toBe(ERRNO.EAGAIN);
  });

  it('SyscallError formats call, errno name and description', () => {
    const err = new SyscallError('unshare', 1, 'CLONE_NEWNET');
    expect(err.message).toBe('unshare(CLONE_NEWNET): EPERM (Operation not permitted)');
    expect(err).toMatchObject({ call: 'unshare', errno: 1, code: 'EPERM', name: 'SyscallError' });
    expect(new SyscallError('close', 9).message).toBe('close: EBADF (Bad file descriptor)');
    expect(isSyscallError(err, 'EPERM')).toBe(true);
    expect(isSyscallError(err, 'EBADF')).toBe(false);
  });
});

describe('constants', () => {
  it('signals both ways', () => {
    expect(SIGNALS.SIGTERM).toBe(15);
    expect(SIGNALS.SIGKILL).toBe(9);
    expect(SIGNALS.SIGCHLD).toBe(17);
    expect(SIGNAL_NAMES.get(9)).toBe('SIGKILL');
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalName(36)).toBe('SIGRTMIN+2');
    expect(signalNumber('TERM')).toBe(15);
    expect(signalNumber('sigkill')).toBe(9);
    expect(signalNumber('10')).toBe(10);
    expect(signalNumber('NOPE')).toBeUndefined();
  });

  it('formats flag sets', () => {
    expect(formatFlags(CLONE_NEWNET | CLONE_NEWUTS, CLONE_FLAGS)).toBe('CLONE_NEWUTS|CLONE_NEWNET');
    expect(formatFlags(MS_BIND | MS_REC | (1 << 30), MS_FLAGS)).toBe('MS_BIND|MS_REC|0x40000000');
    expect(formatFlags(0, MS_FLAGS)).toBe('0');
  });

  it('decodes wait statuses', () => {
    expect(WIFEXITED(3 << 8)).toBe(true);
    expect(WEXITSTATUS(3 << 8)).toBe(3);
    expect(WIFSIGNALED(9)).toBe(true);
    expect(WTERMSIG(9)).toBe(9);
    expect(WIFSIGNALED(0x7f)).toBe(false);
  });
});

describe('libc via koffi (Node)', () => {
  let c: Libc;
  beforeAll(async () => {
    c = await loadLibc();
  });

  it('picks the koffi backend and memoises', async () => {
    expect(detectBackend()).toBe('koffi');
    expect(c.backend).toBe('koffi');
    expect(await loadLibc()).toBe(c);
    expect(libc()).toBe(c);
  });

  it('libc() throws before loadLibc() resolved', async () => {
    vi.resetModules();
    const fresh = await import('../../src/ffi/index.js');
    expect(() => fresh.libc()).toThrow(/loadLibc/);
    const loaded = await fresh.loadLibc();
    expect(fresh.libc()).toBe(loaded);
  });

  it('setns(-1) → EBADF SyscallError', () => {
    const err = syscallError(() => c.setns(-1, 0));
    expect(err).toMatchObject({ call: 'setns', code: 'EBADF', errno: 9 });
    expect(err.message).toBe('setns(-1, 0): EBADF (Bad file descriptor)');
  });

  it('umount2 of a missing path → ENOENT/EINVAL', () => {
    const err = syscallError(() => c.umount2('/nonexistent-xyz', 0));
    expect(err.call).toBe('umount2');
    expect(['ENOENT', 'EINVAL']).toContain(err.code);
    expect(err.message).toContain('"/nonexistent-xyz"');
  });

  it('mount passes NULL for null arguments', () => {
    // NULL source/fstype/data are valid for a propagation change; the target
    // does not exist, so this fails with ENOENT (EFAULT would mean a bad pointer).
    const err = syscallError(() => c.mount(null, '/nonexistent-xyz', null, MS_PRIVATE, null));
    expect(err.code).toBe('ENOENT');
    expect(err.message).toBe('mount(NULL, "/nonexistent-xyz", NULL, MS_PRIVATE, NULL): ENOENT (No such file or directory)');
  });

  it('unshare with an invalid flag → EINVAL with the flags in the message', () => {
    const err = syscallError(() => c.unshare(0x1));
    expect(err.code).toBe('EINVAL');
    expect(err.message).toBe('unshare(0x1): EINVAL (Invalid argument)');
  });

  it('sethostname refuses an over-long name (host unchanged)', () => {
    const err = syscallError(() => c.sethostname('x'.repeat(70)));
    expect(['EINVAL', 'EPERM']).toContain(err.code);
  });

  it('rejects strings with NUL bytes before calling C', () => {
    expect(() => c.open('/etc/passwd\0/etc/shadow', O_RDONLY)).toThrow(TypeError);
  });

  it('getpid / gettid', () => {
    expect(c.getpid()).toBe(process.pid);
    expect(c.gettid()).toBeGreaterThan(0);
  });

  it('open a namespace file, then close it', () => {
    const fd = c.open('/proc/self/ns/net', O_RDONLY | O_CLOEXEC);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^net:\[\d+\]$/);
    c.close(fd);
    expect(syscallError(() => c.close(fd)).code).toBe('EBADF');
  });

  it('open of a missing file → ENOENT', () => {
    const err = syscallError(() => c.open('/nonexistent-xyz/file', O_RDONLY | O_CLOEXEC));
    expect(err).toMatchObject({ call: 'open', code: 'ENOENT' });
    expect(err.message).toBe('open("/nonexistent-xyz/file", O_CLOEXEC, 0o0): ENOENT (No such file or directory)');
  });

  it('flock: a second open file description cannot take an exclusive lock while the first holds it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-flock-'));
    const path = join(dir, 'lock');
    const a = c.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
    const b = c.open(path, O_RDWR | O_CLOEXEC);
    try {
      c.flock(a, LOCK_EX | LOCK_NB);
      const err = syscallError(() => c.flock(b, LOCK_EX | LOCK_NB));
      expect(err).toMatchObject({ call: 'flock', code: 'EAGAIN' });
      expect(err.message).toBe(`flock(${b}, LOCK_EX|LOCK_NB): EAGAIN (Resource temporarily unavailable)`);
      c.close(a); // closing the holder's fd releases its lock
      c.flock(b, LOCK_EX | LOCK_NB);
    } finally {
      c.close(b);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prctl PR_GET_CHILD_SUBREAPER reads the int out-parameter', () => {
    const before = c.prctl(PR_GET_CHILD_SUBREAPER, 0);
    expect([0, 1]).toContain(before);
    try {
      expect(c.prctl(PR_SET_CHILD_SUBREAPER, 1)).toBe(0);
      expect(c.prctl(PR_GET_CHILD_SUBREAPER, 0)).toBe(1);
    } finally {
      c.prctl(PR_SET_CHILD_SUBREAPER, before);
    }
    expect(c.prctl(PR_GET_CHILD_SUBREAPER, 0)).toBe(before);
  });

  it('waitpid on a non-child → ECHILD', () => {
    expect(syscallError(() => c.waitpid(1, WNOHANG)).code).toBe('ECHILD');
  });

  it('kill(pid, 0) succeeds for us, ESRCH for a free pid', () => {
    c.kill(process.pid, 0);
    expect(syscallError(() => c.kill(UNUSED_PID, 0)).code).toBe('ESRCH');
  });

  it('pidfdOpen(self) then close; ESRCH for a free pid', () => {
    const fd = c.pidfdOpen(process.pid);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe('anon_inode:[pidfd]');
    c.close(fd);
    expect(syscallError(() => c.pidfdOpen(UNUSED_PID)).code).toBe('ESRCH');
  });

  it('waitpid WNOHANG, kill 0 and pidfdSendSignal on a live child (reaped by Node, not us)', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = once(child, 'exit');
    try {
      const pid = child.pid!;
      expect(c.waitpid(pid, WNOHANG)).toEqual({ pid: 0, status: 0 });
      c.kill(pid, 0);
      const pidfd = c.pidfdOpen(pid);
      try {
        c.pidfdSendSignal(pidfd, SIGTERM);
      } finally {
        c.close(pidfd);
      }
      const [code, signal] = await exited;
      expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill(SIGKILL);
    }
  });

  it('socket + ioctl(SIOCGIFFLAGS) sees lo UP', () => {
    const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    try {
      const req = ifreq('lo');
      expect(c.ioctl(fd, SIOCGIFFLAGS, req)).toBe(0);
      const flags = new DataView(req.buffer).getUint16(16, true);
      expect(flags & IFF_UP).toBe(IFF_UP);
      expect(flags & IFF_LOOPBACK).toBe(IFF_LOOPBACK);
      expect(syscallError(() => c.ioctl(fd, SIOCGIFFLAGS, ifreq('nosuchif0'))).code).toBe('ENODEV');
    } finally {
      c.close(fd);
    }
  });
  it('lsetxattr sets an attribute that the kernel reports back, and mknod makes a fifo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-ffi-'));
    try {
      const f = join(dir, 'file');
      writeFileSync(f, '');
      c.lsetxattr(f, 'user.peapod', new TextEncoder().encode('value-1'));
      const got = execFileSync('python3', ['-c', `import os,sys; sys.stdout.write(os.getxattr(${JSON.stringify(f)}, 'user.peapod').decode())`]);
      expect(got.toString()).toBe('value-1');
      expect(syscallError(() => c.lsetxattr(join(dir, 'missing'), 'user.x', new Uint8Array(1))).code).toBe('ENOENT');
      c.mknod(join(dir, 'fifo'), 0o010600, 0);
      expect(statSync(join(dir, 'fifo')).isFIFO()).toBe(true);
      expect(syscallError(() => c.mknod(join(dir, 'fifo'), 0o010600, 0)).code).toBe('EEXIST');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
