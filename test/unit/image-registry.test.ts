import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PeapodError } from '../../src/errors.js';
import { basicCredentials, dockerConfigAuth, parseWwwAuthenticate, TokenCache } from '../../src/image/auth.js';
import { endpointsFor, parseMirrorFlag, selectPlatform } from '../../src/image/registry.js';
import type { IndexJson } from '../../src/image/types.js';

function invalid(fn: () => unknown, re: RegExp) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PeapodError);
  expect((err as PeapodError).kind).toBe('InvalidArgument');
  expect((err as Error).message).toMatch(re);
}

describe('parseMirrorFlag', () => {
  it('accepts HOST=URL', () => {
    expect(parseMirrorFlag('registry.k8s.io=http://127.0.0.1:5000')).toEqual({ host: 'registry.k8s.io', endpoint: 'http://127.0.0.1:5000' });
    expect(parseMirrorFlag('docker.io=https://mirror.gcr.io/')).toEqual({ host: 'docker.io', endpoint: 'https://mirror.gcr.io' });
    expect(parseMirrorFlag('host:5000=https://m.example/prefix')).toEqual({ host: 'host:5000', endpoint: 'https://m.example/prefix' });
    expect(parseMirrorFlag('Quay.IO=https://m.example')).toEqual({ host: 'quay.io', endpoint: 'https://m.example' });
  });
  it('rejects malformed flags with a clear message', () => {
    invalid(() => parseMirrorFlag('registry.k8s.io'), /want HOST=URL/);
    invalid(() => parseMirrorFlag('=http://x'), /want HOST=URL/);
    invalid(() => parseMirrorFlag('registry.k8s.io='), /empty endpoint/);
    invalid(() => parseMirrorFlag('registry.k8s.io=127.0.0.1:5000'), /must start with http:\/\/ or https:\/\//);
    invalid(() => parseMirrorFlag('registry.k8s.io=ftp://x'), /must start with http/);
    invalid(() => parseMirrorFlag('bad host=http://x'), /not a registry host/);
    invalid(() => parseMirrorFlag('a=http://u:p@x'), /credentials/);
    invalid(() => parseMirrorFlag('a=http://x/?q=1'), /query/);
    invalid(() => parseMirrorFlag('a=http://'), /not a URL/);
  });
});

describe('parseWwwAuthenticate', () => {
  it('parses a bearer challenge as Docker Hub sends it', () => {
    expect(
      parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'),
    ).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ]);
  });
  it('handles several challenges, spaces, unquoted values, escapes and commas in quotes', () => {
    expect(parseWwwAuthenticate('Basic realm="a, b", Bearer realm=https://t/x , scope="repository:x:pull,push", error="insufficient_scope"')).toEqual([
      { scheme: 'basic', params: { realm: 'a, b' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', scope: 'repository:x:pull,push', error: 'insufficient_scope' } },
    ]);
    expect(parseWwwAuthenticate('Basic realm="say \\"hi\\""')).toEqual([{ scheme: 'basic', params: { realm: 'say "hi"' } }]);
    expect(parseWwwAuthenticate('BASIC')).toEqual([{ scheme: 'basic', params: {} }]);
    expect(parseWwwAuthenticate('Negotiate abc123==, Basic realm=x')).toEqual([
      { scheme: 'negotiate', params: { token68: 'abc123==' } },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
    expect(parseWwwAuthenticate('Bearer REALM="r"')[0]!.params).toEqual({ realm: 'r' });
  });
  it('survives garbage', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('=x, ,,')).toEqual([]);
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
  });
});

describe('endpointsFor', () => {
  it('Docker Hub: mirrors first, then registry-1.docker.io over https', () => {
    expect(endpointsFor({ mirrors: { 'docker.io': ['https://mirror.gcr.io'] }, insecure: [] }, 'docker.io')).toEqual([
      { base: 'https://mirror.gcr.io/v2', host: 'mirror.gcr.io', mirror: true },
      { base: 'https://registry-1.docker.io/v2', host: 'registry-1.docker.io', mirror: false },
    ]);
    // mirrors keyed by an alias of Docker Hub count too; exclusive drops the upstream
    expect(endpointsFor({ mirrors: { 'index.docker.io': ['http://10.0.0.1:5000/v2/'] }, insecure: [], exclusiveMirrors: ['docker.io'] }, 'docker.io')).toEqual([
      { base: 'http://10.0.0.1:5000/v2', host: '10.0.0.1:5000', mirror: true },
    ]);
  });
  it('insecure and loopback hosts are plain HTTP; a mirror path prefix is kept', () => {
    expect(endpointsFor({ mirrors: {}, insecure: ['reg.local:5000'] }, 'reg.local:5000')).toEqual([{ base: 'http://reg.local:5000/v2', host: 'reg.local:5000', mirror: false }]);
    expect(endpointsFor({ mirrors: {}, insecure: [] }, 'localhost:5000')[0]!.base).toBe('http://localhost:5000/v2');
    expect(endpointsFor({ mirrors: {}, insecure: [] }, '127.0.0.1:5000')[0]!.base).toBe('http://127.0.0.1:5000/v2');
    expect(endpointsFor({ mirrors: {}, insecure: [] }, 'quay.io')[0]!.base).toBe('https://quay.io/v2');
    expect(endpointsFor({ mirrors: { 'quay.io': ['https://m.example/cache/quay'] }, insecure: [] }, 'quay.io')[0]!.base).toBe('https://m.example/cache/quay/v2');
  });
});

describe('selectPlatform', () => {
  const d = (arch: string, variant?: string, os = 'linux') => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${arch}${variant ?? ''}${os}`,
    size: 1,
    platform: variant ? { os, architecture: arch, variant } : { os, architecture: arch },
  });
  const idx = (...m: ReturnType<typeof d>[]): IndexJson => ({ schemaVersion: 2, manifests: m });
  it('matches os and architecture, preferring the right variant', () => {
    expect(selectPlatform(idx(d('arm64'), d('amd64')), { os: 'linux', architecture: 'amd64' })?.digest).toBe('sha256:amd64linux');
    expect(selectPlatform(idx(d('arm', 'v6'), d('arm', 'v7')), { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest).toBe('sha256:armv7linux');
    expect(selectPlatform(idx(d('arm64', 'v9'), d('arm64', 'v8')), { os: 'linux', architecture: 'arm64' })?.digest).toBe('sha256:arm64v8linux');
    expect(selectPlatform(idx(d('amd64', undefined, 'windows'), d('arm64')), { os: 'linux', architecture: 'amd64' })).toBeUndefined();
    expect(selectPlatform({ schemaVersion: 2, manifests: [{ mediaType: 'x', digest: 'sha256:only', size: 1 }] }, { os: 'linux', architecture: 'amd64' })?.digest).toBe('sha256:only');
  });
});

describe('credentials', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  it('basicCredentials from username/password or auth', () => {
    expect(basicCredentials({ username: 'u', password: 'p' })).toEqual({ username: 'u', password: 'p' });
    expect(basicCredentials({ auth: Buffer.from('u:p:q').toString('base64') })).toEqual({ username: 'u', password: 'p:q' });
    expect(basicCredentials({ registryToken: 't' })).toBeUndefined();
    expect(basicCredentials(undefined)).toBeUndefined();
  });
  it('docker config.json lookup by host, URL keys and Docker Hub aliases', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peapod-dockercfg-'));
    const p = path.join(dir, 'config.json');
    fs.writeFileSync(
      p,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: 'aHViOnB3' },
          'reg.local:5000': { username: 'a', password: 'b' },
          'https://ghcr.io': { identitytoken: 'rt' },
          'empty.example': {},
        },
      }),
    );
    expect(dockerConfigAuth(p, 'registry-1.docker.io')).toEqual({ auth: 'aHViOnB3' });
    expect(dockerConfigAuth(p, 'docker.io')).toEqual({ auth: 'aHViOnB3' });
    expect(dockerConfigAuth(p, 'reg.local:5000')).toEqual({ username: 'a', password: 'b' });
    expect(dockerConfigAuth(p, 'reg.local')).toBeUndefined();
    expect(dockerConfigAuth(p, 'ghcr.io')).toEqual({ identityToken: 'rt' });
    expect(dockerConfigAuth(p, 'empty.example')).toBeUndefined();
    expect(dockerConfigAuth(path.join(dir, 'missing.json'), 'x')).toBeUndefined();
    fs.writeFileSync(p, '{');
    expect(() => dockerConfigAuth(p, 'x')).toThrow(/not valid JSON/);
  });
  it('TokenCache expires entries (with a 10 s margin)', () => {
    let now = 0;
    const c = new TokenCache(() => now);
    c.set('k', 't', 60);
    expect(c.get('k')).toBe('t');
    now = 49_000;
    expect(c.get('k')).toBe('t');
    now = 50_000;
    expect(c.get('k')).toBeUndefined();
    c.set('short', 't', 5); // too short to cache
    expect(c.get('short')).toBeUndefined();
  });
});
