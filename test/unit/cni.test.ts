import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNetwork, parseConfFile } from '../../src/network/cni-config.js';
import { capabilityArgs, pluginStdin, podBandwidth, podIps } from '../../src/network/cni.js';
import type { Sandbox } from '../../src/sandbox/types.js';
import { validateSpec } from '../../src/sandbox/validate.js';

const tmp = mkdtempSync(join(tmpdir(), 'peapod-cni-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('CNI config loading', () => {
  it('wraps a single-plugin .conf into a list and rejects unsupported versions', () => {
    const list = parseConfFile('/x/10.conf', JSON.stringify({ cniVersion: '0.4.0', name: 'n', type: 'bridge', bridge: 'b0' }));
    expect(list).toMatchObject({ name: 'n', cniVersion: '0.4.0', plugins: [{ type: 'bridge', bridge: 'b0' }] });
    expect(() => parseConfFile('/x/a.conflist', '{"cniVersion":"2.0.0","name":"n","plugins":[{"type":"x"}]}')).toThrow(/not supported/);
    expect(() => parseConfFile('/x/a.conflist', '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}')).toThrow(/type/);
    expect(() => parseConfFile('/x/a.conflist', '{"cniVersion":"1.0.0","plugins":[{"type":"x"}]}')).toThrow(/name/);
  });

  it('uses the first valid file by name and names missing plugins', () => {
    const conf = join(tmp, 'net.d');
    const bin = join(tmp, 'bin');
    mkdirSync(conf);
    mkdirSync(bin);
    expect(loadNetwork(conf, [bin])).toMatchObject({ ok: false, message: expect.stringContaining('no CNI network config') });
    writeFileSync(join(conf, '05-broken.conflist'), '{');
    writeFileSync(join(conf, '20-b.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'b', type: 'pb' }));
    writeFileSync(join(conf, '10-a.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'pa' }, { type: 'pc' }] }));
    writeFileSync(join(conf, 'README'), 'not a config');
    const missing = loadNetwork(conf, [bin]);
    expect(missing).toMatchObject({ ok: false, message: expect.stringMatching(/plugins pa, pc of network "a"/) });
    for (const p of ['pa', 'pc']) {
      writeFileSync(join(bin, p), '#!/bin/sh\n');
      chmodSync(join(bin, p), 0o755);
    }
    const ok = loadNetwork(conf, ['/nonexistent', bin]);
    expect(ok).toMatchObject({ ok: true, list: { name: 'a' }, binaries: [join(bin, 'pa'), join(bin, 'pc')] });
  });
});

describe('CNI invocation', () => {
  it('injects name, version, prevResult and only the declared capabilities', () => {
    const list = { name: 'n', cniVersion: '1.0.0', plugins: [], file: 'f' };
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
    const args = capabilityArgs({ spec } as Sandbox, '');
    expect(args.bandwidth).toEqual({ ingressRate: 10_000_000, ingressBurst: 4294967295, egressRate: 1572864, egressBurst: 4294967295 });
    const bw = { type: 'bandwidth', capabilities: { bandwidth: true } };
    expect(pluginStdin({ name: 'n', cniVersion: '1.0.0', plugins: [], file: 'f' }, bw, null, args).runtimeConfig).toEqual({ bandwidth: args.bandwidth });
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

  it('takes the pod IPs from sandbox interfaces, IPv4 first, without prefix lengths', () => {
    const result = {
      interfaces: [{ name: 'cni0' }, { name: 'veth1' }, { name: 'eth0', sandbox: '/run/netns/x' }],
      ips: [
        { address: '10.0.0.1/24', interface: 0 },
        { address: 'fd00::2/64', interface: 2 },
        { address: '10.0.0.2/24', interface: 2, gateway: '10.0.0.1' },
      ],
    };
    expect(podIps(result, 'eth0')).toEqual({ ip: '10.0.0.2', additionalIps: ['fd00::2'] });
    expect(podIps({ ips: [{ address: '192.168.1.5/16' }] }, 'eth0')).toEqual({ ip: '192.168.1.5', additionalIps: [] });
    expect(podIps({}, 'eth0')).toEqual({ ip: '', additionalIps: [] });
  });
});
