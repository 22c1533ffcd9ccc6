// Runs test/support/ffi-probe.ts under Node (koffi), Bun (bun:ffi) and Deno
// (Deno.dlopen), straight from the TypeScript source:
//
//   node: node node_modules/vite-node/vite-node.mjs test/support/ffi-probe.ts
//         (Node 20 cannot run .ts itself; vite-node transpiles in-process and
//         runs the module on the main thread, so unshare/setns act on the
//         thread that spawns children, as in production)
//   bun:  node_modules/.bin/bun test/support/ffi-probe.ts
//   deno: node_modules/.bin/deno run -A --sloppy-imports test/support/ffi-probe.ts
//         (--sloppy-imports lets Deno resolve our `./x.js` specifiers to the
//         `./x.ts` sources; without it Deno 2.9 fails with "Module not found")
//
// Each probe unshares net+uts+ipc on its main thread, sets a hostname, brings
// lo up, spawns children, setns()es back and prints JSON; see the probe.
// A runtime whose binary is missing is skipped with a visible message, as is
// everything when not running as root.

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const execFileP = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROBE = 'test/support/ffi-probe.ts';
const bin = (name: string) => path.join(ROOT, 'node_modules/.bin', name);

interface Runtime {
  name: 'node' | 'bun' | 'deno';
  backend: 'koffi' | 'bun' | 'deno';
  binary: string;
  args: string[];
}

const RUNTIMES: Runtime[] = [
  {
    name: 'node',
    backend: 'koffi',
    binary: process.execPath,
    args: [path.join(ROOT, 'node_modules/vite-node/vite-node.mjs'), PROBE],
  },
  { name: 'bun', backend: 'bun', binary: bin('bun'), args: [PROBE] },
  { name: 'deno', backend: 'deno', binary: bin('deno'), args: ['run', '-A', '--sloppy-imports', PROBE] },
];

type Inodes = { net: number; uts: number; ipc: number };
interface ProbeResult {
  backend: string;
  pid: number;
  tid: number;
  ebadf: { call: string; code: string; errno: number; message: string } | null;
  xattr: string;
  fifo: string;
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
  spawned: { status: number; net: number; env: string; signals: string[]; missing: string };
}

const IFF_UP = 0x1;
const isRoot = process.getuid?.() === 0;
const hostHostname = () => readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();

for (const rt of RUNTIMES) {
  const missing = !existsSync(rt.binary) || (rt.name === 'node' && !existsSync(rt.args[0]!));
  const skipReason = !isRoot ? 'not root (needs CAP_SYS_ADMIN)' : missing ? `binary missing: ${rt.binary}` : undefined;
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
      let stdout: string;
      try {
        ({ stdout } = await execFileP(rt.binary, rt.args, { cwd: ROOT, timeout: 45_000, env: { ...process.env, NO_COLOR: '1' } }));
      } catch (err) {
        const e = err as { message: string; stderr?: string; stdout?: string };
        throw new Error(`${rt.name}: probe failed: ${e.message}\nstdout: ${e.stdout ?? ''}\nstderr: ${e.stderr ?? ''}`);
      }
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        r = JSON.parse(line) as ProbeResult;
      } catch {
        throw new Error(`${rt.name}: probe printed no JSON:\n${stdout}`);
      }
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
