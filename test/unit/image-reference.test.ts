import { describe, expect, it } from 'vitest';
import {
  familiarString,
  isTagOnly,
  isValidDigest,
  normalizeReference,
  parseReference,
  repository,
  tryParseReference,
} from '../../src/image/reference.js';
import { PeapodError } from '../../src/errors.js';

const HEX = 'a'.repeat(64);
const DIG = `sha256:${HEX}`;

describe('normalizeReference (Docker semantics)', () => {
  const cases: Array<[string, string]> = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/user/app:v1', 'docker.io/user/app:v1'],
    ['user/app', 'docker.io/user/app:latest'],
    ['user/app/sub', 'docker.io/user/app/sub:latest'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
    ['host:5000/x', 'host:5000/x:latest'],
    ['host:5000/x:tag', 'host:5000/x:tag'],
    ['localhost/x', 'localhost/x:latest'],
    ['localhost:5000/a/b:c', 'localhost:5000/a/b:c'],
    ['peapod.local/pause', 'peapod.local/pause:latest'],
    ['[::1]:5000/x:y', '[::1]:5000/x:y'],
    [`busybox@${DIG}`, `docker.io/library/busybox@${DIG}`],
    [`busybox:1@${DIG}`, `docker.io/library/busybox:1@${DIG}`],
    [`host:5000/x@${DIG}`, `host:5000/x@${DIG}`],
    ['a_b.c-d__e---f', 'docker.io/library/a_b.c-d__e---f:latest'],
    ['x:Tag_1.0-rc', 'docker.io/library/x:Tag_1.0-rc'],
    // A first component with uppercase letters can't be a path, so it is a host.
    ['Host/x', 'Host/x:latest'],
    ['My.Registry/x', 'My.Registry/x:latest'],
    ['Host', ''],
  ];
  for (const [input, want] of cases) {
    it(`${input} → ${want || 'error'}`, () => {
      if (want === '') expect(() => normalizeReference(input)).toThrow(PeapodError);
      else expect(normalizeReference(input)).toBe(want);
    });
  }

  it('is idempotent', () => {
    for (const [input, want] of cases) {
      if (want) expect(normalizeReference(want)).toBe(normalizeReference(input));
    }
  });
});

describe('parseReference rejects what Docker rejects', () => {
  const bad = [
    '',
    ' busybox',
    'Busybox',
    'docker.io/Library/busybox',
    'busybox:',
    'busybox:-tag',
    `busybox:${'t'.repeat(129)}`,
    'busybox@sha256:abc',
    `busybox@sha256:${'A'.repeat(64)}`,
    `busybox@sha256:${'a'.repeat(63)}`,
    'busybox@',
    HEX,
    'a//b',
    '/busybox',
    'busybox/',
    'a..b',
    '-a',
    'host:port/x',
    `docker.io/${'a'.repeat(250)}`,
    'a b',
  ];
  for (const b of bad) {
    it(JSON.stringify(b.length > 40 ? b.slice(0, 40) + '…' : b), () => {
      let err: unknown;
      try {
        parseReference(b);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PeapodError);
      expect((err as PeapodError).kind).toBe('InvalidArgument');
      expect(tryParseReference(b)).toBeUndefined();
    });
  }
});

describe('reference parts', () => {
  it('splits domain, path, tag and digest', () => {
    const r = parseReference(`host:5000/a/b:v2@${DIG}`);
    expect(r).toEqual({ domain: 'host:5000', path: 'a/b', tag: 'v2', digest: DIG });
    expect(repository(r)).toBe('host:5000/a/b');
  });
  it('defaultTag=false leaves the tag off', () => {
    expect(parseReference('busybox', { defaultTag: false }).tag).toBeUndefined();
    expect(parseReference('busybox').tag).toBe('latest');
  });
  it('digest-only references get no tag', () => {
    expect(parseReference(`busybox@${DIG}`).tag).toBeUndefined();
  });
  it('familiarString shortens docker.io names', () => {
    expect(familiarString(parseReference('busybox'))).toBe('busybox:latest');
    expect(familiarString(parseReference('user/app:1'))).toBe('user/app:1');
    expect(familiarString(parseReference('host:5000/x'))).toBe('host:5000/x:latest');
  });
  it('isTagOnly distinguishes a bare tag from a reference', () => {
    expect(isTagOnly('3.9')).toBe(true);
    expect(isTagOnly('latest')).toBe(true);
    expect(isTagOnly('registry.k8s.io/pause:3.9')).toBe(false);
    expect(isTagOnly('a/b')).toBe(false);
    expect(isTagOnly('x:y')).toBe(false);
  });
  it('isValidDigest', () => {
    expect(isValidDigest(DIG)).toBe(true);
    expect(isValidDigest(`sha256:${'A'.repeat(64)}`)).toBe(false);
    expect(isValidDigest('sha256:abcd')).toBe(false);
    expect(isValidDigest(`sha512:${'b'.repeat(128)}`)).toBe(true);
    expect(isValidDigest(HEX)).toBe(false);
  });
});
