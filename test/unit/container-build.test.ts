// A container's spec built as containerd builds it: one order for every bind
// mount (parents first), a missing host path made a directory, HOSTNAME
// first in the env, capabilities added and dropped in containerd's order.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capabilityMask, capabilityNames } from '../../src/container/capabilities.js';
import { addCgroups, addFilesystem, validateMounts } from '../../src/container/mounts.js';
import { buildProcess, mergeEnv } from '../../src/container/process.js';
import { NativeSpec } from '../../src/container/spec.js';
import type { MountSpec } from '../../src/container/types.js';
import { fileTempDir } from '../support/tmp.js';
import { containerSpec } from '../support/container-spec.js';
import { refusal } from '../support/errors.js';

const base = fileTempDir('peapod-build-unit-');

const pod = { hosts: '/run/p/hosts', resolvConf: '/run/p/resolv.conf', hostname: '/run/p/hostname', shm: '/run/p/shm' };
const mount = (containerPath: string, hostPath = base()): MountSpec => ({ containerPath, hostPath, readonly: false, propagation: 'PRIVATE' });

/** The bind mounts of the launcher's spec, [source, target], in the order it applies them. */
function binds(mounts: MountSpec[]): Array<[string, string]> {
  const spec = new NativeSpec();
  addFilesystem(spec, containerSpec({ mounts }), '/run/c/rootfs', { type: 'copy', rootfs: '/var/c' }, pod);
  return spec
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('mount bind '))
    .map((l) => l.split(' ').slice(2, 4) as [string, string]);
}

describe('container mounts', () => {
  it("applies every bind parents first, the client's before the pod's files at one depth, as containerd's stable orderedMounts", () => {
    const targets = binds([mount('/data/sub/deep'), mount('/data/sub'), mount('/etc'), mount('/data/'), mount('/var/log')]).map(([, t]) => t);
    expect(targets).toEqual([
      '/etc',
      '/data/',
      '/data/sub',
      '/var/log',
      '/etc/hosts',
      '/etc/resolv.conf',
      '/etc/hostname',
      '/dev/shm',
      '/data/sub/deep',
    ]);
  });

  it("leaves out a pod file or the pod's /dev/shm where the client mounts something", () => {
    const all = binds([mount('/dev/shm'), mount('/etc/hosts')]);
    expect(all.filter(([, t]) => t === '/dev/shm')).toEqual([[base(), '/dev/shm']]);
    expect(all.filter(([, t]) => t === '/etc/hosts')).toEqual([[base(), '/etc/hosts']]);
  });

  it('makes a missing host path a directory, 0755, as containerd; one that cannot be looked up otherwise is refused', () => {
    const missing = join(base(), 'made', 'deep');
    const spec = containerSpec({ mounts: [mount('/v', missing)] });
    validateMounts(spec);
    addFilesystem(new NativeSpec(), spec, '/run/c/rootfs', { type: 'copy', rootfs: '/var/c' }, pod);
    const st = statSync(missing);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o755 & ~process.umask());

    writeFileSync(join(base(), 'file'), '');
    const under = join(base(), 'file', 'x');
    expect(refusal(() => validateMounts(containerSpec({ mounts: [mount('/v', under)] })))).toMatch(new RegExp(`${under}.*ENOTDIR`));
    mkdirSync(join(base(), 'dir'));
    expect(() => validateMounts(containerSpec({ mounts: [mount('/v', join(base(), 'dir'))] }))).not.toThrow();
  });
});

describe('container cgroups', () => {
  const dirs = ['/sys/fs/cgroup/cpu,cpuacct/p/c', '/sys/fs/cgroup/memory/p/c', '/sys/fs/cgroup/unified/p/c'];
  const view = { names: ['cpu,cpuacct', 'memory', undefined], links: [['cpu,cpuacct', 'cpu'], ['cpu,cpuacct', 'cpuacct']] as const };
  const lines = (extra: Parameters<typeof containerSpec>[0]) => {
    const spec = new NativeSpec();
    addCgroups(spec, containerSpec(extra), dirs, view);
    return spec.toString().trim().split('\n');
  };

  it("names each dir where the container sees it at /sys/fs/cgroup, read-only unless privileged, with the view's links", () => {
    expect(lines({})).toEqual([
      'cgroup /sys/fs/cgroup/cpu,cpuacct/p/c cpu,cpuacct',
      'cgroup /sys/fs/cgroup/memory/p/c memory',
      'cgroup /sys/fs/cgroup/unified/p/c',
      'cgroupfs ro',
      'cgroupfs-link cpu,cpuacct cpu',
      'cgroupfs-link cpu,cpuacct cpuacct',
    ]);
    const privileged = containerSpec().security;
    expect(lines({ security: { ...privileged, privileged: true } })).toContain('cgroupfs rw');
  });

  it('leaves /sys/fs/cgroup to a CRI mount there or above it, and still joins every dir', () => {
    for (const at of ['/sys/fs/cgroup', '/sys/fs/cgroup/', '/sys', '/sys/fs']) {
      expect(lines({ mounts: [mount(at)] }), at).toEqual(dirs.map((d) => `cgroup ${d}`));
    }
    expect(lines({ mounts: [mount('/sys/kernel/debug')] })).toContain('cgroupfs ro');
  });
});

describe('container env', () => {
  it('puts HOSTNAME first: the image env and then the config env can replace it', () => {
    expect(mergeEnv('web-0', ['PATH=/bin', 'A=1'], [{ key: 'B', value: '2' }])).toEqual(['HOSTNAME=web-0', 'PATH=/bin', 'A=1', 'B=2']);
    expect(mergeEnv('web-0', ['A=1', 'HOSTNAME=image'], [])).toEqual(['HOSTNAME=image', 'A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(mergeEnv('web-0', ['HOSTNAME=image'], [{ key: 'HOSTNAME', value: 'cri' }])[0]).toBe('HOSTNAME=cri');
  });

  it("takes the sandbox's hostname, the node's when the sandbox has none", () => {
    const env = (podHostname: string) => buildProcess(containerSpec({ command: ['true'] }), {}, () => undefined, podHostname).env;
    expect(env('web-0')[0]).toBe('HOSTNAME=web-0');
    expect(env('')[0]).toBe(`HOSTNAME=${hostname()}`);
  });
});

describe('container capabilities', () => {
  const caps = (add: string[], drop: string[]) => capabilityNames(capabilityMask(false, add, drop));
  const all = capabilityNames(capabilityMask(true, [], []));

  it("applies add ALL, then drop ALL, then the other adds, then the other drops, as containerd's WithCapabilities", () => {
    expect(caps(['ALL'], ['NET_RAW'])).toEqual(all.filter((c) => c !== 'CAP_NET_RAW'));
    expect(caps(['SYS_ADMIN'], ['SYS_ADMIN'])).not.toContain('CAP_SYS_ADMIN');
    expect(caps(['CHOWN'], ['CHOWN'])).not.toContain('CAP_CHOWN');
    expect(caps(['CHOWN'], ['ALL'])).toEqual(['CAP_CHOWN']);
    expect(caps(['all'], ['all'])).toEqual([]);
    expect(caps(['ALL', 'SYS_ADMIN'], ['all', 'NET_ADMIN'])).toEqual(['CAP_SYS_ADMIN']);
    expect(caps([], ['NET_RAW'])).not.toContain('CAP_NET_RAW');
    expect(caps(['SYS_TIME'], [])).toContain('CAP_SYS_TIME');
  });

  it('refuses an unknown name, beside ALL too', () => {
    expect(refusal(() => caps(['ALL', 'NOPE'], []))).toMatch(/unknown capability "NOPE"/);
  });
});
