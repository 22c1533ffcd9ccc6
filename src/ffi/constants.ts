// Linux constants used with the libc FFI. Values are those of Linux x86_64
// (most are identical on every Linux architecture; the few O_* flags that
// differ on arm64 are marked). No dependencies.

// --- namespaces: unshare(2) / setns(2) / clone(2) ---------------------------
export const CLONE_NEWTIME = 0x00000080;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

export const CLONE_FLAGS: Readonly<Record<string, number>> = Object.freeze({
  CLONE_NEWTIME,
  CLONE_NEWNS,
  CLONE_NEWCGROUP,
  CLONE_NEWUTS,
  CLONE_NEWIPC,
  CLONE_NEWUSER,
  CLONE_NEWPID,
  CLONE_NEWNET,
});

// --- mount(2) flags (unsigned long; all fit in a JS number) ------------------
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_SYNCHRONOUS = 16;
export const MS_REMOUNT = 32;
export const MS_MANDLOCK = 64;
export const MS_DIRSYNC = 128;
export const MS_NOSYMFOLLOW = 256;
export const MS_NOATIME = 1024;
export const MS_NODIRATIME = 2048;
export const MS_BIND = 4096;
export const MS_MOVE = 8192;
export const MS_REC = 16384;
export const MS_SILENT = 32768;
export const MS_POSIXACL = 1 << 16;
export const MS_UNBINDABLE = 1 << 17;
export const MS_PRIVATE = 1 << 18;
export const MS_SLAVE = 1 << 19;
export const MS_SHARED = 1 << 20;
export const MS_RELATIME = 1 << 21;
export const MS_KERNMOUNT = 1 << 22;
export const MS_I_VERSION = 1 << 23;
export const MS_STRICTATIME = 1 << 24;
export const MS_LAZYTIME = 1 << 25;

export const MS_FLAGS: Readonly<Record<string, number>> = Object.freeze({
  MS_RDONLY,
  MS_NOSUID,
  MS_NODEV,
  MS_NOEXEC,
  MS_SYNCHRONOUS,
  MS_REMOUNT,
  MS_MANDLOCK,
  MS_DIRSYNC,
  MS_NOSYMFOLLOW,
  MS_NOATIME,
  MS_NODIRATIME,
  MS_BIND,
  MS_MOVE,
  MS_REC,
  MS_SILENT,
  MS_POSIXACL,
  MS_UNBINDABLE,
  MS_PRIVATE,
  MS_SLAVE,
  MS_SHARED,
  MS_RELATIME,
  MS_KERNMOUNT,
  MS_I_VERSION,
  MS_STRICTATIME,
  MS_LAZYTIME,
});

// --- umount2(2) --------------------------------------------------------------
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MNT_EXPIRE = 4;
export const UMOUNT_NOFOLLOW = 8;

export const UMOUNT_FLAGS: Readonly<Record<string, number>> = Object.freeze({
  MNT_FORCE,
  MNT_DETACH,
  MNT_EXPIRE,
  UMOUNT_NOFOLLOW,
});

// --- flock(2) -----------------------------------------------------------------
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

export const LOCK_FLAGS: Readonly<Record<string, number>> = Object.freeze({
  LOCK_SH,
  LOCK_EX,
  LOCK_NB,
  LOCK_UN,
});

// --- mknod(2) ----------------------------------------------------------------
export const S_IFIFO = 0o010000;

// --- open(2) -----------------------------------------------------------------
export const O_RDONLY = 0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000; // x86_64 (arm64: 0o200000)
export const O_DIRECTORY = 0o200000; // x86_64 (arm64: 0o40000)
export const O_NOFOLLOW = 0o400000; // x86_64 (arm64: 0o100000)
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;
export const O_SYNC = 0o4010000;
export const O_PATH = 0o10000000;
export const O_TMPFILE = 0o20200000; // includes O_DIRECTORY

export const O_FLAGS: Readonly<Record<string, number>> = Object.freeze({
  O_WRONLY,
  O_RDWR,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_TRUNC,
  O_APPEND,
  O_NONBLOCK,
  O_DSYNC,
  O_DIRECT,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_NOATIME,
  O_CLOEXEC,
  O_PATH,
});

// --- waitpid(2) and wait status decoding --------------------------------------
export const WNOHANG = 1;
/** waitid(2): children that have exited; leave them waitable (peek only). */
export const WEXITED = 4;
export const WNOWAIT = 0x01000000;
/** waitid(2) idtype: any child. */
export const P_ALL = 0;
export const WUNTRACED = 2;
export const WCONTINUED = 8;
export const __WALL = 0x40000000;

export const WIFEXITED = (status: number): boolean => (status & 0x7f) === 0;
export const WEXITSTATUS = (status: number): number => (status >> 8) & 0xff;
export const WIFSIGNALED = (status: number): boolean => (status & 0x7f) !== 0 && (status & 0x7f) !== 0x7f;
export const WTERMSIG = (status: number): number => status & 0x7f;
export const WIFSTOPPED = (status: number): boolean => (status & 0xff) === 0x7f;
export const WSTOPSIG = (status: number): number => (status >> 8) & 0xff;

// --- prctl(2) -----------------------------------------------------------------
export const PR_SET_PDEATHSIG = 1;
export const PR_GET_PDEATHSIG = 2; // arg2 is an int * (handled by Libc.prctl)
export const PR_SET_NAME = 15;
export const PR_GET_NAME = 16;
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_GET_CHILD_SUBREAPER = 37; // arg2 is an int * (handled by Libc.prctl)
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_NO_NEW_PRIVS = 39;

// --- sockets and interface ioctls ----------------------------------------------
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_NETLINK = 16;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFINDEX = 0x8933;
/** sizeof(struct ifreq) on 64-bit Linux; ifr_name is bytes 0..15, ifr_flags a short at 16. */
export const IFREQ_SIZE = 40;
export const IFNAMSIZ = 16;

export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_PROMISC = 0x100;
export const IFF_MULTICAST = 0x1000;

// --- pidfd --------------------------------------------------------------------
export const SYS_pidfd_send_signal = 424;
export const SYS_pidfd_open = 434;
export const PIDFD_NONBLOCK = O_NONBLOCK;

// --- signals (Linux x86_64) ----------------------------------------------------
export const SIGNALS: Readonly<Record<string, number>> = Object.freeze({
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
});

/** Signal number → name, e.g. 15 → 'SIGTERM'. */
export const SIGNAL_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(SIGNALS).map(([name, n]) => [n, name]),
);

export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGQUIT = 3;
export const SIGKILL = 9;
export const SIGUSR1 = 10;
export const SIGUSR2 = 12;
export const SIGPIPE = 13;
export const SIGTERM = 15;
export const SIGCHLD = 17;
export const SIGCONT = 18;
export const SIGSTOP = 19;

/** 'SIGTERM' for 15, 'SIGRTMIN+n' for real-time signals, the number otherwise. */
export function signalName(sig: number): string {
  const name = SIGNAL_NAMES.get(sig);
  if (name !== undefined) return name;
  if (sig >= 34 && sig <= 64) return `SIGRTMIN+${sig - 34}`;
  return String(sig);
}

/**
 * Accepts 'SIGTERM', 'TERM', 'sigterm' or a numeric string / number; returns
 * the signal number or undefined when unknown.
 */
export function signalNumber(sig: string | number): number | undefined {
  if (typeof sig === 'number') return Number.isInteger(sig) && sig >= 0 && sig <= 64 ? sig : undefined;
  const s = sig.trim().toUpperCase();
  if (/^\d+$/.test(s)) return signalNumber(Number(s));
  return SIGNALS[s.startsWith('SIG') ? s : `SIG${s}`];
}

/**
 * Renders a bit mask with a name table, e.g. formatFlags(0x44000000, CLONE_FLAGS)
 * → 'CLONE_NEWUTS|CLONE_NEWNET'. Unknown bits are appended in hex; 0 renders
 * as `zero` (default '0').
 */
export function formatFlags(value: number, table: Readonly<Record<string, number>>, zero = '0'): string {
  // Bits above 2^31 cannot be handled with 32-bit bitwise operators.
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) return `0x${value.toString(16)}`;
  const parts: string[] = [];
  let rest = value;
  for (const [name, bit] of Object.entries(table)) {
    if (bit !== 0 && (value & bit) === bit && (rest & bit) !== 0) {
      parts.push(name);
      rest &= ~bit;
    }
  }
  if (rest !== 0) parts.push(`0x${(rest >>> 0).toString(16)}`);
  return parts.length === 0 ? zero : parts.join('|');
}

// --- inode flags (chattr) ------------------------------------------------------
/** ioctl requests on an open file: the inode flags as an int (linux/fs.h). */
export const FS_IOC_GETFLAGS = 0x80086601;
export const FS_IOC_SETFLAGS = 0x40086602;
/** chattr +T: ext2/3/4's Orlov allocator spreads this directory's subdirectories over block groups. */
export const FS_TOPDIR_FL = 0x00020000;
