import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fileTempDir } from '../support/tmp.js';
import { isKind } from '../../src/errors.js';
import { Cgroups, normalizeCgroupPath, parseMountinfo, parsePressure, sharesToWeight } from '../../src/linux/cgroups.js';

describe('sharesToWeight', () => {
  it('follows the kubelet/runc formula 1 + ((shares-2)*9999)/262142', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(512)).toBe(20);
    expect(sharesToWeight(102)).toBe(4);
    for (let s = 2; s <= 262144; s += 997) {
      expect(sharesToWeight(s)).toBe(1 + Math.floor(((s - 2) * 9999) / 262142));
    }
  });
});

describe('normalizeCgroupPath', () => {
  it('accepts relative and absolute cgroupfs paths', () => {
    expect(normalizeCgroupPath('kubepods/besteffort/pod1/abc')).toBe('kubepods/besteffort/pod1/abc');
    expect(normalizeCgroupPath('/kubepods/besteffort/pod1/')).toBe('kubepods/besteffort/pod1');
    expect(normalizeCgroupPath('//kubepods//./burstable')).toBe('kubepods/burstable');
  });

  it.each([
    ['..', '../etc'],
    ['inner ..', 'kubepods/../../x'],
    ['NUL', 'kube\0pods'],
    ['slice', 'x.slice'],
    ['nested slice', '/kubepods.slice/kubepods-besteffort.slice'],
    ['systemd cgroupsPath', 'kubepods-pod1.slice:cri-containerd:abc'],
    ['root', '/'],
    ['empty', ''],
  ])('rejects %s', (_, path) => {
    let caught: unknown;
    try {
      normalizeCgroupPath(path);
    } catch (err) {
      caught = err;
    }
    expect(isKind(caught, 'InvalidArgument')).toBe(true);
  });

  it('says the driver is cgroupfs for slice syntax', () => {
    expect(() => normalizeCgroupPath('x.slice')).toThrow(/cgroupfs/);
  });
});

describe('parsePressure', () => {
  it('reads the some and full lines of a *.pressure file, totals in microseconds as written', () => {
    const text = 'some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.00 avg60=0.10 avg300=0.02 total=7\n';
    expect(parsePressure(text)).toEqual({
      some: { avg10: 1.5, avg60: 0.25, avg300: 0, totalUs: 123456n },
      full: { avg10: 0, avg60: 0.1, avg300: 0.02, totalUs: 7n },
    });
    // cpu.pressure before Linux 5.13 has no full line; an unreadable file (psi=0) reads as nothing.
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n')).toEqual({ some: { avg10: 0, avg60: 0, avg300: 0, totalUs: 0n } });
    expect(parsePressure('')).toBeUndefined();
  });
});

describe('parseMountinfo', () => {
  it('reads a hybrid layout with named and separate cpu/cpuacct hierarchies', () => {
    const text = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
      '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
      '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
      '99 31 0:32 / /mnt/memory\\040copy rw - cgroup cgroup rw,memory',
    ].join('\n');
    expect(parseMountinfo(text)).toEqual({
      v1: [
        { mount: '/sys/fs/cgroup/cpu', controllers: ['cpu'] },
        { mount: '/sys/fs/cgroup/cpuacct', controllers: ['cpuacct'] },
        { mount: '/sys/fs/cgroup/memory', controllers: ['memory'] },
        { mount: '/sys/fs/cgroup/systemd', controllers: ['name=systemd'] },
      ],
      unified: '/sys/fs/cgroup/unified',
    });
  });

  it('reads pure v2 and co-mounted v1 layouts', () => {
    expect(parseMountinfo('29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n')).toEqual({
      v1: [],
      unified: '/sys/fs/cgroup',
    });
    expect(
      parseMountinfo('32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n').v1,
    ).toEqual([{ mount: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'] }]);
  });
});

describe('Cgroups.detect', () => {
  // A cgroup2 root offering its controllers, as the kernel lists them.
  const root = fileTempDir('peapod-unified-');
  let unified: string;
  let v2Line: string;
  let v2All: Record<string, string>;
  beforeAll(() => {
    unified = root();
    writeFileSync(join(unified, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
    v2Line = `29 23 0:26 / ${unified} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate`;
    v2All = { cpu: `v2 ${unified}`, cpuset: `v2 ${unified}`, memory: `v2 ${unified}`, hugetlb: `v2 ${unified}`, pids: `v2 ${unified}` };
  });
  const v1Line = (id: number, opts: string) => `${id} 30 0:${id} / /sys/fs/cgroup/${opts.replace('name=', '')} rw,relatime - cgroup cgroup rw,${opts}`;
  const where = (cg: Cgroups) => Object.fromEntries([...cg.controllers].map(([c, l]) => [c, `v${l.version} ${l.mount}`]));

  it('pure v2: the controllers the cgroup2 root offers; devices by a BPF filter there', () => {
    const cg = Cgroups.detect(v2Line + '\n');
    expect(cg.mode).toBe('v2');
    expect(where(cg)).toEqual(v2All);
    expect(cg.devices).toEqual({ mount: unified, version: 2 });
    expect(cg.deviceFilterDir('/peapod/pod1/c1')).toBe(join(unified, 'peapod/pod1/c1'));
  });

  it('a v1 hierarchy of a controller peapod does not use (a stray net_cls) leaves a v2 host v2', () => {
    const cg = Cgroups.detect([v2Line, '60 24 0:55 / /run/net_cls rw,relatime - cgroup net_cls rw,net_cls', v1Line(61, 'name=systemd')].join('\n'));
    expect(cg.mode).toBe('v2');
    expect(where(cg)).toEqual(v2All);
    expect(cg.mounts).toEqual([unified]);
    expect(cg.devices).toEqual({ mount: unified, version: 2 });
  });

  it('hybrid (as systemd sets one up): the v1 controllers only, devices in v1', () => {
    const lines = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'pids', 'name=systemd'].map((c, i) => v1Line(31 + i, c));
    const cg = Cgroups.detect([...lines, v2Line].join('\n'));
    expect(cg.mode).toBe('hybrid');
    // hugetlb, offered by the cgroup2 root, stays unused (see Cgroups.detect).
    expect(where(cg)).toEqual(Object.fromEntries(['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'].map((c) => [c, `v1 /sys/fs/cgroup/${c}`])));
    expect(cg.devices).toEqual({ mount: '/sys/fs/cgroup/devices', version: 1 });
    expect(cg.deviceFilterDir('peapod/pod1/c1')).toBeUndefined();
  });

  it("gives containers runc's /sys/fs/cgroup: v1 hierarchies by their mount point's name, links for comounted controllers, pure v2's dir itself", () => {
    // Hybrid: the cgroup2 mount is not shown (runc binds fstype cgroup only).
    const hybrid = Cgroups.detect([...['cpu', 'cpuacct', 'memory', 'name=systemd'].map((c, i) => v1Line(31 + i, c)), v2Line].join('\n'));
    expect(hybrid.mounts.map((m, i) => [m, hybrid.view.names[i]])).toEqual([
      ['/sys/fs/cgroup/cpu', 'cpu'],
      ['/sys/fs/cgroup/cpuacct', 'cpuacct'],
      ['/sys/fs/cgroup/memory', 'memory'],
      ['/sys/fs/cgroup/systemd', 'systemd'],
      [unified, undefined],
    ]);
    expect(hybrid.view.links).toEqual([]);
    const comounted = Cgroups.detect(
      [
        '31 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
        '32 30 0:32 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio',
        '33 30 0:33 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
        // Another hierarchy at a name taken: not shown twice (runc's second bind would cover the first).
        '34 30 0:34 / /mnt/memory rw - cgroup cgroup rw,name=memory',
      ].join('\n'),
    );
    expect(comounted.view).toEqual({
      names: ['cpu,cpuacct', 'net_cls,net_prio', 'memory', undefined],
      links: [['cpu,cpuacct', 'cpu'], ['cpu,cpuacct', 'cpuacct'], ['net_cls,net_prio', 'net_cls'], ['net_cls,net_prio', 'net_prio']],
    });
    expect(Cgroups.detect(v2Line + '\n').view).toEqual({ names: ['.'], links: [] });
  });

  it('devices: a BPF filter on the cgroup2 mount of a hybrid host without a v1 devices hierarchy; nowhere on v1 without one', () => {
    expect(Cgroups.detect([v1Line(31, 'memory'), v2Line].join('\n')).devices).toEqual({ mount: unified, version: 2 });
    const v1 = Cgroups.detect(v1Line(31, 'memory'));
    expect(v1.mode).toBe('v1');
    expect(v1.devices).toBeUndefined();
  });
});

// The hosts here have no v1 hugetlb hierarchy (hugetlb is only on the hybrid
// cgroup2 mount, which peapod leaves alone as runc does), so the limit files
// are checked on fake hierarchies: plain directories named in a mountinfo,
// with the files the kernel would make already there.
describe.skipIf(!existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB'))('hugepage limits on v1 and v2 hierarchies', () => {
  const base = fileTempDir('peapod-hugetlb-');
  const limits = { hugepageLimits: [{ pageSize: '2MB', limit: 6 * 1024 * 1024 }, { pageSize: '64KB', limit: 1 }] };

  it('v1: hugetlb.2MB.limit_in_bytes; a page size the host lacks is skipped', () => {
    const mount = join(base(), 'v1-hugetlb');
    mkdirSync(join(mount, 'pod1/c1'), { recursive: true });
    writeFileSync(join(mount, 'pod1/c1/hugetlb.2MB.limit_in_bytes'), '');
    const cg = Cgroups.detect(`30 22 0:26 / ${mount} rw,relatime - cgroup cgroup rw,hugetlb\n`);
    cg.create('pod1/c1', limits);
    expect(readFileSync(join(mount, 'pod1/c1/hugetlb.2MB.limit_in_bytes'), 'utf8')).toBe(String(6 * 1024 * 1024));
    expect(readdirSync(join(mount, 'pod1/c1'))).toEqual(['hugetlb.2MB.limit_in_bytes']);
  });

  it('v2: hugetlb.2MB.max, with the controller enabled down the tree', () => {
    const mount = join(base(), 'v2');
    mkdirSync(mount);
    writeFileSync(join(mount, 'cgroup.controllers'), 'hugetlb\n');
    writeFileSync(join(mount, 'cgroup.subtree_control'), '');
    const cg = Cgroups.detect(`30 22 0:26 / ${mount} rw,relatime - cgroup2 cgroup2 rw\n`);
    mkdirSync(join(mount, 'pod2/c1'), { recursive: true });
    writeFileSync(join(mount, 'pod2', 'cgroup.subtree_control'), '');
    writeFileSync(join(mount, 'pod2/c1/hugetlb.2MB.max'), '');
    cg.create('pod2/c1', limits);
    expect(readFileSync(join(mount, 'pod2/c1/hugetlb.2MB.max'), 'utf8')).toBe(String(6 * 1024 * 1024));
    expect(readFileSync(join(mount, 'cgroup.subtree_control'), 'utf8')).toBe('+hugetlb');
    expect(readFileSync(join(mount, 'pod2/cgroup.subtree_control'), 'utf8')).toBe('+hugetlb');
  });
});
