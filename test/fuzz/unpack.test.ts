// Hostile layers: random tar entries ("..", absolute names, symlinks and then
// writes through them, hardlinks, devices) and mutated or truncated byte
// streams of a valid layer. The unpacker must never write outside the target,
// never hang, and fail only with typed errors.
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeapodError } from '../../src/errors.js';
import { unpackLayer } from '../../src/image/unpack.js';
import { fuzzParams, fuzzTimeout, typedOnly, withinMs } from '../support/fuzz.js';
import { chunks, describeTree, gzip, makeTar, tmpDir, type TarEntry } from '../support/image-tar.js';

let base: string;
let canary: string;
let canaryBefore: Map<string, string>;
let n = 0;

beforeAll(() => {
  base = tmpDir('peapod-fuzz-unpack-');
  canary = path.join(base, 'canary');
  fs.mkdirSync(path.join(canary, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(canary, 'file'), 'untouched');
  fs.writeFileSync(path.join(canary, 'sub', 'deep'), 'untouched too');
  canaryBefore = describeTree(canary);
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

/** Unpacks into a fresh dir beside the canary; checks the canary and the base dir afterwards. */
async function unpackChecked(tar: Buffer, chunkSize: number): Promise<void> {
  const root = path.join(base, `root-${n++}`);
  fs.mkdirSync(root);
  try {
    const res = await withinMs(typedOnly(() => unpackLayer(chunks(tar, chunkSize), root, { isRoot: true })), 10_000, 'unpack');
    if (res instanceof PeapodError) expect(res.kind).toBe('InvalidArgument');
    expect(describeTree(canary)).toEqual(canaryBefore);
    // Nothing appeared in the base dir but the roots and the canary.
    for (const name of fs.readdirSync(base)) expect(name === 'canary' || name.startsWith('root-'), name).toBe(true);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const component = fc.constantFrom('a', 'b', 'c', 'link', 'dir', '..', '.', '', 'canary', 'file', '.wh.a', '.wh..wh..opq', 'x'.repeat(120));
const relName = fc.array(component, { minLength: 1, maxLength: 5 }).map((p) => p.join('/'));
const name = fc.oneof(
  { weight: 5, arbitrary: relName },
  { weight: 1, arbitrary: relName.map((r) => `/${r}`) },
  { weight: 1, arbitrary: fc.constantFrom('../canary/file', '../../canary/file', 'link/file', 'link/sub/deep', 'dir/../../canary/x') },
);
// What a symlink or hardlink points at: inside, outside, absolute, at the canary.
const target = fc.oneof(
  relName,
  fc.constantFrom('/', '..', '../canary', '../../canary', '/etc', '/proc/self/root', 'a/../..'),
  fc.constant('CANARY'),
);

const entry: fc.Arbitrary<TarEntry> = fc
  .record({
    name,
    type: fc.constantFrom('file', 'file', 'directory', 'symlink', 'symlink', 'link', 'character-device', 'block-device', 'fifo'),
    content: fc.oneof(fc.constant('pwned'), fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u))),
    linkname: target,
    mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o000, 0o7777),
    devmajor: fc.nat(300),
    devminor: fc.nat(300),
  })
  .map((e): TarEntry => ({ ...e, linkname: e.linkname === 'CANARY' ? canary : e.linkname }));

// tar-stream refuses some headers when packing (e.g. empty names): those cases are skipped.
async function tarOf(entries: TarEntry[]): Promise<Buffer | undefined> {
  try {
    return await makeTar(entries.filter((e) => e.name !== ''));
  } catch {
    return undefined;
  }
}

describe('fuzz: layer unpacking', () => {
  it(
    'random entries never escape the root, never hang, fail only with InvalidArgument',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 4096 }), async (entries, chunkSize) => {
          const tar = await tarOf(entries);
          if (tar) await unpackChecked(tar, chunkSize);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'a symlink to the outside then a write through it never lands outside',
    async () => {
      const via = fc.constantFrom('l', 'd/l');
      await fc.assert(
        fc.asyncProperty(via, target, fc.constantFrom('file', 'directory', 'link', 'symlink'), fc.boolean(), async (link, to, type, gz) => {
          const entries: TarEntry[] = [
            { name: 'd', type: 'directory' },
            { name: link, type: 'symlink', linkname: to === 'CANARY' ? canary : to },
            { name: `${link}/file`, type: type as TarEntry['type'], content: 'pwned', linkname: '../canary/file' },
            { name: `${link}/sub/deep`, content: 'pwned' },
            { name: link, type: 'directory' },
            { name: `${link}/file`, content: 'pwned' },
          ];
          const tar = await tarOf(entries);
          if (tar) await unpackChecked(gz ? gzip(tar) : tar, 512);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'mutated, truncated and extended byte streams of a valid layer fail cleanly',
    async () => {
      const valid = await makeTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
        { name: 'bin/', type: 'directory' },
        { name: 'bin/sh', content: Buffer.alloc(3000, 7), mode: 0o755 },
        { name: 'bin/ls', type: 'link', linkname: 'bin/sh' },
        { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
        { name: 'usr/lib/', type: 'directory' },
        { name: 'usr/lib/x', content: 'x', pax: { 'SCHILY.xattr.user.k': 'v' } },
        { name: 'dev/', type: 'directory' },
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
        { name: '.wh.gone', content: '' },
      ]);
      const mutation = fc.oneof(
        fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), count: fc.integer({ min: 1, max: 8 }) }),
        fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
        fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 600 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.integer({ min: 1, max: 9000 }), async (muts, gz, chunkSize) => {
          let b: Buffer = Buffer.from(gz ? gzip(valid) : valid);
          for (const m of muts) {
            const at = b.length ? m.at % b.length : 0;
            if (m.kind === 'flip') for (let i = 0; i < m.count && at + i < b.length; i++) b[at + i] = m.value;
            else if (m.kind === 'truncate') b = b.subarray(0, at);
            else b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
          }
          await unpackChecked(b, chunkSize);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );
});
