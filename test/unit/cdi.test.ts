// CDI spec files as the CDI library reads them (strict decoding, versions,
// names, kinds), the spec dirs (a later dir overriding, conflicts, broken
// files kept apart), the requests (field and annotations) and the edits as
// peapod's ContainerSpec: env, device nodes, bind mounts, groups; what
// peapod cannot honour is INVALID_ARGUMENT naming the device.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applyCdiEdits,
  CdiDevices,
  cdiRequests,
  parseCdiSpec,
  qualifiedNameProblem,
  resolveCdiDevices,
  scanCdiDirs,
} from '../../src/container/cdi.js';
import { mergeEnv } from '../../src/container/process.js';
import { deviceAccess } from '../../src/container/spec.js';
import { fileTempDir } from '../support/tmp.js';
import { containerSpec } from '../support/container-spec.js';
import { refusal } from '../support/errors.js';

const base = fileTempDir('peapod-cdi-unit-');
let n = 0;
/** A fresh dir holding `files` (name → text, or an object written as JSON). */
function specDir(files: Record<string, unknown>): string {
  const dir = join(base(), `d${++n}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

const parse = (spec: unknown, path = '/etc/cdi/x.json') => parseCdiSpec(typeof spec === 'string' ? spec : JSON.stringify(spec), path, 0);
const parseError = (spec: unknown) => {
  try {
    parse(spec);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('accepted');
};
const minimal = (extra: Record<string, unknown> = {}) => ({
  cdiVersion: '0.3.0',
  kind: 'vendor.com/dev',
  devices: [{ name: 'a', containerEdits: { env: ['A=1'] } }],
  ...extra,
});

/** The spec after injecting `requested` from one dir holding a spec with `devices` (and spec-level `edits`). */
function inject(devices: Array<Record<string, unknown>>, requested: string[], edits: Record<string, unknown> = {}, spec = containerSpec()) {
  const dir = specDir({ 'v.json': { cdiVersion: '1.1.0', kind: 'vendor.com/dev', containerEdits: edits, devices } });
  return applyCdiEdits(spec, resolveCdiDevices(scanCdiDirs([dir]), requested));
}
const withEdits = (containerEdits: Record<string, unknown>) => [{ name: 'a', containerEdits }];

describe('CDI device names', () => {
  it('takes vendor/class=name as the CDI parser does', () => {
    for (const good of ['vendor.com/class=name', 'a/b=0', 'nvidia.com/gpu=GPU-3f2a:1', 'v_1.x-y/c.d=n_1-2.3', 'A/B=C']) {
      expect(qualifiedNameProblem(good), good).toBeUndefined();
    }
    for (const bad of ['', 'name', '/dev/loop0', 'vendor.com/class', 'vendor.com=x', '/class=x', 'vendor.com/=x', 'vendor.com/class=', '1v/c=x', 'v-/c=x', 'v/c=-x', 'v/c=x-', 'v/c/d=x', 'v/c=x=y', 'v/c=a b']) {
      expect(qualifiedNameProblem(bad), bad).toBeDefined();
    }
  });

  it('requests the CRI field first, then the cdi.k8s.io/ annotations by key, each name once', () => {
    const annotations = {
      'cdi.k8s.io/z': 'v.com/c=z',
      'cdi.k8s.io/a': 'v.com/c=a1,v.com/c=x',
      'other.io/cdi': 'not=a/request',
      'cdi.k8s.io.other/x': 'ignored',
    };
    expect(cdiRequests(['v.com/c=x', 'v.com/c=y', 'v.com/c=x'], annotations)).toEqual(['v.com/c=x', 'v.com/c=y', 'v.com/c=a1', 'v.com/c=z']);
    expect(cdiRequests([], {})).toEqual([]);
  });

  it('refuses a malformed name, from the field or an annotation, naming it', () => {
    expect(refusal(() => cdiRequests(['gpu0'], {}))).toMatch(/CDI device name "gpu0" is malformed/);
    expect(refusal(() => cdiRequests([], { 'cdi.k8s.io/x': 'v.com/c=a, v.com/c=b' }))).toMatch(/" v.com\/c=b" is malformed/);
    expect(refusal(() => cdiRequests([], { 'cdi.k8s.io/x': '' }))).toMatch(/"" is malformed/);
  });
});

describe('CDI spec files', () => {
  it('reads JSON and YAML alike', () => {
    const yaml = `
cdiVersion: "0.5.0"
kind: vendor.com/dev
containerEdits:
  env: [SPEC=1]
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/x
          hostPath: /dev/null
          permissions: rw
`;
    const json = {
      cdiVersion: '0.5.0',
      kind: 'vendor.com/dev',
      containerEdits: { env: ['SPEC=1'] },
      devices: [{ name: '0', containerEdits: { deviceNodes: [{ path: '/dev/x', hostPath: '/dev/null', permissions: 'rw' }] } }],
    };
    const fromYaml = parse(yaml, '/etc/cdi/x.yaml');
    const fromJson = parse(json);
    expect(fromYaml.kind).toBe('vendor.com/dev');
    expect(fromYaml.edits.env).toEqual(['SPEC=1']);
    expect([...fromYaml.devices.keys()]).toEqual(['0']);
    expect(fromYaml.devices.get('0')).toEqual(fromJson.devices.get('0'));
    expect(fromYaml.devices.get('0')!.deviceNodes[0]).toEqual({ path: '/dev/x', hostPath: '/dev/null', type: '', major: 0, minor: 0, permissions: 'rw' });
  });

  it('decodes as Go does: keys case-insensitively, null as absent, YAML 1.1 octal', () => {
    const s = parse(`
cdiVersion: 0.7.0
Kind: vendor.com/dev
devices:
  - name: a
    containerEdits:
      additionalGIDs: [5, 6]
      env: null
      deviceNodes: [{path: /dev/x, hostPath: /dev/null, fileMode: 0644}]
`);
    expect(s.devices.get('a')!.additionalGids).toEqual([5, 6]);
    expect(s.devices.get('a')!.env).toEqual([]);
    expect(s.devices.get('a')!.deviceNodes[0]!.fileMode).toBe(0o644);
  });

  it.each([
    ['an unknown field', minimal({ extra: 1 }), /unknown field "extra"/],
    ['an unknown edit', minimal({ devices: [{ name: 'a', containerEdits: { env: ['A=1'], devicenode: [] } }] }), /devices\[0\]\.containerEdits has an unknown field "devicenode"/],
    ['a key given twice in two cases', minimal({ Kind: 'vendor.com/dev' }), /kind is given twice/],
    ['a number as a string', minimal({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/x', major: '1' }] } }] }), /major must be an integer/],
    ['a negative uid', minimal({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/x', uid: -1 }] } }] }), /uid must be an integer from 0/],
    ['a list that is not one', minimal({ devices: { name: 'a' } }), /devices must be a list/],
    ['not YAML', 'kind: [', /not valid YAML or JSON/],
    ['no object', '[]', /the spec must be an object/],
    ['no version', minimal({ cdiVersion: undefined }), /cdiVersion "" is not a CDI spec version/],
    ['an unknown version', minimal({ cdiVersion: '0.9.0' }), /cdiVersion "0.9.0" is not a CDI spec version \(0.1.0 to 1.1.0\)/],
    ['a version after the current one', minimal({ cdiVersion: '1.2.0' }), /not a CDI spec version/],
    ['a version before 0.3.0', minimal({ cdiVersion: '0.2.0' }), /older than the 0.3.0/],
    ['a kind without a class', minimal({ kind: 'vendor.com' }), /kind "vendor.com" is not vendor\/class/],
    ['a kind ending in a slash', minimal({ kind: 'vendor.com/' }), /not vendor\/class/],
    ['a kind of three parts', minimal({ kind: 'vendor.com/a/b' }), /class "a\/b" must/],
    ['a vendor not starting with a letter', minimal({ kind: '_v/c' }), /vendor "_v" must/],
    ['no devices', minimal({ devices: [] }), /defines no devices/],
    ['a bad device name', minimal({ devices: [{ name: 'a/b', containerEdits: { env: ['A=1'] } }] }), /device name "a\/b"/],
    ['a device without edits', minimal({ devices: [{ name: 'a' }] }), /device "a" has no containerEdits/],
    ['a device twice', minimal({ devices: [{ name: 'a', containerEdits: { env: ['A=1'] } }, { name: 'a', containerEdits: { env: ['A=2'] } }] }), /device "a" is defined twice/],
    ['env without =', minimal({ containerEdits: { env: ['=1'] } }), /environment variable "=1" is not KEY=VALUE/],
    ['a device node without path', minimal({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ type: 'c' }] } }] }), /a device node has no path/],
    ['a device node type', minimal({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/x', type: 'x' }] } }] }), /type "x" is not b, c, u or p/],
    ['device permissions', minimal({ devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/x', permissions: 'rx' }] } }] }), /permissions "rx"/],
    ['a mount without host path', minimal({ devices: [{ name: 'a', containerEdits: { mounts: [{ containerPath: '/x' }] } }] }), /a mount has no hostPath/],
    ['a hook name', minimal({ devices: [{ name: 'a', containerEdits: { hooks: [{ hookName: 'later', path: '/bin/true' }] } }] }), /hook name "later"/],
    ['duplicate net devices', minimal({ cdiVersion: '1.1.0', devices: [{ name: 'a', containerEdits: { netDevices: [{ hostInterfaceName: 'e0', name: 'x' }, { hostInterfaceName: 'e0', name: 'y' }] } }] }), /hostInterfaceName "e0" is given twice/],
  ])('refuses %s', (_, spec, message) => {
    expect(parseError(spec)).toMatch(message);
  });

  it('takes a version with a leading v, and needs the minimum version the fields ask for', () => {
    expect(parse(minimal({ cdiVersion: 'v0.3.0' })).kind).toBe('vendor.com/dev');
    const node = { name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/x', hostPath: '/dev/null' }] } };
    const cases: Array<[string, Record<string, unknown>]> = [
      ['0.4.0', { devices: [{ name: 'a', containerEdits: { mounts: [{ hostPath: '/a', containerPath: '/a', type: 'bind' }] } }] }],
      ['0.5.0', { devices: [node] }],
      ['0.5.0', { devices: [{ name: '0', containerEdits: { env: ['A=1'] } }] }],
      ['0.6.0', { annotations: { 'x.io/y': 'z' } }],
      ['0.6.0', { kind: 'vendor.com/dev.x' }],
      ['0.7.0', { devices: [{ name: 'a', containerEdits: { additionalGids: [5] } }] }],
      ['0.7.0', { containerEdits: { intelRdt: { closID: 'c' } } }],
      ['1.1.0', { devices: [{ name: 'a', containerEdits: { netDevices: [{ hostInterfaceName: 'e0', name: 'x' }] } }] }],
      ['1.1.0', { containerEdits: { intelRdt: { enableMonitoring: true } } }],
    ];
    const versions = ['0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0'];
    for (const [min, extra] of cases) {
      for (const v of versions) {
        const spec = minimal({ ...extra, cdiVersion: v });
        if (versions.indexOf(v) < versions.indexOf(min)) expect(parseError(spec), `${v} ${JSON.stringify(extra)}`).toMatch(`older than the ${min}`);
        else expect(() => parse(spec), `${v} ${JSON.stringify(extra)}`).not.toThrow();
      }
    }
  });
});

describe('CDI spec dirs', () => {
  const dev = (kind: string, name: string, env: string) => ({ cdiVersion: '0.3.0', kind, devices: [{ name, containerEdits: { env: [env] } }] });
  const envOf = (dirs: string[], name: string) => resolveCdiDevices(scanCdiDirs(dirs), [name]).flatMap((r) => r.edits.env);

  it('reads .json and .yaml files only, in name order, and skips missing dirs', () => {
    const dir = specDir({ 'a.json': dev('v.com/c', 'a', 'A=1'), 'b.yml': dev('v.com/c', 'b', 'B=1'), 'c.txt': dev('v.com/c', 'c', 'C=1') });
    mkdirSync(join(dir, 'sub.json'));
    const scan = scanCdiDirs([join(base(), 'missing'), dir]);
    expect([...scan.devices.keys()]).toEqual(['v.com/c=a']);
    expect(scan.failures).toEqual([]);
  });

  it('gives a device defined in two dirs from the later one', () => {
    const early = specDir({ 'x.json': dev('v.com/c', 'a', 'FROM=early') });
    const late = specDir({ 'y.yaml': JSON.stringify(dev('v.com/c', 'a', 'FROM=late')) });
    expect(envOf([early, late], 'v.com/c=a')).toEqual(['FROM=late']);
    expect(envOf([late, early], 'v.com/c=a')).toEqual(['FROM=early']);
  });

  it('uses neither of two definitions in one dir, unless a later dir has one', () => {
    const dir = specDir({ 'x.json': dev('v.com/c', 'a', 'FROM=x'), 'y.json': dev('v.com/c', 'a', 'FROM=y'), 'z.json': dev('v.com/c', 'b', 'B=1') });
    const scan = scanCdiDirs([dir]);
    expect(scan.conflicts.get('v.com/c=a')).toEqual([join(dir, 'x.json'), join(dir, 'y.json')]);
    expect(refusal(() => resolveCdiDevices(scan, ['v.com/c=a']))).toMatch(/unresolvable CDI devices: "v.com\/c=a" \(defined in both .*x\.json and .*y\.json\)/);
    expect(envOf([dir], 'v.com/c=b')).toEqual(['B=1']);
    const late = specDir({ 'w.json': dev('v.com/c', 'a', 'FROM=late') });
    expect(envOf([dir, late], 'v.com/c=a')).toEqual(['FROM=late']);
  });

  it('keeps a broken spec file from nothing else, and names it when it could be the requested device\'s', () => {
    const dir = specDir({
      'good.json': dev('v.com/c', 'a', 'A=1'),
      'broken-other.json': { ...dev('other.com/c', 'a', 'A=1'), cdiVersion: '9' },
      'broken-same.json': { ...dev('v.com/c', 'b', 'B=1'), extra: true },
      'garbage.yaml': 'kind: [',
    });
    const scan = scanCdiDirs([dir]);
    expect(scan.failures.map((f) => [f.path.slice(dir.length + 1), f.kind])).toEqual([
      ['broken-other.json', 'other.com/c'],
      ['broken-same.json', 'v.com/c'],
      ['garbage.yaml', undefined],
    ]);
    expect(envOf([dir], 'v.com/c=a')).toEqual(['A=1']);
    const why = refusal(() => resolveCdiDevices(scan, ['v.com/c=b']));
    expect(why).toMatch(/"v.com\/c=b" \(spec files that failed to load: .*broken-same.json: .*unknown field "extra"; .*garbage.yaml: not valid YAML/);
    expect(why).not.toMatch(/broken-other/);
    expect(refusal(() => resolveCdiDevices(scanCdiDirs([]), ['v.com/c=a', 'v.com/c=z']))).toBe('unresolvable CDI devices: "v.com/c=a", "v.com/c=z"');
  });

  it('reads the dirs only when a device is asked for, and logs what it skips', () => {
    const warned: unknown[] = [];
    const spec = containerSpec();
    const cdi = new CdiDevices([specDir({ 'bad.json': '{', 'ok.json': dev('v.com/c', 'a', 'A=1') })], { warn: (msg, fields) => warned.push([msg, fields]) });
    expect(cdi.inject(spec, [])).toBe(spec);
    expect(warned).toEqual([]);
    expect(cdi.inject(spec, ['v.com/c=a']).env).toEqual([{ key: 'A', value: '1' }]);
    expect(warned).toEqual([['CDI spec file skipped', expect.objectContaining({ path: expect.stringMatching(/bad\.json$/) })]]);
  });
});

describe('CDI edits → the container spec', () => {
  it('applies a spec\'s own edits once, before its first device\'s; env appended, a later key winning', () => {
    const spec = inject(
      [
        { name: 'a', containerEdits: { env: ['WHO=a', 'A=1'] } },
        { name: 'b', containerEdits: { env: ['WHO=b'] } },
      ],
      ['vendor.com/dev=a', 'vendor.com/dev=b'],
      { env: ['WHO=spec', 'SPEC=1'] },
      containerSpec({ env: [{ key: 'WHO', value: 'cri' }] }),
    );
    expect(spec.env.map((e) => `${e.key}=${e.value}`)).toEqual(['WHO=cri', 'WHO=spec', 'SPEC=1', 'WHO=a', 'A=1', 'WHO=b']);
    expect(mergeEnv('h', [], spec.env)).toEqual(['HOSTNAME=h', 'WHO=b', 'SPEC=1', 'A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  });

  it('makes device nodes CRI devices: the host path defaults to the path, permissions to rwm, "none" no rule', () => {
    const spec = inject(
      withEdits({
        deviceNodes: [
          { path: '/dev/null' },
          { path: '/dev/n2', hostPath: '/dev/null', permissions: 'r', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
          { path: '/dev/n3', hostPath: '/dev/null', permissions: 'none' },
          { path: '/dev/n4', hostPath: '/dev/null', type: 'u', major: 0, minor: 99 },
        ],
      }),
      ['vendor.com/dev=a'],
      {},
      containerSpec({ devices: [{ containerPath: '/dev/n2', hostPath: '/dev/zero', permissions: 'rwm' }] }),
    );
    expect(spec.devices).toEqual([
      { containerPath: '/dev/null', hostPath: '/dev/null', permissions: 'rwm' },
      { containerPath: '/dev/n2', hostPath: '/dev/null', permissions: 'r' },
      { containerPath: '/dev/n3', hostPath: '/dev/null', permissions: '' },
      { containerPath: '/dev/n4', hostPath: '/dev/null', permissions: 'rwm' },
    ]);
    const access = deviceAccess(spec);
    expect(access.allowAll).toBe(false);
    const own = access.allowAll ? [] : access.allow.slice(0, 3);
    expect(own).toEqual([
      { type: 'c', major: 1, minor: 3, access: 'rwm' },
      { type: 'c', major: 1, minor: 3, access: 'r' },
      { type: 'c', major: 1, minor: 3, access: 'rwm' },
    ]);
  });

  it('refuses a device node unlike its host node, or one peapod cannot make, naming the device', () => {
    const fifo = join(base(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    const file = join(base(), 'plain');
    writeFileSync(file, '');
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ path: '/dev/x', hostPath: '/dev/null', type: 'b' }, /has type b but its host node \/dev\/null has c/],
      [{ path: '/dev/x', hostPath: '/dev/null', major: 1, minor: 5 }, /has numbers 1:5 but its host node \/dev\/null has 1:3/],
      [{ path: '/dev/x', hostPath: '/dev/null', type: 'c', major: 10, minor: 3 }, /numbers 10:3/],
      [{ path: '/dev/x', hostPath: '/dev/null', fileMode: 0o600 }, /fileMode 0600 but .* has 0666/],
      [{ path: '/dev/x', hostPath: '/dev/null', uid: 1000 }, /uid 1000 but .* has 0/],
      [{ path: '/dev/x', hostPath: '/dev/null', gid: 5 }, /gid 5 but .* has 0/],
      [{ path: '/dev/peapod-no-such', type: 'c', major: 1, minor: 3 }, /ENOENT/],
      [{ path: '/dev/x', hostPath: fifo, type: 'p' }, /is a fifo/],
      [{ path: '/dev/x', hostPath: fifo }, /is not a device node/],
      [{ path: '/dev/x', hostPath: file }, /is not a device node/],
      [{ path: '/dev/x', hostPath: 'dev/null' }, /must be an absolute path/],
      [{ path: 'dev/x', hostPath: '/dev/null' }, /device node path "dev\/x" must be an absolute path/],
    ];
    for (const [node, message] of cases) {
      const why = refusal(() => inject(withEdits({ deviceNodes: [node] }), ['vendor.com/dev=a']));
      expect(why, JSON.stringify(node)).toMatch(/^CDI device "vendor.com\/dev=a" \(.*v\.json\)/);
      expect(why, JSON.stringify(node)).toMatch(message);
    }
  });

  it('makes bind mounts CRI-style mounts, replacing one at the same path (the launch orders them with the rest)', () => {
    const host = mkdtempSync(join(base(), 'host-'));
    const spec = inject(
      withEdits({
        mounts: [
          { hostPath: host, containerPath: '/a/b/c', options: ['rbind', 'ro', 'rslave', 'nosuid', 'nodev', 'nosuid'] },
          { hostPath: host, containerPath: '/a', type: 'bind' },
          { hostPath: host, containerPath: '/cri', options: ['bind', 'ro', 'rw', 'shared'], type: 'none' },
        ],
      }),
      ['vendor.com/dev=a'],
      {},
      containerSpec({
        mounts: [
          { containerPath: '/x/y', hostPath: '/tmp', readonly: false, propagation: 'PRIVATE' },
          { containerPath: '/cri', hostPath: '/tmp', readonly: true, propagation: 'PRIVATE' },
        ],
      }),
    );
    expect(spec.mounts).toEqual([
      { containerPath: '/x/y', hostPath: '/tmp', readonly: false, propagation: 'PRIVATE' },
      { containerPath: '/a/b/c', hostPath: host, readonly: true, propagation: 'HOST_TO_CONTAINER', flags: ['nosuid', 'nodev'] },
      { containerPath: '/a', hostPath: host, readonly: false, propagation: 'PRIVATE' },
      { containerPath: '/cri', hostPath: host, readonly: false, propagation: 'BIDIRECTIONAL' },
    ]);
  });

  it('refuses a mount peapod cannot honour, naming the device and the option', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ hostPath: '/tmp', containerPath: '/t', type: 'tmpfs' }, /mount \/t of type "tmpfs" is not a bind mount/],
      [{ hostPath: '/tmp', containerPath: '/t' }, /of type "" is not a bind mount/],
      [{ hostPath: '/tmp', containerPath: '/t', options: ['ro', 'nosuid', 'noatime', 'bind'] }, /option "noatime" is not one peapod honours/],
      [{ hostPath: '/tmp', containerPath: '/t', options: ['rbind', 'idmap'] }, /option "idmap"/],
      [{ hostPath: join(base(), 'nothing'), containerPath: '/t', options: ['bind'] }, /mount hostPath .*nothing does not exist/],
      [{ hostPath: 'tmp', containerPath: '/t', options: ['bind'] }, /mount hostPath "tmp" must be an absolute path/],
      [{ hostPath: '/tmp', containerPath: 't', options: ['bind'] }, /mount containerPath "t" must be an absolute path/],
    ];
    for (const [m, message] of cases) {
      const why = refusal(() => inject(withEdits({ mounts: [m] }), ['vendor.com/dev=a']));
      expect(why, JSON.stringify(m)).toMatch(/^CDI device "vendor.com\/dev=a"/);
      expect(why, JSON.stringify(m)).toMatch(message);
    }
  });

  it('adds additional GIDs but 0 to the supplemental groups', () => {
    const spec = inject(withEdits({ additionalGids: [0, 44, 45] }), ['vendor.com/dev=a'], { additionalGids: [7] }, containerSpec());
    expect(spec.security.supplementalGroups).toEqual([7, 44, 45]);
  });

  it('refuses hooks, Intel RDT and net devices, of the device or of its spec, naming the device', () => {
    const hook = { hooks: [{ hookName: 'createContainer', path: '/usr/bin/nvidia-ctk', args: ['nvidia-ctk', 'hook'] }] };
    expect(refusal(() => inject(withEdits(hook), ['vendor.com/dev=a']))).toMatch(/^CDI device "vendor.com\/dev=a" \(.*\) needs OCI hooks \(createContainer \/usr\/bin\/nvidia-ctk\), which peapod does not run/);
    expect(refusal(() => inject(withEdits({ env: ['A=1'] }), ['vendor.com/dev=a'], hook))).toMatch(/"vendor.com\/dev=a" .* needs OCI hooks/);
    expect(refusal(() => inject(withEdits({ intelRdt: { closID: 'c' } }), ['vendor.com/dev=a']))).toMatch(/needs Intel RDT/);
    expect(refusal(() => inject(withEdits({ netDevices: [{ hostInterfaceName: 'e0', name: 'x' }] }), ['vendor.com/dev=a']))).toMatch(/network interfaces/);
    // Another device of the same spec without them is fine.
    const ok = inject([{ name: 'a', containerEdits: hook }, { name: 'b', containerEdits: { env: ['B=1'] } }], ['vendor.com/dev=b']);
    expect(ok.env).toEqual([{ key: 'B', value: '1' }]);
  });
});
