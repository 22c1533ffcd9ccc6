// The device filter of cgroup v2 (native/devices.c) against the real kernel:
// peapod-monitor attaches a BPF_CGROUP_DEVICE program to a cgroup2 dir (here
// below this host's cgroup2 mount, which a hybrid host has too) before the
// container init joins it, and every process in that cgroup is confined.
//
// The rootfs is Debian's busybox with its libraries, as in native-monitor.
// The probe device is the loop block device 7:0, only ever opened for reading.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups } from '../../src/linux/cgroups.js';
import { sleep, until } from '../support/wait.js';
import { ctl } from '../support/monitor-control.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MONITOR = resolve(ROOT, 'native/build/peapod-monitor');
const isRoot = process.getuid?.() === 0;
const unified = isRoot ? Cgroups.detect().unified : undefined;
const canRun = unified !== undefined && existsSync('/sys/block/loop0');

let TMP = '';
let ROOTFS = '';
let seq = 0;
const cgroupDirs: string[] = [];
const running = new Set<{ kill(sig: string): void; exited: Promise<unknown> }>();

function makeRootfs(dir: string): void {
  const busybox = existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox';
  for (const d of ['bin', 'proc', 'dev', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(busybox, join(dir, 'bin/busybox'));
  execFileSync('chmod', ['755', join(dir, 'bin/busybox')]);
  for (const lib of execFileSync('ldd', [busybox], { encoding: 'utf8' }).match(/\/\S+/g) ?? []) {
    mkdirSync(join(dir, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(dir, lib));
  }
  for (const a of execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (!existsSync(join(dir, 'bin', a))) linkSync(join(dir, 'bin/busybox'), join(dir, 'bin', a));
  }
}

/** Percent-encodes one spec field (native/container.h). */
const enc = (s: string) => s.replace(/[^A-Za-z0-9._/:=,+@-]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

/** A cgroup2 dir of this test, removed after it (made now unless `make` is false). */
function cgroupDir(make = true): string {
  const dir = join(unified!, `peapod-test-devices-${process.pid}-${++seq}`);
  if (make) mkdirSync(dir);
  cgroupDirs.push(dir);
  return dir;
}

/** Runs the monitor on a container running `script` with the extra spec lines; waits for its "created". */
async function launch(script: string, extra: string[]) {
  const dir = join(TMP, `c${++seq}`);
  mkdirSync(dir);
  const lines = [
    'pidns new',
    `rootfs ${enc(ROOTFS)}`,
    'mount proc proc /proc nosuid,nodev,noexec -',
    'mount tmpfs tmpfs /dev nosuid,strictatime mode=755,size=65536k',
    'mount device /dev/null /dev/null - -',
    'mount device /dev/zero /dev/zero - -',
    'cwd /',
    'env PATH=/bin',
    'arg sh',
    'arg -c',
    `arg ${enc(script)}`,
    `log ${enc(join(dir, 'container.log'))}`,
    ...extra,
  ];
  writeFileSync(join(dir, 'spec'), lines.join('\n') + '\n');
  const proc = spawn(MONITOR, ['--spec', join(dir, 'spec'), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  const handle = { kill: (sig: string) => proc.kill(sig as NodeJS.Signals), exited };
  running.add(handle);
  // Closed once the init is created (its pid came first).
  await new Promise<void>((res) => proc.stdout.on('close', () => res()).resume());
  expect(err).toBe('');
  return {
    dir,
    start: () => ctl(dir, 'start'),
    /** The container's output lines, once the monitor has exited. */
    async output(): Promise<string[]> {
      expect(await exited).toBe(0);
      running.delete(handle);
      const log = readFileSync(join(dir, 'container.log'), 'utf8');
      return log.split('\n').filter(Boolean).map((l) => l.replace(/^\S+ (stdout|stderr) [PF] /, ''));
    },
    exitJson: async () => {
      await exited;
      running.delete(handle);
      return JSON.parse(readFileSync(join(dir, 'exit.json'), 'utf8')) as { error?: string };
    },
  };
}

/** What a default container gets, minus most of it: mknod of any node, null, and zero read-only. */
const RULES = ['c * * m', 'b * * m', 'c 1 3 rwm', 'c 1 5 r'].map((r) => `device-allow ${r.split(' ').map(enc).join(' ')}`);

/** The shell's message for a redirection the kernel refused with EPERM. */
const refused = (path: string) => expect.stringMatching(new RegExp(`^sh: can't (open|create) '?${path}'?: Operation not permitted$`));

// One stream: the log keeps the order of the lines.
const PROBE = [
  'exec 2>&1',
  'mknod /dev/k b 7 0 && echo mknod-ok',
  'true </dev/k && echo read-k-ok',
  'echo x >/dev/null && echo write-null-ok',
  'true </dev/zero && echo read-zero-ok',
  'true >/dev/zero && echo write-zero-ok',
  'mknod /dev/n c 1 3 && true <>/dev/n && echo rw-null-copy-ok',
].join('; ');

beforeAll(() => {
  if (!canRun) return;
  execFileSync('make', ['-s', '-C', resolve(ROOT, 'native')], { stdio: 'inherit' });
  TMP = mkdtempSync(join(tmpdir(), 'peapod-devices-'));
  ROOTFS = join(TMP, 'rootfs');
  makeRootfs(ROOTFS);
}, 120_000);

afterEach(async () => {
  for (const m of [...running]) {
    m.kill('SIGKILL');
    await m.exited;
    running.delete(m);
  }
  for (const dir of cgroupDirs.splice(0)) {
    // A just-exited task can keep a cgroup busy for a moment.
    await until(`rmdir ${dir}`, () => {
      try {
        rmdirSync(dir);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ENOENT';
      }
    });
  }
});

afterAll(() => {
  if (TMP) rmSync(TMP, { recursive: true, force: true });
});

describe.skipIf(!canRun)('device filter on a cgroup2 dir (BPF_CGROUP_DEVICE)', () => {
  it('without one, the container opens any device it makes (the control case)', async () => {
    const m = await launch(PROBE, [`cgroup ${enc(cgroupDir())}`]);
    expect(await m.start()).toMatch(/^ok /);
    expect(await m.output()).toEqual(['mknod-ok', 'read-k-ok', 'write-null-ok', 'read-zero-ok', 'write-zero-ok', 'rw-null-copy-ok']);
  });

  it('refuses what the rules do not allow, to the init and to any process that joins the cgroup later', async () => {
    const cg = cgroupDir();
    const m = await launch(PROBE, [`cgroup ${enc(cg)}`, `device-filter ${enc(cg)}`, ...RULES]);
    expect(await m.start()).toMatch(/^ok /);
    expect(await m.output()).toEqual(['mknod-ok', refused('/dev/k'), 'write-null-ok', 'read-zero-ok', refused('/dev/zero'), 'rw-null-copy-ok']);
    // The program stays on the cgroup: a host process that joins it is refused the host's /dev/loop0 as well.
    const out = execFileSync('sh', ['-c', `echo $$ > ${cg}/cgroup.procs; true </dev/loop0 && echo read-ok; echo x >/dev/null && echo null-ok`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toBe('null-ok\n');
  });

  it('attaches at start when the dir is made after the init was created, before the init joins it', async () => {
    const cg = cgroupDir(false);
    const m = await launch(PROBE, [`cgroup ${enc(cg)}`, `device-filter ${enc(cg)}`, ...RULES]);
    await sleep(50);
    mkdirSync(cg);
    expect(await m.start()).toMatch(/^ok /);
    expect((await m.output())[1]).toEqual(refused('/dev/k'));
  });

  it('a bad rule, or rules without a filter, are spec errors: the monitor starts nothing', () => {
    for (const [extra, message] of [
      [['device-filter /x', 'device-allow x 1 3 rwm'], /TYPE must be a, b or c/],
      [['device-filter /x', 'device-allow c 4096 3 rwm'], /bad MAJOR '4096'/],
      [['device-filter /x', 'device-allow c 1 3 rwx'], /ACCESS must be letters of rwm/],
      [['device-allow c 1 3 rwm'], /'device-allow' needs 'device-filter'/],
    ] as const) {
      const dir = join(TMP, `c${++seq}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'spec'), ['arg true', ...extra].join('\n') + '\n');
      let err = '';
      try {
        execFileSync(MONITOR, ['--spec', join(dir, 'spec'), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
      } catch (e) {
        err = (e as { stderr: string }).stderr;
      }
      expect(err).toMatch(message);
    }
  });

  it('a filter that cannot be attached fails the start, and nothing runs', async () => {
    const notCgroup = join(TMP, 'not-a-cgroup');
    mkdirSync(notCgroup, { recursive: true });
    const m = await launch('echo ran', [`device-filter ${enc(notCgroup)}`, ...RULES]);
    expect(await m.start()).toMatch(/^error attach the device filter to .*not-a-cgroup: /);
    expect((await m.exitJson()).error).toMatch(/^attach the device filter/);
    expect(readFileSync(join(m.dir, 'container.log'), 'utf8')).toBe('');
  });
});
