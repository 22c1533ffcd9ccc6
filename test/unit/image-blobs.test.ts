import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore, sha256Digest } from '../../src/image/blobs.js';
import { chainIds } from '../../src/image/layers.js';
import { PeapodError } from '../../src/errors.js';
import { chunks, tmpDir } from '../support/image-tar.js';

let root: string;
let store: BlobStore;
beforeEach(async () => {
  root = tmpDir('peapod-blobs-');
  store = new BlobStore(root);
  await store.init();
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const data = Buffer.alloc(300_000, 'abc');
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
const stored = () => fs.readdirSync(path.join(root, 'blobs/sha256'));
const ingesting = () => fs.readdirSync(path.join(root, 'ingest'));

async function rejects(p: Promise<unknown>, re: RegExp) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PeapodError);
  expect((err as PeapodError).kind).toBe('InvalidArgument');
  expect((err as Error).message).toMatch(re);
}

describe('BlobStore: verified ingest', () => {
  it('stores a blob under its digest with the exact bytes', async () => {
    const info = await store.ingest(chunks(data), { digest, size: data.length });
    expect(info).toEqual({ digest, size: data.length, created: true });
    expect(fs.readFileSync(path.join(root, 'blobs/sha256', digest.slice(7))).equals(data)).toBe(true);
    expect(store.has(digest)).toBe(true);
    expect(ingesting()).toEqual([]);
    // again: verified, not duplicated
    expect((await store.ingest(chunks(data), { digest })).created).toBe(false);
    expect(stored()).toHaveLength(1);
  });

  it('computes the digest when none is expected', async () => {
    expect((await store.ingest(chunks(data))).digest).toBe(digest);
    expect(sha256Digest(data)).toBe(digest);
  });

  it('rejects a digest mismatch and keeps nothing', async () => {
    const other = Buffer.from(data);
    other[1000] ^= 1;
    await rejects(store.ingest(chunks(other), { digest, label: 'blob X' }), /blob X: digest mismatch: expected sha256:[a-f0-9]{64}, got sha256:/);
    expect(stored()).toEqual([]);
    expect(ingesting()).toEqual([]);
  });

  it('rejects a wrong size (short and long) and keeps nothing', async () => {
    await rejects(store.ingest(chunks(data), { digest, size: data.length + 1 }), /size mismatch/);
    await rejects(store.ingest(chunks(data), { digest, size: data.length - 1 }), /size mismatch/);
    expect(stored()).toEqual([]);
    expect(ingesting()).toEqual([]);
  });

  it('a failing source stream leaves nothing', async () => {
    async function* broken() {
      yield data.subarray(0, 1000);
      throw new Error('connection reset');
    }
    await expect(store.ingest(broken(), { digest })).rejects.toThrow(/connection reset/);
    expect(stored()).toEqual([]);
    expect(ingesting()).toEqual([]);
  });

  it('rejects malformed and unsupported digests', async () => {
    await rejects(store.ingest(chunks(data), { digest: 'sha256:abc' }), /not a valid sha256 digest/);
    await rejects(store.ingest(chunks(data), { digest: `sha512:${'a'.repeat(128)}` }), /unsupported digest algorithm/);
    expect(() => store.path('../../etc/passwd')).toThrow(PeapodError);
  });

  it('init() removes ingest leftovers', async () => {
    fs.writeFileSync(path.join(root, 'ingest', 'ingest-1-x'), 'partial');
    await new BlobStore(root).init();
    expect(ingesting()).toEqual([]);
  });
});

describe('chainIds', () => {
  it('follows the OCI definition', () => {
    const a = `sha256:${'a'.repeat(64)}`;
    const b = `sha256:${'b'.repeat(64)}`;
    const c = `sha256:${'c'.repeat(64)}`;
    const ab = `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`;
    const abc = `sha256:${createHash('sha256').update(`${ab} ${c}`).digest('hex')}`;
    expect(chainIds([a, b, c])).toEqual([a, ab, abc]);
    expect(chainIds([])).toEqual([]);
  });
});
