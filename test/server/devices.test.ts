// Device access of containers, as runc confines it: a default container may
// make any node (it has CAP_MKNOD) but open only the standard devices; a
// privileged one may open any; a CRI device is there with its permissions.
// The devices opened here are loop devices, for reading at most (the kernel
// refuses the others before their driver is reached); nothing is written to
// a host device.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups, formatDeviceRule, parseMountinfo } from '../../src/linux/cgroups.js';
import { DEFAULT_DEVICE_RULES } from '../../src/container/spec.js';
import { execText, grpcCode, podConfig } from '../support/cri-client.js';
import { preloadBusybox, sleeper } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

/** The shell's message for a redirection to `path` the kernel refused with EPERM. */
const refused = (path: string) => new RegExp(`can't (open|create) '?${path}'?: Operation not permitted`);

describe(`device access [server on ${runtime}]`, () => {
  let s: TestServer;
  let podId: string;
  let n = 0;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    podId = (await s.runtime.RunPodSandbox({ config: podConfig('devices') })).podSandboxId;
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  async function container(extra: Record<string, unknown> = {}, command?: string[]) {
    const config = sleeper(`c${++n}`, { ...extra, ...(command ? { command } : {}) });
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId: podId, config, sandboxConfig: podConfig('devices') });
    await s.runtime.StartContainer({ containerId });
    return containerId;
  }

  const sh = (id: string, script: string) => execText(s.runtime, id, ['sh', '-c', script]);

  it('a default container makes a node but cannot open a device outside the list, its init and its execs alike', async () => {
    // The init tries before anything else runs in the container.
    const id = await container({}, ['sh', '-c', 'mknod /dev/k b 7 0; (true </dev/k) 2>/tmp/init; echo rc=$? >>/tmp/init; exec sleep 300']);
    const init = await sh(id, 'until grep -q rc= /tmp/init 2>/dev/null; do sleep 0.05; done; cat /tmp/init');
    expect(init.out).toMatch(refused('/dev/k'));
    expect(init.out).toMatch(/rc=1/);
    const ex = await sh(id, 'ls -l /dev/k | cut -c1; true </dev/k && echo opened');
    expect(ex.out).toBe('b\n');
    expect(ex.err).toMatch(refused('/dev/k'));
    // A character device as well: /dev/kmsg, only ever read.
    const kmsg = await sh(id, 'mknod /dev/m c 1 11 && true </dev/m && echo opened');
    expect(kmsg.out).toBe('');
    expect(kmsg.err).toMatch(refused('/dev/m'));
  });

  it('a default container uses the standard devices', async () => {
    const id = await container();
    const r = await sh(
      id,
      [
        'echo x >/dev/null && echo null',
        'head -c 3 /dev/zero | wc -c',
        'head -c 3 /dev/urandom | wc -c',
        'head -c 3 /dev/random | wc -c',
        'echo x >/dev/full',
        'true </dev/tty',
        'true <>/dev/ptmx && echo ptmx',
        'mknod /dev/n c 1 3 && echo x >/dev/n && echo null-copy',
      ].join('; '),
    );
    expect(r.out.split('\n').map((l) => l.trim())).toEqual(['null', '3', '3', '3', 'ptmx', 'null-copy', '']);
    // /dev/full is full and an exec has no terminal: the devices' own errors, not the cgroup's.
    expect(r.err).toMatch(/No space left on device/);
    expect(r.err).toMatch(/No such device or address/);
    expect(r.err).not.toMatch(/not permitted/);
  });

  // Where the v1 devices controller is joined (not on a v2 host), it holds the rules.
  const devicesV1 = Cgroups.detect().mode === 'v2' ? undefined : parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).v1.find((h) => h.controllers.includes('devices'));
  it.skipIf(!devicesV1)('v1: the container cgroup denies all but runc\'s list', async () => {
    const id = await container();
    const list = readFileSync(join(devicesV1!.mount, 'peapod', podId, id, 'devices.list'), 'utf8').trim().split('\n');
    expect(list).toEqual(DEFAULT_DEVICE_RULES.map(formatDeviceRule));
  });

  it('a privileged container opens any device', async () => {
    const id = await container({ linux: { securityContext: { privileged: true } } });
    const r = await sh(id, 'mknod /dev/k b 7 0 && true </dev/k && echo opened');
    expect(r.err).not.toMatch(/not permitted/); // a warning of capabilities the runtime lacks may come
    expect(r.out).toBe('opened\n');
  });

  it('a CRI device is there, usable as its permissions say; no container path is the host path, no permissions all', async () => {
    const id = await container({
      devices: [
        { containerPath: '/dev/k', hostPath: '/dev/loop0', permissions: 'r' },
        { containerPath: '', hostPath: '/dev/loop-control', permissions: '' },
      ],
    });
    // Opened, never written (loop-control acts on ioctls only).
    const r = await sh(id, "ls -l /dev/k /dev/loop-control | cut -c1 | tr -d '\\n'; echo; true </dev/k && echo read; true >/dev/k && echo written; true <>/dev/loop-control && echo rw");
    expect(r.out).toBe('bc\nread\nrw\n');
    expect(r.err).toMatch(refused('/dev/k'));
  });

  it('a CRI device that is a directory brings the device nodes below it, as containerd expands one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peapod-devdir-'));
    const empty = mkdtempSync(join(tmpdir(), 'peapod-devdir-empty-'));
    try {
      for (const sub of ['sub', 'pts']) mkdirSync(join(dir, sub));
      execFileSync('mknod', [join(dir, 'a'), 'b', '7', '0']); // loop0
      execFileSync('mknod', [join(dir, 'sub', 'b'), 'c', '10', '237']); // loop-control
      execFileSync('mknod', [join(dir, 'pts', 'x'), 'b', '7', '2']); // pts/ is not walked
      execFileSync('mknod', [join(dir, 'console'), 'b', '7', '3']); // nor is console taken
      writeFileSync(join(dir, 'file'), 'not a device');
      symlinkSync('a', join(dir, 'link'));
      const id = await container({
        devices: [
          { containerPath: '/dev/grp', hostPath: dir, permissions: 'rw' },
          { containerPath: '/dev/none', hostPath: empty, permissions: 'rw' },
        ],
      });
      const found = await sh(id, 'cd /dev/grp && find . | sort; ls /dev/none');
      expect(found.out.split('\n')).toEqual(['.', './a', './sub', './sub/b', '']);
      expect(found.err).toMatch(/\/dev\/none/);
      const use = await sh(id, 'true </dev/grp/a && echo a; true <>/dev/grp/sub/b && echo b; mknod /dev/x b 7 2; true </dev/x && echo x; mknod /dev/y b 7 3; true </dev/y && echo y');
      expect(use.out).toBe('a\nb\n');
      expect(use.err).toMatch(refused('/dev/x'));
      expect(use.err).toMatch(refused('/dev/y'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it.each([
    ['whose host path is not a device', { containerPath: '/dev/k', hostPath: '/etc/hostname', permissions: 'rwm' }, /not a device node/],
    ['whose host path is missing', { containerPath: '/dev/k', hostPath: '/dev/no-such-device', permissions: 'rwm' }, /ENOENT/],
    ['with permissions beyond rwm', { containerPath: '/dev/k', hostPath: '/dev/loop0', permissions: 'rx' }, /letters of rwm/],
    ['with a relative container path', { containerPath: 'dev/k', hostPath: '/dev/loop0', permissions: 'r' }, /absolute/],
  ])('refuses a CRI device %s as INVALID_ARGUMENT', async (_, device, message) => {
    const err = await s.runtime
      .CreateContainer({ podSandboxId: podId, config: sleeper('bad', { devices: [device] }), sandboxConfig: podConfig('devices') })
      .then(() => new Error('accepted'), (e: unknown) => e as Error);
    expect(grpcCode(err)).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
  });
});
