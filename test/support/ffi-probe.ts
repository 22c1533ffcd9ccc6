// Namespace probe for the FFI layer, run as a standalone process by
// test/unit/ffi-runtimes.test.ts under each runtime, straight from the
// TypeScript source:
//
//   node  node_modules/vite-node/vite-node.mjs test/support/ffi-probe.ts
//   node_modules/.bin/bun test/support/ffi-probe.ts
//   node_modules/.bin/deno run -A test/support/ffi-probe.ts
//
// (Deno 2 resolves the `.js` specifiers of our `.ts` files by itself; Node 20
// cannot strip types, hence vite-node, which runs the module in-process on
// the main thread.)
//
// It saves fds for /proc/thread-self/ns/{net,uts,ipc}, unshares those three
// namespaces on the main thread, sets a hostname, brings `lo` up, spawns
// children to see which namespaces they land in, then setns()es back and
// prints one JSON line on stdout. Needs root (CAP_SYS_ADMIN).

import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import {
  AF_INET,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWUTS,
  IFF_UP,
  IFREQ_SIZE,
  isSyscallError,
  type Libc,
  loadLibc,
  O_CLOEXEC,
  O_CREAT,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
  P_ALL,
  SIOCGIFFLAGS,
  SIOCSIFFLAGS,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  WEXITED,
  WNOHANG,
  WNOWAIT,
} from '../../src/ffi/index.js';
import { spreadSubdirectories } from '../../src/linux/fsflags.js';
import { isMountPoint } from '../../src/linux/mount.js';

const NAMESPACES = [
  ['net', CLONE_NEWNET],
  ['uts', CLONE_NEWUTS],
  ['ipc', CLONE_NEWIPC],
] as const;
type NsName = (typeof NAMESPACES)[number][0];
type NsInodes = Record<NsName, number>;

/** 'net:[4026531840]' → 4026531840 */
function nsInode(link: string): number {
  const m = /\[(\d+)\]$/.exec(link.trim());
  if (m === null) throw new Error(`unexpected namespace link ${JSON.stringify(link)}`);
  return Number(m[1]);
}

function threadInodes(): NsInodes {
  const r = {} as NsInodes;
  for (const [ns] of NAMESPACES) r[ns] = nsInode(readlinkSync(`/proc/thread-self/ns/${ns}`));
  return r;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

const childNs = (ns: NsName): number => nsInode(run('readlink', [`/proc/self/ns/${ns}`]));

function ifreq(name: string): Uint8Array {
  const buf = new Uint8Array(IFREQ_SIZE);
  buf.set(new TextEncoder().encode(name));
  return buf;
}
// ifr_flags: a short at offset 16, host byte order.
const ifrFlags = (buf: Uint8Array): number => new DataView(buf.buffer, buf.byteOffset).getUint16(16, true);
const setIfrFlags = (buf: Uint8Array, flags: number): void =>
  new DataView(buf.buffer, buf.byteOffset).setUint16(16, flags, true);

/**
 * Libc.spawn (posix_spawn) from inside the namespace window: where the child
 * lands, what it gets (env, the opened file, signals), and the errno of a
 * missing program.
 */
function spawnProbe(libc: Libc): Record<string, unknown> {
  const dir = run('mktemp', ['-d']);
  try {
    const script = 'readlink /proc/self/ns/net; echo "$PROBE_ENV"; grep -E "^(SigBlk|SigIgn):" /proc/self/status';
    const pid = libc.spawn('/bin/sh', ['sh', '-c', script], {
      env: ['PROBE_ENV=a b'],
      files: [{ fd: 1, path: `${dir}/out`, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600 }],
    });
    // Seen first by waitid(WNOWAIT), which leaves it waitable, then reaped.
    const peeked = libc.waitid(P_ALL, 0, WEXITED | WNOWAIT);
    const { pid: reaped, status } = libc.waitpid(pid, 0);
    let none: unknown;
    try {
      none = libc.waitid(P_ALL, 0, WEXITED | WNOHANG | WNOWAIT);
    } catch (err) {
      none = isSyscallError(err) ? err.code : String(err);
    }
    let missing = '';
    try {
      libc.spawn(`${dir}/no-such-program`, ['x'], { env: [], files: [] });
    } catch (err) {
      missing = isSyscallError(err) ? err.code : String(err);
    }
    const [net = '', env = '', ...sig] = readFileSync(`${dir}/out`, 'utf8').trim().split('\n');
    return { status, net: nsInode(net), env, signals: sig, missing, pid, peeked, reaped, none };
  } finally {
    run('rm', ['-rf', dir]);
  }
}

async function main(): Promise<void> {
  const libc = await loadLibc();
  const out: Record<string, unknown> = { backend: libc.backend, pid: libc.getpid(), tid: libc.gettid() };

  // errno mapping: setns on a bad fd.
  try {
    libc.setns(-1, CLONE_NEWNET);
    out.ebadf = null;
  } catch (err) {
    out.ebadf = isSyscallError(err) ? { call: err.call, code: err.code, errno: err.errno, message: err.message } : String(err);
  }

  // lsetxattr and mknod, read back by other tools.
  const scratch = run('mktemp', ['-d']);
  try {
    run('touch', [`${scratch}/f`]);
    libc.lsetxattr(`${scratch}/f`, 'user.probe', new TextEncoder().encode(libc.backend));
    out.xattr = run('python3', ['-c', `import os,sys; sys.stdout.write(os.getxattr('${scratch}/f','user.probe').decode())`]);
    libc.mknod(`${scratch}/fifo`, 0o010600, 0);
    out.fifo = run('stat', ['-c', '%F', `${scratch}/fifo`]);
    // write(2) on an fd of libc.open (what a runtime's own fs calls may not take).
    const fd = libc.open(`${scratch}/w`, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600);
    try {
      out.wrote = libc.write(fd, new TextEncoder().encode(`written by ${libc.backend}\n`));
    } finally {
      libc.close(fd);
    }
    out.written = readFileSync(`${scratch}/w`, 'utf8');
    // chattr +T through FS_IOC_GETFLAGS/SETFLAGS, read back by lsattr where the file system has the flag.
    run('mkdir', [`${scratch}/top`]);
    out.topdir = { set: spreadSubdirectories(`${scratch}/top`), fs: run('stat', ['-f', '-c', '%T', scratch]), lsattr: run('sh', ['-c', `lsattr -d ${scratch}/top 2>/dev/null | cut -d' ' -f1 || true`]) };
    // A mount point told from a plain directory by the mnt_id of an O_PATH fd of libc.open.
    run('mkdir', [`${scratch}/mnt`]);
    run('mount', ['-t', 'tmpfs', 'peapod-probe', `${scratch}/mnt`]);
    try {
      out.mountPoint = { mounted: isMountPoint(`${scratch}/mnt`), plain: isMountPoint(`${scratch}/top`) };
    } finally {
      run('umount', [`${scratch}/mnt`]);
    }
  } finally {
    run('rm', ['-rf', scratch]);
  }

  out.hostnameBefore = run('hostname', []);
  out.before = threadInodes();

  const saved = NAMESPACES.map(([ns, type]) => ({ ns, type, fd: libc.open(`/proc/thread-self/ns/${ns}`, O_RDONLY | O_CLOEXEC) }));
  try {
    libc.unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC);
    try {
      out.inside = threadInodes();
      const name = `probe-${Math.random().toString(36).slice(2, 10)}`;
      libc.sethostname(name);
      out.hostnameSet = name;

      const sock = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      try {
        const req = ifreq('lo');
        libc.ioctl(sock, SIOCGIFFLAGS, req);
        out.loFlagsBefore = ifrFlags(req);
        setIfrFlags(req, ifrFlags(req) | IFF_UP);
        libc.ioctl(sock, SIOCSIFFLAGS, req);
        const check = ifreq('lo');
        libc.ioctl(sock, SIOCGIFFLAGS, check);
        out.loFlags = ifrFlags(check);
      } finally {
        libc.close(sock);
      }

      out.child = { net: childNs('net'), uts: childNs('uts'), ipc: childNs('ipc'), hostname: run('hostname', []) };
      out.spawned = spawnProbe(libc);
    } finally {
      // Always go back, whatever failed above.
      for (const { type, fd } of saved) libc.setns(fd, type);
    }
  } finally {
    for (const { fd } of saved) libc.close(fd);
  }

  out.after = threadInodes();
  out.hostnameAfter = run('hostname', []);
  out.childAfter = { net: childNs('net') };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`ffi-probe failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
