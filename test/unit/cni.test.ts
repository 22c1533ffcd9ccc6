import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileTempDir } from '../support/tmp.js';
import { PR_GET_CHILD_SUBREAPER, PR_SET_CHILD_SUBREAPER } from '../../src/ffi/constants.js';
import { loadLibc } from '../../src/ffi/index.js';
import { loadNetwork, parseConfFile } from '../../src/network/cni-config.js';
import { execPlugin } from '../../src/network/cni-exec.js';
import { capabilityArgs, parsePodCidrs, pluginStdin, POD_ANNOTATIONS_CAPABILITY, podBandwidth, podIps } from '../../src/network/cni.js';
import type { Sandbox } from '../../src/sandbox/types.js';
import { validateSpec } from '../../src/sandbox/validate.js';

const tmp = fileTempDir('peapod-cni-unit-');

describe('CNI config loading', () => {
  it('wraps a single-plugin .conf into a list and rejects unsupported versions', () => {
    const list = parseConfFile('/x/10.conf', JSON.stringify({ cniVersion: '0.4.0', name: 'n', type: 'bridge', bridge: 'b0' }));
    expect(list).toMatchObject({ name: 'n', cniVersion: '0.4.0', plugins: [{ type: 'bridge', bridge: 'b0' }] });
    expect(() => parseConfFile('/x/a.conflist', '{"cniVersion":"2.0.0","name":"n","plugins":[{"type":"x"}]}')).toThrow(/not supported/);
    expect(() => parseConfFile('/x/a.conflist', '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}')).toThrow(/type/);
    expect(() => parseConfFile('/x/a.conflist', '{"cniVersion":"1.0.0","plugins":[{"type":"x"}]}')).toThrow(/name/);
    // A list in a .conf is refused, as go-cni refuses it.
    expect(() => parseConfFile('/x/10.conf', '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x"}]}')).toThrow('/x/10.conf: no "type"; perhaps this is a .conflist?');
  });

  it('uses the first file by name and names missing plugins', () => {
    const conf = join(tmp(), 'net.d');
    const bin = join(tmp(), 'bin');
    mkdirSync(conf);
    mkdirSync(bin);
    expect(loadNetwork(conf, [bin])).toMatchObject({ ok: false, message: expect.stringContaining('no CNI network config') });
    writeFileSync(join(conf, '20-b.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'b', type: 'pb' }));
    writeFileSync(join(conf, '10-a.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'pa' }, { type: 'pc' }] }));
    writeFileSync(join(conf, 'README'), 'not a config');
    mkdirSync(join(conf, '00-dir.conf')); // libcni lists files only
    const missing = loadNetwork(conf, [bin]);
    expect(missing).toMatchObject({ ok: false, message: expect.stringMatching(/plugins pa, pc of network "a"/) });
    for (const p of ['pa', 'pc']) {
      writeFileSync(join(bin, p), '#!/bin/sh\n');
      chmodSync(join(bin, p), 0o755);
    }
    const ok = loadNetwork(conf, ['/nonexistent', bin]);
    expect(ok).toMatchObject({ ok: true, list: { name: 'a' }, binaries: [join(bin, 'pa'), join(bin, 'pc')] });
  });

  it('fails on an invalid first file, naming it and why, instead of using the next one (go-cni)', () => {
    const conf = join(tmp(), 'net-invalid.d');
    const bin = join(tmp(), 'bin-invalid');
    mkdirSync(conf);
    mkdirSync(bin);
    writeFileSync(join(bin, 'loopback'), '#!/bin/sh\n');
    chmodSync(join(bin, 'loopback'), 0o755);
    writeFileSync(join(conf, '99-loopback.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'lo', type: 'loopback' }));
    expect(loadNetwork(conf, [bin])).toMatchObject({ ok: true, list: { name: 'lo' } });
    for (const [text, why] of [
      ['{', /not JSON/],
      [JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [] }), /"plugins" must be a non-empty array/],
      [JSON.stringify({ cniVersion: '3.0.0', name: 'n', plugins: [{ type: 'loopback' }] }), /cniVersion "3.0.0" is not supported/],
    ] as const) {
      writeFileSync(join(conf, '10-bad.conflist'), text);
      const r = loadNetwork(conf, [bin]);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.message).toMatch(/^invalid CNI network config: /);
      expect(!r.ok && r.message).toContain(join(conf, '10-bad.conflist'));
      expect(!r.ok && r.message).toMatch(why);
    }
  });

  it('tells a conf dir that cannot be read from one that does not exist', () => {
    const notDir = join(tmp(), 'a-file');
    writeFileSync(notDir, '');
    const r = loadNetwork(notDir, []);
    expect(r).toMatchObject({ ok: false, message: expect.stringContaining('ENOTDIR') });
    expect(!r.ok && r.message).not.toContain('does not exist');
    expect(loadNetwork(join(tmp(), 'missing'), [])).toMatchObject({ ok: false, message: expect.stringContaining('does not exist') });
  });

  it('accepts cniVersion 1.1.0 and takes the highest version peapod speaks from cniVersions (libcni 1.2)', () => {
    const parse = (o: object) => parseConfFile('/x/a.conflist', JSON.stringify({ name: 'n', plugins: [{ type: 'x' }], ...o }));
    expect(parse({ cniVersion: '1.1.0' }).cniVersion).toBe('1.1.0');
    expect(parse({ cniVersion: '0.4.0', cniVersions: ['1.0.0', '1.1.0', '0.3.1'] }).cniVersion).toBe('1.1.0');
    // Versions above what peapod speaks are never sent.
    expect(parse({ cniVersion: '1.0.0', cniVersions: ['9.0.0', '1.0.0'] }).cniVersion).toBe('1.0.0');
    expect(parse({ cniVersions: ['0.4.0', '2.0.0'] }).cniVersion).toBe('0.4.0');
    expect(() => parse({ cniVersions: ['0.0.9', '2.0.0'] })).toThrow(/"0.0.9", "2.0.0" is not supported/);
    // The versions before chaining, as libcni takes them.
    expect(parse({ cniVersion: '0.1.0' }).cniVersion).toBe('0.1.0');
    expect(parse({ cniVersion: '0.2.0' }).cniVersion).toBe('0.2.0');
    expect(() => parse({ cniVersions: '1.0.0' })).toThrow(/"cniVersions" must be an array of strings/);
  });

  it('adds a list\'s plugin files, <conf dir>/<name>/*.conf by name, after its own plugins, unless loadOnlyInlinedPlugins (libcni 1.3)', () => {
    const conf = join(tmp(), 'net-plugin-files.d');
    const bin = join(tmp(), 'bin-plugin-files');
    mkdirSync(join(conf, 'chain', 'sub.conf'), { recursive: true }); // files only
    mkdirSync(bin);
    for (const p of ['bridge', 'tuning', 'portmap', 'firewall']) {
      writeFileSync(join(bin, p), '#!/bin/sh\n');
      chmodSync(join(bin, p), 0o755);
    }
    const list = (o: object) => writeFileSync(join(conf, '10-chain.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'chain', ...o }));
    const types = () => {
      const r = loadNetwork(conf, [bin]);
      if (!r.ok) throw new Error(r.message);
      return r.list.plugins.map((p) => p.type);
    };
    list({ plugins: [{ type: 'bridge' }] });
    writeFileSync(join(conf, 'chain', '20-portmap.conf'), JSON.stringify({ type: 'portmap', capabilities: { portMappings: true } }));
    writeFileSync(join(conf, 'chain', '10-tuning.conf'), JSON.stringify({ type: 'tuning' }));
    writeFileSync(join(conf, 'chain', 'notes.json'), JSON.stringify({ type: 'firewall' })); // .conf only
    expect(types()).toEqual(['bridge', 'tuning', 'portmap']);
    const r = loadNetwork(conf, [bin]);
    expect(r.ok && r.list.plugins[2]).toEqual({ type: 'portmap', capabilities: { portMappings: true } });
    // A list may hold no plugins of its own…
    list({});
    expect(types()).toEqual(['tuning', 'portmap']);
    // …and may refuse the files, as a boolean or libcni's string.
    list({ plugins: [{ type: 'bridge' }], loadOnlyInlinedPlugins: 'True' });
    expect(types()).toEqual(['bridge']);
    // A single-plugin .conf never takes plugin files (libcni's LoadConf).
    rmSync(join(conf, '10-chain.conflist'));
    writeFileSync(join(conf, '10-chain.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'chain', type: 'bridge' }));
    expect(types()).toEqual(['bridge']);
    rmSync(join(conf, '10-chain.conf'));

    for (const [o, why] of [
      [{ loadOnlyInlinedPlugins: true }, /"loadOnlyInlinedPlugins" is true, and there is no "plugins"/],
      [{ loadOnlyInlinedPlugins: 'yes' }, /invalid value "yes" for "loadOnlyInlinedPlugins"/],
      [{ plugins: [{ type: 'bridge' }], disableGC: 1 }, /invalid value 1 for "disableGC"/],
      [{ name: '../net.d', plugins: [{ type: 'bridge' }] }, /network name "..\/net.d" is invalid/],
    ] as const) {
      list(o);
      expect(loadNetwork(conf, [bin])).toMatchObject({ ok: false, message: expect.stringMatching(why) });
    }
    // A plugin file without a type is an error naming it; no plugin anywhere is one too.
    list({});
    writeFileSync(join(conf, 'chain', '30-bad.conf'), JSON.stringify({ capabilities: {} }));
    expect(loadNetwork(conf, [bin])).toMatchObject({ ok: false, message: `invalid CNI network config: ${join(conf, 'chain', '30-bad.conf')}: the plugin has no valid "type"` });
    rmSync(join(conf, 'chain'), { recursive: true });
    expect(loadNetwork(conf, [bin])).toMatchObject({ ok: false, message: expect.stringMatching(/10-chain\.conflist: no plugins, in the list or in .*\/chain\/\*\.conf$/) });
  });
});

describe('CNI plugin execution', () => {
  /** Ends the call after 500 ms: the plugin's timeout, or the caller giving up (a cancelled RunPodSandbox). */
  const endings = [
    { how: 'at the timeout', opts: () => ({ timeoutMs: 500 }), want: { timedOut: true, message: expect.stringContaining('timed out after 0.5 s') } },
    {
      how: 'when its caller gives up',
      opts: () => {
        const ac = new AbortController();
        setTimeout(() => ac.abort(new Error('the client cancelled the call')), 500);
        return { timeoutMs: 60_000, signal: ac.signal };
      },
      want: { timedOut: false, message: expect.stringContaining('stopped: the client cancelled the call') },
    },
  ];
  for (const { how, opts, want } of endings) {
    it(`ends the call ${how} and kills the plugin with the IPAM plugins it started, which hold its stderr`, async () => {
      const dir = mkdtempSync(join(tmp(), 'exec-'));
      const plugin = join(dir, 'hang');
      // Like a bridge plugin hung on its host-local child: the child inherited stderr.
      writeFileSync(plugin, `#!/bin/sh\nsleep 100 >/dev/null &\necho "$$ $!" > ${dir}/pids\nwait\n`);
      chmodSync(plugin, 0o755);
      // The server is a child subreaper: the killed plugin's children come to it.
      const c = await loadLibc();
      const wasSubreaper = c.prctl(PR_GET_CHILD_SUBREAPER, 0);
      c.prctl(PR_SET_CHILD_SUBREAPER, 1);
      const pidsOf = () => (existsSync(join(dir, 'pids')) ? readFileSync(join(dir, 'pids'), 'utf8').trim().split(' ').map(Number) : []);
      const running = () => pidsOf().filter((pid) => existsSync(`/proc/${pid}`));
      try {
        const started = Date.now();
        const err = await execPlugin({ path: plugin, cniEnv: { CNI_COMMAND: 'ADD' }, stdin: '{}', ...opts() }).catch((e: unknown) => e);
        expect(Date.now() - started).toBeLessThan(2000);
        expect(err).toMatchObject({ name: 'PluginError', ...want });
        expect(pidsOf()).toHaveLength(2);
        // Gone, zombies too (reaped, not left to the server).
        for (let i = 0; i < 100 && running().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
        expect(running()).toEqual([]);
      } finally {
        c.prctl(PR_SET_CHILD_SUBREAPER, wasSubreaper);
        for (const pid of running()) process.kill(pid, 'SIGKILL');
      }
    }, 10_000);
  }

  it('runs no plugin for a caller that gave up already', async () => {
    const dir = mkdtempSync(join(tmp(), 'exec-'));
    const plugin = join(dir, 'plugin');
    writeFileSync(plugin, `#!/bin/sh\ntouch ${dir}/ran\necho '{}'\n`);
    chmodSync(plugin, 0o755);
    const signal = AbortSignal.abort(new Error('the client cancelled the call'));
    await expect(execPlugin({ path: plugin, cniEnv: { CNI_COMMAND: 'ADD' }, stdin: '{}', timeoutMs: 5000, signal })).rejects.toThrow('the client cancelled the call');
    expect(existsSync(join(dir, 'ran'))).toBe(false);
  });
});

describe('CNI invocation', () => {
  it('injects name, version, prevResult and only the declared capabilities', () => {
    const list = { name: 'n', cniVersion: '1.0.0' };
    const stdin = pluginStdin(list, { type: 'portmap', capabilities: { portMappings: true, dns: false } }, { ips: [] }, {
      portMappings: [{ hostPort: 1 }],
      dns: { servers: [] },
    });
    expect(stdin).toEqual({
      type: 'portmap',
      name: 'n',
      cniVersion: '1.0.0',
      capabilities: { portMappings: true, dns: false },
      prevResult: { ips: [] },
      runtimeConfig: { portMappings: [{ hostPort: 1 }] },
    });
    expect(pluginStdin(list, { type: 'bridge' }, null, { dns: {} })).toEqual({ type: 'bridge', name: 'n', cniVersion: '1.0.0' });
  });

  it('keeps a runtimeConfig written in the file unless capabilities are injected, which replace it (libcni)', () => {
    const list = { name: 'n', cniVersion: '1.0.0' };
    const args = { portMappings: [{ hostPort: 1 }], dns: { servers: ['10.0.0.10'] } };
    const plugin = { type: 'p', capabilities: { portMappings: true }, runtimeConfig: { mac: '02:00:00:00:00:01', portMappings: [] } };
    expect(pluginStdin(list, plugin, null, args).runtimeConfig).toEqual({ portMappings: [{ hostPort: 1 }] });
    expect(pluginStdin(list, { type: 'p', runtimeConfig: { mac: 'x' } }, null, args).runtimeConfig).toEqual({ mac: 'x' });
  });

  it('sends the kubelet\'s cgroup_parent as the cgroupPath capability, as containerd does, and nothing without one', () => {
    const spec = { dnsConfig: null, portMappings: [], annotations: {}, cgroupParent: '/kubepods/burstable/pod-u' } as unknown as Sandbox['spec'];
    const args = capabilityArgs({ spec } as Sandbox, []);
    expect(args.cgroupPath).toBe('/kubepods/burstable/pod-u');
    const plugin = { type: 'x', capabilities: { cgroupPath: true } };
    expect(pluginStdin({ name: 'n', cniVersion: '1.1.0' }, plugin, null, args).runtimeConfig).toEqual({ cgroupPath: '/kubepods/burstable/pod-u' });
    expect(capabilityArgs({ spec: { ...spec, cgroupParent: '' } } as Sandbox, []).cgroupPath).toBeUndefined();
  });

  it('sends the bandwidth annotations as the bandwidth capability, in bit/s with no burst limit, as containerd does', () => {
    const spec = {
      metadata: { name: 'p', namespace: 'd', uid: 'u', attempt: 0 },
      hostname: '',
      logDirectory: '',
      dnsConfig: null,
      portMappings: [],
      labels: {},
      annotations: { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '1.5Mi' },
      namespaceOptions: { network: 'POD', pid: 'POD', ipc: 'POD', targetId: '' },
      cgroupParent: '',
      sysctls: {},
      runtimeHandler: '',
    } as unknown as Sandbox['spec'];
    const args = capabilityArgs({ spec } as Sandbox, []);
    expect(args.dns).toBeUndefined();
    // A DNSConfig, even an empty one, is handed over as containerd does.
    const empty = { servers: [], searches: [], options: [] };
    expect(capabilityArgs({ spec: { ...spec, dnsConfig: empty } } as unknown as Sandbox, []).dns).toEqual(empty);
    expect(args.bandwidth).toEqual({ ingressRate: 10_000_000, ingressBurst: 4294967295, egressRate: 1572864, egressBurst: 4294967295 });
    const bw = { type: 'bandwidth', capabilities: { bandwidth: true } };
    expect(pluginStdin({ name: 'n', cniVersion: '1.0.0' }, bw, null, args).runtimeConfig).toEqual({ bandwidth: args.bandwidth });
    // The pod's annotations go, as containerd sends them, to a plugin that declares the capability only.
    const annotated = { type: 'multus', capabilities: { [POD_ANNOTATIONS_CAPABILITY]: true } };
    expect(pluginStdin({ name: 'n', cniVersion: '1.0.0' }, annotated, null, args).runtimeConfig).toEqual({
      [POD_ANNOTATIONS_CAPABILITY]: spec.annotations,
    });
    expect(podBandwidth({})).toBeUndefined();
    expect(podBandwidth({ 'kubernetes.io/egress-bandwidth': '1k' })).toEqual({ egressRate: 1000, egressBurst: 4294967295 });
    // The kubelet's bounds and syntax: refused before anything is made.
    for (const bad of ['999', '2P', 'fast', '-1M']) {
      const annotations = { 'kubernetes.io/ingress-bandwidth': bad };
      expect(() => validateSpec({ ...spec, annotations })).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    }
    // A host-network pod gets no CNI call: its annotations are not the network's business.
    const hostNet = { ...spec, annotations: { 'kubernetes.io/ingress-bandwidth': 'fast' }, namespaceOptions: { ...spec.namespaceOptions, network: 'NODE' } };
    expect(() => validateSpec(hostNet as Sandbox['spec'])).not.toThrow();
  });

  it('takes the pod IPs from eth0 only (an IP naming no interface is on eth0), the first IPv4 first, without prefix lengths', () => {
    const result = {
      interfaces: [{ name: 'cni0' }, { name: 'veth1' }, { name: 'eth0', sandbox: '/run/netns/x' }, { name: 'lo', sandbox: '/run/netns/x' }],
      ips: [
        { address: '10.0.0.1/24', interface: 0 },
        { address: 'fd00::2/64', interface: 2 },
        { address: '127.0.0.2/8', interface: 3 },
        { address: '10.0.0.2/24', interface: 2, gateway: '10.0.0.1' },
        { address: 'fd00::3/64', interface: 2 },
      ],
    };
    expect(podIps(result, 'eth0')).toEqual({ ip: '10.0.0.2', additionalIps: ['fd00::2', 'fd00::3'] });
    expect(podIps({ ips: [{ address: '192.168.1.5/16' }] }, 'eth0')).toEqual({ ip: '192.168.1.5', additionalIps: [] });
    expect(podIps({}, 'eth0')).toBeUndefined();
    expect(podIps({ interfaces: [{ name: 'lo', sandbox: '/x' }], ips: [{ address: '127.0.0.5/8', interface: 0 }] }, 'eth0')).toBeUndefined();
    expect(() => podIps({ interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.5/8', interface: 1 }] }, 'eth0')).toThrow(/invalid result/);
  });

  it('takes the pod IPs of a 0.1.0/0.2.0 result from ip4 and ip6, IPv4 first, as libcni converts them', () => {
    const result = { cniVersion: '0.2.0', ip6: { ip: 'fd00::7/64' }, ip4: { ip: '10.0.0.7/24', gateway: '10.0.0.1', routes: [{ dst: '0.0.0.0/0' }] } };
    expect(podIps(result, 'eth0')).toEqual({ ip: '10.0.0.7', additionalIps: ['fd00::7'] });
    expect(podIps({ cniVersion: '0.1.0', ip6: { ip: 'fd00::8/64' } }, 'eth0')).toEqual({ ip: 'fd00::8', additionalIps: [] });
    expect(podIps({ cniVersion: '0.2.0', dns: {} }, 'eth0')).toBeUndefined();
  });

  it('splits a dual-stack pod CIDR into one CIDR each and refuses a bad one', () => {
    expect(parsePodCidrs('10.244.1.0/24,fd00:10:244:1::/64')).toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);
    // As containerd, spaces around each are dropped.
    expect(parsePodCidrs(' 10.244.1.0/24, fd00::/64')).toEqual(['10.244.1.0/24', 'fd00::/64']);
    for (const bad of ['10.244.1.0/33', '10.244.1.0', '10.244.1.0/24,', 'fd00::/129', 'x/8']) {
      expect(() => parsePodCidrs(bad)).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    }
  });
});
