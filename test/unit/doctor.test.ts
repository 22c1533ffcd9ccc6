import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { fileTempDir } from '../support/tmp.js';
import { defaultConfig } from '../../src/config.js';
import { formatTable, runChecks, type CheckResult, type DoctorInputs } from '../../src/doctor/checks.js';

// Every check reads from DoctorInputs: here a fake /proc, fake CNI and native
// directories, and namespace/FFI probes that succeed or fail on demand.

const base = fileTempDir('peapod-doctor-');
let n = 0;

function write(path: string, text: string, mode = 0o644): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
}

const conflist = (name: string, types: string[]) => JSON.stringify({ cniVersion: '1.0.0', name, plugins: types.map((type) => ({ type })) });

const statusText = (capEff: string, seccomp = true) =>
  `Name:\tnode\nUid:\t0\t0\t0\t0\nCapEff:\t${capEff}\n${seccomp ? 'Seccomp:\t0\nSeccomp_filters:\t0\n' : ''}`;

/** A healthy host: v2 cgroups, shared /, overlay, all plugins, a CNI config, built helpers. */
function healthyHost(): DoctorInputs {
  const dir = join(base(), `host-${n++}`);
  const proc = join(dir, 'proc');
  const cg = join(dir, 'cgroup');
  write(join(proc, 'sys/kernel/osrelease'), '6.1.0-18-amd64\n');
  write(join(proc, 'filesystems'), 'nodev\tsysfs\nnodev\tproc\n\text4\nnodev\toverlay\n');
  write(join(proc, 'self/status'), statusText('000001ffffffffff'));
  write(
    join(proc, 'self/mountinfo'),
    [
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      `30 22 0:26 / ${cg} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,favordynmods`,
    ].join('\n') + '\n',
  );
  write(join(proc, '1/comm'), 'systemd\n');
  write(join(proc, '1/stat'), '1 (systemd) S 0 1 1 0 -1\n');
  write(join(cg, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
  const bin = join(dir, 'cni-bin');
  for (const p of ['bridge', 'host-local', 'portmap', 'loopback']) write(join(bin, p), '#!/bin/sh\n', 0o755);
  const conf = join(dir, 'net.d');
  write(join(conf, '10-test.conflist'), conflist('test', ['bridge', 'host-local', 'portmap']));
  const native = join(dir, 'native');
  for (const h of ['pause', 'peapod-sandbox', 'peapod-monitor', 'peapod-exec']) write(join(native, h), '', 0o755);
  mkdirSync(join(dir, 'root'));
  const sys = join(dir, 'sys');
  write(join(sys, 'devices/block/sda/sda1/dev'), '8:1\n');
  mkdirSync(join(sys, 'dev/block'), { recursive: true });
  symlinkSync('../../devices/block/sda/sda1', join(sys, 'dev/block/8:1'));
  write(join(sys, 'fs/ext4/sda1/journal_task'), '9\n');
  return {
    config: { ...defaultConfig, socket: join(dir, 'run', 'peapod.sock'), root: join(dir, 'root'), state: join(dir, 'run'), nativeDir: native },
    proc,
    sys,
    bootDir: join(dir, 'boot'),
    modulesDir: join(dir, 'modules'),
    cniBinDirs: [join(dir, 'nowhere'), bin],
    cniConfDir: conf,
    packageRoot: join(dir, 'pkg'),
    unshare: async () => undefined,
    ffiBackend: async () => 'koffi',
    runtime: { name: 'node', version: '20.0.0' },
    freeBytes: () => 50 * 1024 ** 3,
  };
}

function get(results: CheckResult[], name: string): CheckResult {
  const r = results.find((x) => x.name === name);
  if (!r) throw new Error(`no check ${name} in ${results.map((x) => x.name).join(', ')}`);
  return r;
}

describe('peapod doctor checks', () => {
  let host: DoctorInputs;
  beforeEach(() => {
    host = healthyHost();
  });

  it('a healthy host is all OK', async () => {
    const results = await runChecks(host);
    expect(results.filter((r) => r.status !== 'OK')).toEqual([]);
    expect(get(results, 'cgroups').detail).toMatch(/^v2 at .*: cpu cpuset hugetlb memory pids/);
    expect(get(results, 'runtime').detail).toBe('node 20.0.0; FFI backend koffi loads libc');
    expect(results.map((r) => r.name)).toEqual(expect.arrayContaining(['ns-net', 'ns-ipc', 'ns-uts', 'ns-pid', 'ns-mnt']));
  });

  it('a kernel before 5.6 (Ubuntu 20.04\'s 5.4): ERROR naming openat2, which every container mount needs', async () => {
    for (const release of ['4.19.0-27-amd64', '5.4.0-150-generic']) {
      write(join(host.proc, 'sys/kernel/osrelease'), `${release}\n`);
      const r = get(await runChecks(host), 'kernel');
      expect(r.status).toBe('ERROR');
      expect(r.detail).toMatch(/openat2\(2\) needs 5\.6/);
      expect(r.fix).toMatch(/5\.6 or newer/);
    }
  });

  it('5.6 is enough', async () => {
    write(join(host.proc, 'sys/kernel/osrelease'), '5.6.0\n');
    expect(get(await runChecks(host), 'kernel').status).toBe('OK');
  });

  it('a namespace type that cannot be created is an ERROR for that type only', async () => {
    host.unshare = async (ns) => (ns === 'pid' ? 'unshare failed: Operation not permitted' : undefined);
    const results = await runChecks(host);
    expect(get(results, 'ns-pid')).toMatchObject({ status: 'ERROR', detail: expect.stringMatching(/Operation not permitted/) });
    expect(get(results, 'ns-pid').fix).toMatch(/CONFIG_PID_NS=y/);
    expect(get(results, 'ns-net').status).toBe('OK');
  });

  it('overlay missing: ERROR, or WARN when the module is there to load', async () => {
    write(join(host.proc, 'filesystems'), 'nodev\tsysfs\n\text4\n');
    let r = get(await runChecks(host), 'overlayfs');
    expect(r.status).toBe('ERROR');
    expect(r.fix).toMatch(/modprobe overlay/);
    write(join(host.modulesDir, '6.1.0-18-amd64/kernel/fs/overlayfs/overlay.ko.xz'), '');
    r = get(await runChecks(host), 'overlayfs');
    expect(r.status).toBe('WARN');
  });

  it('cgroups: v1 and hybrid layouts, missing controllers, none mounted, read-only', async () => {
    const v1 = join(host.proc, '..', 'v1');
    const mi = (lines: string[]) => write(join(host.proc, 'self/mountinfo'), ['22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw', ...lines].join('\n') + '\n');
    mi([
      `31 22 0:27 / ${v1}/memory rw shared:10 - cgroup cgroup rw,memory`,
      `32 22 0:28 / ${v1}/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct`,
      `33 22 0:29 / ${v1}/pids rw shared:12 - cgroup cgroup rw,pids`,
    ]);
    expect(get(await runChecks(host), 'cgroups')).toMatchObject({ status: 'OK', detail: expect.stringMatching(/^v1: cpu cpuacct memory pids/) });

    mi([`31 22 0:27 / ${v1}/memory rw shared:10 - cgroup cgroup rw,memory`, `34 22 0:30 / ${v1}/unified rw shared:13 - cgroup2 cgroup2 rw`]);
    const r = get(await runChecks(host), 'cgroup-controllers');
    expect(r.status).toBe('WARN');
    expect(r.detail).toMatch(/^hybrid .*cpu, pids missing/);

    mi([]);
    expect(get(await runChecks(host), 'cgroups')).toMatchObject({ status: 'ERROR', fix: expect.stringMatching(/mount -t cgroup2/) });

    mi([`30 22 0:26 / ${join(host.proc, '..', 'cgroup')} ro,nosuid shared:9 - cgroup2 cgroup2 rw`]);
    expect(get(await runChecks(host), 'cgroups')).toMatchObject({ status: 'ERROR', detail: expect.stringMatching(/not writable/) });
  });

  it('v2 without memory enabled: WARN with the subtree_control fix', async () => {
    write(join(host.proc, '..', 'cgroup', 'cgroup.controllers'), 'cpuset cpu pids\n');
    const r = get(await runChecks(host), 'cgroup-controllers');
    expect(r.status).toBe('WARN');
    expect(r.fix).toMatch(/echo "\+memory" > .*cgroup\.subtree_control/);
  });

  it('mount propagation: private and slave / are WARN with mount --make-rshared', async () => {
    write(join(host.proc, 'self/mountinfo'), '22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n');
    let r = get(await runChecks(host), 'mount-propagation');
    expect(r).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/^\/ is private/), fix: expect.stringMatching(/mount --make-rshared \//) });
    write(join(host.proc, 'self/mountinfo'), '22 1 8:1 / / rw,relatime master:1 - ext4 /dev/sda1 rw\n');
    r = get(await runChecks(host), 'mount-propagation');
    expect(r.detail).toMatch(/^\/ is slave/);
  });

  it('cgroup2 without favordynmods is WARN with the remount; without cgroup2 there is nothing to tune', async () => {
    write(
      join(host.proc, 'self/mountinfo'),
      ['22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw', '30 22 0:26 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw'].join('\n') + '\n',
    );
    expect(get(await runChecks(host), 'cgroup-favordynmods')).toMatchObject({
      status: 'WARN',
      fix: expect.stringMatching(/^mount -o remount,favordynmods \/sys\/fs\/cgroup\/unified /),
    });
    write(join(host.proc, 'self/mountinfo'), '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n');
    expect(get(await runChecks(host), 'cgroup-favordynmods').status).toBe('OK');
  });

  it('a root on ext4 without a journal is WARN; with one, or on another file system, OK', async () => {
    expect(get(await runChecks(host), 'root-journal')).toMatchObject({ status: 'OK', detail: expect.stringMatching(/ext4 with a journal \(sda1\)/) });
    write(join(host.sys, 'fs/ext4/sda1/journal_task'), '<none>\n');
    expect(get(await runChecks(host), 'root-journal')).toMatchObject({
      status: 'WARN',
      detail: expect.stringMatching(/ext4 without a journal \(sda1\)/),
      fix: expect.stringMatching(/journaled file system.*tune2fs -O has_journal/),
    });
    // The root's own mount wins over /: here a tmpfs.
    const mi = readFileSync(join(host.proc, 'self/mountinfo'), 'utf8');
    write(join(host.proc, 'self/mountinfo'), `${mi}40 22 0:50 / ${host.config.root} rw - tmpfs tmpfs rw\n`);
    expect(get(await runChecks(host), 'root-journal')).toMatchObject({ status: 'OK', detail: expect.stringMatching(/ on tmpfs /) });
  });

  it('CNI: the network the server would use, its plugins found where the server looks', async () => {
    expect(get(await runChecks(host), 'cni')).toMatchObject({
      status: 'OK',
      detail: expect.stringMatching(/^network "test" from .*10-test\.conflist: bridge \(.*cni-bin\/bridge\), host-local .*portmap/),
    });
  });

  it('CNI: an invalid first config is a WARN naming it, not skipped for the next (as go-cni)', async () => {
    write(join(host.cniConfDir, '05-broken.conflist'), '{ not json');
    write(join(host.cniConfDir, '10-test.conflist'), conflist('test', ['bridge']));
    const r = get(await runChecks(host), 'cni');
    expect(r.status).toBe('WARN');
    expect(r.detail).toMatch(/^invalid CNI network config: .*05-broken\.conflist/);
    expect(r.fix).toBe(`fix ${join(host.cniConfDir, '05-broken.conflist')} or remove it`);
  });

  it('CNI: a plugin the config names but the host lacks is a WARN', async () => {
    write(join(host.cniConfDir, '10-test.conflist'), conflist('test', ['bridge', 'nosuchplugin']));
    const r = get(await runChecks(host), 'cni');
    expect(r.status).toBe('WARN');
    expect(r.detail).toMatch(/^CNI plugin nosuchplugin of network "test" \(.*10-test\.conflist\) not found in .*: the server reports NetworkReady false/);
    expect(r.fix).toMatch(/containernetworking-plugins/);
  });

  it('CNI: no usable config is a WARN naming --network none and the example', async () => {
    host.cniConfDir = join(base(), 'no-net.d');
    write(join(host.packageRoot, 'examples/cni/10-peapod.conflist'), '{}');
    const conf = get(await runChecks(host), 'cni');
    expect(conf.status).toBe('WARN');
    expect(conf.detail).toMatch(/^no CNI network config: .*no-net\.d does not exist: .*--network none/);
    expect(conf.fix).toMatch(/scripts\/provision\.sh/);
    expect(conf.fix).toMatch(/cp .*examples\/cni\/10-peapod\.conflist/);
  });

  it('CNI: with network "none" neither config nor plugins are needed', async () => {
    host.config.network = 'none';
    host.cniBinDirs = [join(base(), 'empty')];
    host.cniConfDir = join(base(), 'no-net.d');
    expect(get(await runChecks(host), 'cni')).toMatchObject({ status: 'OK', detail: expect.stringMatching(/^network "none"/) });
  });

  it('a root on overlayfs is an ERROR: container root file systems cannot be overlays on it', async () => {
    const mi = readFileSync(join(host.proc, 'self/mountinfo'), 'utf8');
    write(join(host.proc, 'self/mountinfo'), `${mi}41 22 0:51 / ${join(host.config.root, '..')} rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n`);
    expect(get(await runChecks(host), 'overlayfs')).toMatchObject({ status: 'ERROR', detail: expect.stringMatching(/is on overlayfs/), fix: expect.stringMatching(/--root/) });
  });

  it('seccomp: no Seccomp field is a WARN', async () => {
    write(join(host.proc, 'self/status'), statusText('000001ffffffffff', false));
    expect(get(await runChecks(host), 'seccomp').status).toBe('WARN');
    write(join(host.proc, 'self/status'), statusText('000001ffffffffff'));
    write(join(host.bootDir, 'config-6.1.0-18-amd64'), 'CONFIG_SECCOMP=y\n# CONFIG_SECCOMP_FILTER is not set\n');
    expect(get(await runChecks(host), 'seccomp')).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/CONFIG_SECCOMP_FILTER/) });
  });

  it('capabilities: no CAP_SYS_RESOURCE is a WARN; no CAP_SYS_ADMIN an ERROR', async () => {
    // all but bit 24
    write(join(host.proc, 'self/status'), statusText((0x1ffffffffffn & ~(1n << 24n)).toString(16)));
    let results = await runChecks(host);
    expect(get(results, 'cap-sys-resource')).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/oom_score_adj/) });
    expect(get(results, 'privileges').status).toBe('OK');
    write(join(host.proc, 'self/status'), statusText('0'));
    results = await runChecks(host);
    expect(get(results, 'privileges')).toMatchObject({ status: 'ERROR', fix: expect.stringMatching(/root/) });
  });

  it('low disk space is a WARN; the nearest existing parent is measured', async () => {
    host.config.state = join(host.config.root, 'not', 'yet');
    const seen: string[] = [];
    host.freeBytes = (p) => (seen.push(p), 512 * 1024 ** 2);
    const results = await runChecks(host);
    expect(get(results, 'disk-root')).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/only 512 MiB free/) });
    expect(seen).toContain(host.config.root);
    expect(get(results, 'disk-state').detail).toMatch(/\(on .*root\)/);
  });

  it('the state dir needs little room (a tmpfs /run): WARN under 64 MiB only', async () => {
    host.freeBytes = () => 100 * 1024 ** 2;
    expect(get(await runChecks(host), 'disk-state')).toMatchObject({ status: 'OK', detail: expect.stringMatching(/^100 MiB free/) });
    host.freeBytes = () => 32 * 1024 ** 2;
    expect(get(await runChecks(host), 'disk-state')).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/^only 32 MiB free/) });
  });

  it('native helpers missing or not executable: ERROR with make -C native', async () => {
    chmodSync(join(host.config.nativeDir, 'peapod-exec'), 0o644);
    rmSync(join(host.config.nativeDir, 'pause'));
    const r = get(await runChecks(host), 'native-helpers');
    expect(r.status).toBe('ERROR');
    expect(r.detail).toMatch(/pause, peapod-exec$/);
    expect(r.fix).toMatch(/make -C .*native/);
  });

  it('FFI that does not load is an ERROR', async () => {
    host.ffiBackend = async () => {
      throw new Error('libc.so.6: cannot open');
    };
    expect(get(await runChecks(host), 'runtime')).toMatchObject({ status: 'ERROR', fix: expect.stringMatching(/npm ci/) });
  });

  it('socket: a file that is not a socket is an ERROR', async () => {
    write(host.config.socket, '');
    expect(get(await runChecks(host), 'socket')).toMatchObject({ status: 'ERROR', detail: expect.stringMatching(/not a socket/) });
  });

  it('zombies left to PID 1 are a WARN', async () => {
    write(join(host.proc, '4242/stat'), '4242 (a b) c) Z 1 4242 4242 0 -1\n');
    expect(get(await runChecks(host), 'pid1-reaper')).toMatchObject({ status: 'WARN', detail: expect.stringMatching(/systemd.*1 zombie/) });
  });

  it('formats a table with the fix under each problem', async () => {
    write(join(host.proc, 'filesystems'), '\text4\n');
    const table = formatTable(await runChecks(host));
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^CHECK\s+STATUS\s+DETAIL \/ FIX$/);
    const i = lines.findIndex((l) => /^overlayfs\s+ERROR\s+/.test(l));
    expect(i).toBeGreaterThan(0);
    expect(lines[i + 1]).toMatch(/^\s+fix: modprobe overlay/);
    expect(table).toMatch(/1 error\(s\)\n$/);
  });
});
