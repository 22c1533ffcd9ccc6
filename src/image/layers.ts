// Layer cache: each layer unpacked once, keyed by chain ID:
//   <root>/layers/<chainid hex>/fs         the layer's files (overlay lowerdir)
//   <root>/layers/<chainid hex>/meta.json  what the unpack found
// A layer appears atomically: it is unpacked into <root>/layers/.tmp-…, and the
// whole directory is renamed into place once complete; a failed unpack is removed.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { internal, invalidArgument, PeapodError } from '../errors.js';
import type { BlobStore } from './blobs.js';
import { tempName } from './fsutil.js';
import { writeFileAtomic } from '../util/fs.js';
import { type LowerLayer, unpackLayer, type UnpackOptions, type UnpackResult } from './unpack.js';

export interface LayerMeta {
  chainId: string;
  diffId: string;
  /** Blob it was unpacked from. */
  digest: string;
  compression: string;
  tarSize: number;
  opaqueDirs: string[];
  opaqueXattr: boolean;
  unappliedXattrs: UnpackResult['unappliedXattrs'];
  skippedDevices: string[];
}

/** chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + " " + diff[n]). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    if (out.length === 0) out.push(d);
    else out.push(`sha256:${createHash('sha256').update(`${out[out.length - 1]} ${d}`).digest('hex')}`);
  }
  return out;
}

const hex = (d: string) => d.slice(d.indexOf(':') + 1);

export class LayerCache {
  readonly dir: string;
  private readonly metaCache = new Map<string, LayerMeta>();
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(
    root: string,
    private readonly blobs: BlobStore,
    private readonly unpackOpts: Pick<UnpackOptions, 'setxattr' | 'log' | 'isRoot'>,
  ) {
    this.dir = path.join(root, 'layers');
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    for (const n of await fsp.readdir(this.dir)) {
      if (n.startsWith('.tmp-')) await fsp.rm(path.join(this.dir, n), { recursive: true, force: true });
    }
  }

  fsPath(chainId: string): string {
    return path.join(this.dir, hex(chainId), 'fs');
  }

  has(chainId: string): boolean {
    return fs.existsSync(path.join(this.dir, hex(chainId), 'meta.json'));
  }

  meta(chainId: string): LayerMeta | undefined {
    const c = this.metaCache.get(chainId);
    if (c) return c;
    try {
      const m = JSON.parse(fs.readFileSync(path.join(this.dir, hex(chainId), 'meta.json'), 'utf8')) as LayerMeta;
      this.metaCache.set(chainId, m);
      return m;
    } catch {
      return undefined;
    }
  }

  list(): string[] {
    try {
      return fs
        .readdirSync(this.dir)
        .filter((n) => /^[a-f0-9]{64}$/.test(n))
        .map((n) => `sha256:${n}`);
    } catch {
      return [];
    }
  }

  /**
   * Makes sure every layer of the stack is unpacked (bottom first).
   * `layers[i]` is the blob for diffIds[i]; chain IDs are derived here.
   */
  async ensure(layers: Array<{ digest: string; diffId: string }>): Promise<string[]> {
    const chains = chainIds(layers.map((l) => l.diffId));
    for (let i = 0; i < layers.length; i++) {
      const chainId = chains[i]!;
      if (this.has(chainId)) continue;
      let p = this.inflight.get(chainId);
      if (!p) {
        p = this.unpackOne(chainId, layers[i]!, chains.slice(0, i).reverse()).finally(() => this.inflight.delete(chainId));
        this.inflight.set(chainId, p);
      }
      await p;
    }
    return chains;
  }

  private async unpackOne(chainId: string, layer: { digest: string; diffId: string }, lowerChains: string[]): Promise<void> {
    if (!this.blobs.has(layer.digest)) {
      throw invalidArgument(`layer ${layer.digest} (diff ${layer.diffId}) is missing from the content store`);
    }
    const lowers: LowerLayer[] = lowerChains.map((c) => ({ fs: this.fsPath(c), opaque: new Set(this.meta(c)?.opaqueDirs ?? []) }));
    const tmp = tempName(this.dir, '.tmp-');
    await fsp.mkdir(path.join(tmp, 'fs'), { recursive: true, mode: 0o755 });
    let ok = false;
    try {
      const label = `layer ${layer.digest}`;
      const src = this.blobs.openRead(layer.digest);
      let res: UnpackResult;
      try {
        res = await unpackLayer(src, path.join(tmp, 'fs'), { ...this.unpackOpts, label, lowers });
      } finally {
        src.destroy();
      }
      if (res.diffId !== layer.diffId) {
        throw invalidArgument(`${label}: uncompressed content digest ${res.diffId} does not match the config's diff_id ${layer.diffId}`);
      }
      const meta: LayerMeta = {
        chainId,
        diffId: res.diffId,
        digest: layer.digest,
        compression: res.compression,
        tarSize: res.tarSize,
        opaqueDirs: res.opaqueDirs,
        opaqueXattr: res.opaqueXattr,
        unappliedXattrs: res.unappliedXattrs,
        skippedDevices: res.skippedDevices,
      };
      writeFileAtomic(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 1), { mode: 0o644, durable: true });
      const final = path.join(this.dir, hex(chainId));
      try {
        await fsp.rename(tmp, final);
      } catch (e) {
        // Someone else completed it meanwhile (another process): keep theirs.
        if (this.has(chainId)) return;
        throw e;
      }
      this.metaCache.set(chainId, meta);
      ok = true;
      this.unpackOpts.log?.('debug', 'layer unpacked', { chainId, digest: layer.digest, entries: res.entries });
    } catch (e) {
      if (e instanceof PeapodError) throw e;
      throw internal(`unpacking layer ${layer.digest}: ${(e as Error).message}`, e);
    } finally {
      if (!ok) await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  async remove(chainId: string): Promise<void> {
    const d = path.join(this.dir, hex(chainId));
    // Rename first so a crash mid-delete never leaves a half layer under its real name.
    const tmp = tempName(this.dir, '.tmp-');
    try {
      await fsp.rename(d, tmp);
    } catch {
      return;
    }
    this.metaCache.delete(chainId);
    await fsp.rm(tmp, { recursive: true, force: true });
  }

  /** An empty directory, the lowerdir for images without layers. */
  async emptyLayer(): Promise<string> {
    const p = path.join(this.dir, 'empty');
    await fsp.mkdir(p, { recursive: true, mode: 0o755 });
    return p;
  }
}
