// Runs test/support/ffi-probe.ts under Node (koffi), Bun (bun:ffi) and Deno
// (Deno.dlopen), straight from the TypeScript source (see support/runtimes.ts).
//
// Each probe unshares net+uts+ipc on its main thread, sets a hostname, brings
// lo up, spawns children, setns()es back and prints JSON; see the probe.
// A runtime whose binary is missing is skipped with a visible message, as is
// everything when not running as root.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROBE_RUNTIMES, probeSkipReason, runProbe } from '../support/runtimes.js';

const PROBE = 'test/support/ffi-probe.ts';

type Inodes = { net: number; uts: number; ipc: number };
interface ProbeResult {
  backend: string;
  pid: number;
  tid: number;
  ebadf: { call: string; code: string; errno: number; message: string } | null;
  xattr: string;
  fifo: string;
  wrote: number;
  written: string;
  topdir: { set: boolean; fs: string; lsattr: string };
  mountPoint: { mounted: boolean; plain: boolean };
  hostnameBefore: string;
  hostnameSet: string;
  hostnameAfter: string;
  before: Inodes;
  inside: Inodes;
  after: Inodes;
  loFlagsBefore: number;
  loFlags: number;
  child: Inodes & { hostname: string };
  childAfter: { net: number };
  spawned: {
    status: number;
    net: number;
    env: string;
    signals: string[];
    missing: string;
    pid: number;
    peeked: number;
    reaped: number;
    none: number | string;
  };
}

const IFF_UP = 0x1;
const hostHostname = () => readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();

for (const rt of PROBE_RUNTIMES) {
  const skipReason = probeSkipReason(rt);
  if (skipReason !== undefined) {
    console.warn(`[ffi-runtimes] SKIPPING ${rt.name}: ${skipReason}`);
    describe.skip(`${rt.name} (${rt.backend}) namespace probe — SKIPPED: ${skipReason}`, () => {
      it('skipped', () => {});
    });
    continue;
  }

  describe(`${rt.name} (${rt.backend}) namespace probe`, () => {
    let r: ProbeResult;
    let hostBefore: string;

    beforeAll(async () => {
      hostBefore = hostHostname();
      r = await runProbe<ProbeResult>(rt, PROBE);
    }, 60_000);

    it(`${rt.name}: uses the ${rt.backend} backend on the main thread`, () => {
      expect(r.backend).toBe(rt.backend);
      expect(r.tid).toBe(r.pid);
    });

    it(`${rt.name}: maps errno (setns(-1) → EBADF)`, () => {
      expect(r.ebadf).toMatchObject({ call: 'setns', code: 'EBADF', errno: 9 });
      expect(r.ebadf?.message).toMatch(/^setns\(.*\): EBADF \(Bad file descriptor\)$/);
    });

    it(`${rt.name}: lsetxattr and mknod work`, () => {
      expect(r.xattr).toBe(rt.backend);
      expect(r.fifo).toBe('fifo');
    });

    it(`${rt.name}: write on a libc fd, chattr +T through ioctl where the file system has it, a mount point by mnt_id`, () => {
      expect(r.written).toBe(`written by ${rt.backend}\n`);
      expect(r.wrote).toBe(r.written.length);
      // ext2/3/4 ("ext2/ext3" to stat -f) have the flag; tmpfs and others refuse it.
      expect(r.topdir.set).toBe(r.topdir.fs === 'ext2/ext3');
      if (r.topdir.set) expect(r.topdir.lsattr).toContain('T');
      expect(r.mountPoint).toEqual({ mounted: true, plain: false });
    });

    it(`${rt.name}: unshare gives new net/uts/ipc namespaces`, () => {
      for (const ns of ['net', 'uts', 'ipc'] as const) expect(r.inside[ns], ns).not.toBe(r.before[ns]);
    });

    it(`${rt.name}: setns returns to the original namespaces`, () => {
      expect(r.after).toEqual(r.before);
      expect(r.childAfter.net).toBe(r.before.net);
    });

    it(`${rt.name}: a child spawned inside lands in the new namespaces`, () => {
      expect({ net: r.child.net, uts: r.child.uts, ipc: r.child.ipc }).toEqual(r.inside);
    });

    it(`${rt.name}: posix_spawn from the window lands in the new netns with only the given env and file, every signal default`, () => {
      expect(r.spawned.status).toBe(0);
      expect(r.spawned.net).toBe(r.inside.net);
      expect(r.spawned.env).toBe('a b');
      // Node ignores SIGPIPE; a helper must not inherit that, nor a blocked signal.
      expect(r.spawned.signals).toEqual(['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000']);
      expect(r.spawned.missing).toBe('ENOENT');
    });

    it(`${rt.name}: waitid with WNOWAIT names the exited child and leaves it to waitpid; none left, none named`, () => {
      expect(r.spawned.pid).toBeGreaterThan(1);
      expect(r.spawned.peeked).toBe(r.spawned.pid);
      expect(r.spawned.reaped).toBe(r.spawned.pid);
      // No child at all (ECHILD) or none exited (0), never a stale pid.
      expect([0, 'ECHILD']).toContain(r.spawned.none);
    });

    it(`${rt.name}: hostname set inside, host hostname unchanged`, () => {
      expect(r.hostnameSet).toMatch(/^probe-/);
      expect(r.child.hostname).toBe(r.hostnameSet);
      expect(r.hostnameAfter).toBe(r.hostnameBefore);
      expect(r.hostnameAfter).not.toBe(r.hostnameSet);
      expect(hostHostname()).toBe(hostBefore);
    });

    it(`${rt.name}: lo brought UP inside the new netns via socket+ioctl`, () => {
      expect(r.loFlagsBefore & IFF_UP).toBe(0); // a fresh netns has lo down
      expect(r.loFlags & IFF_UP).toBe(IFF_UP);
    });
  });
}
