// Content-addressed blob store: <root>/blobs/sha256/<hex>.
//
// Every write streams into <root>/ingest/<tmp> while hashing, is checked against
// the expected digest/size (if given), fsynced, then renamed into place. A blob
// that fails verification is deleted: nothing partial is ever visible under blobs/.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { invalidArgument, notFound } from '../errors.js';
import { errnoCode, tempName } from './fsutil.js';
import { isValidDigest } from './reference.js';

export interface BlobInfo {
  digest: string;
  size: number;
  /** False when an identical blob was already stored. */
  created?: boolean;
}

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

export function assertSha256Digest(digest: string, what = 'digest'): void {
  if (!SHA256_RE.test(digest)) {
    if (isValidDigest(digest)) throw invalidArgument(`${what} ${digest}: unsupported digest algorithm (only sha256)`);
    throw invalidArgument(`${what} "${digest}" is not a valid sha256 digest`);
  }
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export class BlobStore {
  readonly blobDir: string;
  readonly ingestDir: string;

  constructor(readonly root: string) {
    this.blobDir = path.join(root, 'blobs', 'sha256');
    this.ingestDir = path.join(root, 'ingest');
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.blobDir, { recursive: true });
    // Leftovers of an interrupted ingest are never valid blobs: drop them.
    await fsp.rm(this.ingestDir, { recursive: true, force: true });
    await fsp.mkdir(this.ingestDir, { recursive: true });
  }

  path(digest: string): string {
    assertSha256Digest(digest);
    return path.join(this.blobDir, digest.slice('sha256:'.length));
  }

  has(digest: string): boolean {
    if (!SHA256_RE.test(digest)) return false;
    try {
      return fs.statSync(this.path(digest)).isFile();
    } catch {
      return false;
    }
  }

  size(digest: string): number {
    return fs.statSync(this.path(digest)).size;
  }

  /**
   * Streams `src` into the store. With `expected.digest` the data must hash to it
   * (and with `expected.size`, have that length), else InvalidArgument and nothing
   * is kept. Returns the digest and size actually written.
   */
  async ingest(src: AsyncIterable<Uint8Array>, expected: { digest?: string; size?: number; label?: string } = {}): Promise<BlobInfo> {
    if (expected.digest !== undefined) assertSha256Digest(expected.digest);
    const label = expected.label ?? expected.digest ?? 'blob';
    if (expected.digest !== undefined && this.has(expected.digest)) {
      // Already present and verified when it was written: drain and return.
      let n = 0;
      const h = createHash('sha256');
      for await (const c of src) {
        h.update(c);
        n += c.byteLength;
      }
      const got = `sha256:${h.digest('hex')}`;
      if (got !== expected.digest) throw invalidArgument(`${label}: digest mismatch: expected ${expected.digest}, got ${got}`);
      return { digest: got, size: n, created: false };
    }
    const tmp = tempName(this.ingestDir, 'ingest-');
    const fh = await fsp.open(tmp, 'wx', 0o644);
    const hash = createHash('sha256');
    let size = 0;
    let ok = false;
    try {
      for await (const chunk of src) {
        hash.update(chunk);
        size += chunk.byteLength;
        if (expected.size !== undefined && size > expected.size) {
          throw invalidArgument(`${label}: size mismatch: more than the expected ${expected.size} bytes`);
        }
        await fh.write(chunk);
      }
      const digest = `sha256:${hash.digest('hex')}`;
      if (expected.size !== undefined && size !== expected.size) {
        throw invalidArgument(`${label}: size mismatch: expected ${expected.size} bytes, got ${size}`);
      }
      if (expected.digest !== undefined && digest !== expected.digest) {
        throw invalidArgument(`${label}: digest mismatch: expected ${expected.digest}, got ${digest}`);
      }
      await fh.sync();
      await fh.close();
      const created = !this.has(digest);
      await fsp.rename(tmp, this.path(digest));
      ok = true;
      return { digest, size, created };
    } finally {
      if (!ok) {
        await fh.close().catch(() => {});
        await fsp.rm(tmp, { force: true });
      }
    }
  }

  async ingestBuffer(data: Uint8Array, expectedDigest?: string): Promise<BlobInfo> {
    const exp: { digest?: string; size: number } = { size: data.byteLength };
    if (expectedDigest !== undefined) exp.digest = expectedDigest;
    return this.ingest(
      (async function* () {
        yield data;
      })(),
      exp,
    );
  }

  async read(digest: string, maxBytes = 16 << 20): Promise<Buffer> {
    const p = this.path(digest);
    let st: fs.Stats;
    try {
      st = await fsp.stat(p);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound(`blob ${digest} not found`);
      throw e;
    }
    if (st.size > maxBytes) throw invalidArgument(`blob ${digest} is ${st.size} bytes, more than the ${maxBytes} allowed for JSON`);
    return fsp.readFile(p);
  }

  async readJson<T>(digest: string): Promise<T> {
    const buf = await this.read(digest);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw invalidArgument(`blob ${digest} is not valid JSON: ${(e as Error).message}`);
    }
  }

  openRead(digest: string): fs.ReadStream {
    return fs.createReadStream(this.path(digest), { highWaterMark: 1 << 20 });
  }

  /** Synchronous, so a caller's check (is it pinned?) and the unlink are one step. */
  delete(digest: string): void {
    fs.rmSync(this.path(digest), { force: true });
  }

  /** All digests in the store. */
  list(): string[] {
    try {
      return fs.readdirSync(this.blobDir).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
    } catch {
      return [];
    }
  }
}
