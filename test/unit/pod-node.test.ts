// What the pod runner writes and measures on the node: the kubelet's
// /etc/hosts and hostname, hostAliases and sizeLimit parsing, and the du-like
// walk behind emptyDir sizeLimit eviction.

import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileTempDir } from '../support/tmp.js';
import { etcHostsContent, podHostname } from '../../src/pod/hosts.js';
import { parseManifests } from '../../src/pod/manifest.js';
import { diskUsage } from '../../src/pod/volumes.js';

const one = (spec: string, name = 'p') => parseManifests(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ns1\nspec:\n${spec}\n  containers: [{name: c, image: busybox}]`)[0]!.spec;
const LOCALHOST =
  '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n';
const node = () => '127.0.0.1 localhost\n10.0.0.9 node1\n';

describe('the pod’s /etc/hosts and hostname', () => {
  it('a line per pod IP: HOST, or HOST.SUBDOMAIN.NS.svc.DOMAIN then HOST', () => {
    expect(etcHostsContent(one(''), ['10.1.0.4'], 'cluster.local', node)).toBe(`${LOCALHOST}10.1.0.4\tp\n`);
    expect(etcHostsContent(one('  hostname: web\n  subdomain: db'), ['10.1.0.4', 'fd00::4'], 'corp.example', node)).toBe(
      `${LOCALHOST}10.1.0.4\tweb.db.ns1.svc.corp.example\tweb\nfd00::4\tweb.db.ns1.svc.corp.example\tweb\n`,
    );
    expect(etcHostsContent(one(''), [], 'cluster.local', node)).toBe(LOCALHOST);
  });

  it('host network: the node’s file under its own header; hostAliases after either, one line per IP', () => {
    const aliases = '  hostAliases:\n    - {ip: 10.2.0.1, hostnames: [a.example, b.example]}\n    - {ip: "fd00::9", hostnames: [c]}';
    const tail = '\n# Entries added by HostAliases.\n10.2.0.1\ta.example\tb.example\nfd00::9\tc\n';
    expect(etcHostsContent(one(`  hostNetwork: true\n${aliases}`), [], 'cluster.local', node)).toBe(
      '# Kubernetes-managed hosts file (host network).\n' + node() + tail,
    );
    expect(etcHostsContent(one(aliases), ['10.1.0.4'], 'cluster.local', node)).toBe(`${LOCALHOST}10.1.0.4\tp\n${tail}`);
  });

  it('cuts a hostname from a long pod name to 63 characters without a trailing - or .', () => {
    const name = `${'a'.repeat(62)}-b`;
    expect(podHostname(one('', name), 'cluster.local')).toEqual({ hostname: 'a'.repeat(62), domain: '' });
  });

  it('rejects hostAliases with a bad IP or hostname, by path', () => {
    expect(() => one('  hostAliases: [{ip: 10.0.0.300, hostnames: [x]}]')).toThrow('spec.hostAliases[0].ip "10.0.0.300" must be a valid IP address');
    expect(() => one('  hostAliases: [{ip: 10.0.0.3, hostnames: [Bad_Name]}]')).toThrow('spec.hostAliases[0].hostnames[0] "Bad_Name"');
    expect(() => one('  hostAliases: [{ip: 10.0.0.3, hostnames: [x], extra: 1}]')).toThrow('spec.hostAliases[0].extra is not supported');
  });

  it('keeps an emptyDir sizeLimit as bytes and as written; zero is no limit', () => {
    expect(one('  volumes: [{name: v, emptyDir: {sizeLimit: 1Mi}}]').volumes[0]!.emptyDir).toEqual({ medium: '', sizeLimit: { bytes: 1048576, quantity: '1Mi' } });
    expect(one('  volumes: [{name: v, emptyDir: {sizeLimit: 0}}]').volumes[0]!.emptyDir!.sizeLimit).toBeNull();
  });
});

describe('diskUsage', () => {
  const dir = fileTempDir('peapod-du-');

  it('counts allocated blocks like du: files, subdirectories, a hard-linked file once, a symlink as itself', async () => {
    const empty = await diskUsage(dir());
    mkdirSync(join(dir(), 'sub'));
    writeFileSync(join(dir(), 'sub', 'f'), Buffer.alloc(1 << 20, 1));
    linkSync(join(dir(), 'sub', 'f'), join(dir(), 'g'));
    symlinkSync('sub/f', join(dir(), 'link'));
    const used = await diskUsage(dir());
    expect(used - empty).toBeGreaterThanOrEqual(1 << 20);
    expect(used - empty).toBeLessThan(2 << 20);
  });

  it('fails for a directory that does not exist', async () => {
    await expect(diskUsage(join(dir(), 'missing'))).rejects.toThrow(/ENOENT/);
  });
});
