// Platform matching (containerd's platforms.Only order, injected platforms) and
// which endpoints get the CRI credentials (containerd's ParseAuth).
import { describe, expect, it } from 'vitest';
import { credentialsFor } from '../../src/image/auth.js';
import { pickPlatform } from '../../src/image/archive.js';
import { cpuVariant, type IndexJson, normalizePlatform, type PlatformSpec, runtimePlatform, selectPlatform } from '../../src/image/types.js';

const entry = (p: PlatformSpec) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${p.os}-${p.architecture}-${p.variant ?? 'none'}`,
  size: 1,
  platform: p,
});
const index = (...ps: PlatformSpec[]): IndexJson => ({ schemaVersion: 2, manifests: ps.map(entry) });
const linux = (architecture: string, variant?: string): PlatformSpec => (variant ? { os: 'linux', architecture, variant } : { os: 'linux', architecture });
const pick = (want: PlatformSpec, ...ps: PlatformSpec[]) => selectPlatform(index(...ps), want)?.platform;

describe('cpuVariant', () => {
  const cpuinfo = (v: string) => `processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nCPU architecture: ${v}\nCPU variant\t: 0x0\n`;
  it('reads 32-bit arm variants from /proc/cpuinfo as containerd does', () => {
    expect(cpuVariant('arm', cpuinfo('7'), undefined)).toBe('v7');
    expect(cpuVariant('arm', cpuinfo('8'), '7')).toBe('v8');
    expect(cpuVariant('arm', cpuinfo('6TEJ'), undefined)).toBe('v6');
    expect(cpuVariant('arm', cpuinfo('5TE'), undefined)).toBe('v5');
    expect(cpuVariant('arm', cpuinfo('?(12)'), undefined)).toBe('v7');
  });
  it("falls back to the runtime's arm_version; arm64 is v8; others have none", () => {
    expect(cpuVariant('arm', undefined, '6')).toBe('v6');
    expect(cpuVariant('arm', cpuinfo('constructor'), '7')).toBe('v7');
    expect(cpuVariant('arm', 'no such field', undefined)).toBeUndefined();
    expect(cpuVariant('arm64', undefined, undefined)).toBe('v8');
    expect(cpuVariant('amd64', cpuinfo('7'), '7')).toBeUndefined();
  });
});

describe('normalizePlatform', () => {
  it('maps aliases and default variants like containerd', () => {
    expect(normalizePlatform(linux('aarch64', 'v8'))).toEqual(linux('arm64'));
    expect(normalizePlatform(linux('x86_64'))).toEqual(linux('amd64'));
    expect(normalizePlatform(linux('amd64', 'v1'))).toEqual(linux('amd64'));
    expect(normalizePlatform(linux('armhf'))).toEqual(linux('arm', 'v7'));
    expect(normalizePlatform(linux('armel'))).toEqual(linux('arm', 'v6'));
    expect(normalizePlatform(linux('arm'))).toEqual(linux('arm', 'v7'));
    expect(normalizePlatform({ os: 'Linux', architecture: 'i386' })).toEqual(linux('386'));
  });
});

describe('selectPlatform ranks variants', () => {
  it('32-bit arm: the exact variant, else the newest older one, never a newer one', () => {
    expect(pick(linux('arm', 'v7'), linux('arm', 'v5'), linux('arm', 'v6'), linux('arm', 'v8'))).toEqual(linux('arm', 'v6'));
    expect(pick(linux('arm', 'v7'), linux('arm', 'v5'), linux('arm', 'v7'), linux('arm', 'v6'))).toEqual(linux('arm', 'v7'));
    expect(pick(linux('arm', 'v7'), linux('arm', 'v8'))).toBeUndefined();
    expect(pick(linux('arm', 'v6'), linux('arm'), linux('arm', 'v5'))).toEqual(linux('arm', 'v5')); // bare arm is v7
    expect(pick(linux('arm', 'v6'), linux('arm'))).toBeUndefined();
    expect(pick(linux('arm', 'v8'), linux('arm', 'v6'), linux('arm', 'v7'))).toEqual(linux('arm', 'v7'));
    expect(pick(linux('arm', 'v7'), linux('arm'), linux('arm', 'v7'))).toEqual(linux('arm')); // equals: the first
  });
  it('arm64 is v8 by default; amd64 without a detected variant takes only the baseline', () => {
    expect(pick(linux('arm64', 'v8'), linux('arm64', 'v9'), linux('arm64'))).toEqual(linux('arm64'));
    expect(pick(linux('arm64', 'v8'), linux('arm64', 'v9'))).toBeUndefined();
    expect(pick(linux('arm64'), linux('aarch64', 'v8'))).toEqual(linux('aarch64', 'v8'));
    expect(pick(linux('amd64'), linux('amd64', 'v3'), linux('amd64'))).toEqual(linux('amd64'));
    expect(pick(linux('amd64'), linux('amd64', 'v3'))).toBeUndefined();
    expect(pick(linux('amd64'), { os: 'windows', architecture: 'amd64' })).toBeUndefined();
  });
  it('archive imports pick the same way for this machine', () => {
    const me = runtimePlatform();
    const idx = index({ ...me, variant: 'v99' }, me);
    expect(selectPlatform(idx)?.platform).toEqual(me);
    expect(pickPlatform(idx, 'index').platform).toEqual(me);
    expect(() => pickPlatform(index({ ...me, variant: 'v99' }), 'index')).toThrow(/no manifest for .*has: linux\/\w+\/v99/);
  });
});

describe('credentialsFor', () => {
  const basic = { username: 'u', password: 'p' };
  it('without a server address, every endpoint (mirrors too) gets them', () => {
    expect(credentialsFor(basic, 'mirror.example')).toBe(basic);
    expect(credentialsFor(basic, 'registry-1.docker.io')).toBe(basic);
    expect(credentialsFor({ serverAddress: 'x' }, 'x')).toBeUndefined();
    expect(credentialsFor(undefined, 'x')).toBeUndefined();
  });
  it('with one, only the endpoint it names, as a host or URL; Docker Hub by any of its names', () => {
    for (const serverAddress of ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      const a = { ...basic, serverAddress };
      expect(credentialsFor(a, 'registry-1.docker.io')).toBe(a);
      expect(credentialsFor(a, 'mirror.gcr.io')).toBeUndefined();
    }
    const a = { auth: Buffer.from('u:p').toString('base64'), serverAddress: 'http://Reg.Example:5000/' };
    expect(credentialsFor(a, 'reg.example:5000')).toBe(a);
    expect(credentialsFor(a, 'reg.example')).toBeUndefined();
    expect(credentialsFor(a, '127.0.0.1:5000')).toBeUndefined();
    const tokens = { identityToken: 'rt', registryToken: 'bt', serverAddress: 'quay.io' };
    expect(credentialsFor(tokens, 'quay.io')).toBe(tokens);
    expect(credentialsFor(tokens, 'mirror.example')).toBeUndefined();
  });
});
