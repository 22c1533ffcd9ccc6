// ImageService: the image subsystem's public API (what the CRI layer calls).
//
// On-disk layout under `root`:
//   blobs/sha256/<hex>        content store (manifests, configs, layers, verified)
//   ingest/                   temp files of blobs being written (wiped on open)
//   layers/<chainid>/fs       unpacked layers (overlay lowerdirs) + meta.json
//   layers/.tmp-*             layers being unpacked (wiped on open)
//   index.json                images and tags (atomic writes)
//
// resolve(ref) accepts, in this order:
//   1. a full image id: "sha256:<64 hex>" or "<64 hex>"
//   2. a reference: tag ("busybox" → docker.io/library/busybox:latest) or digest
//      reference ("busybox@sha256:…", matched against repoDigests, or against the
//      manifest digest of an image of that repository)
//   3. a unique id prefix of at least 3 hex chars ("sha256:" optional).
//      Ambiguous prefixes resolve to nothing.

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { failedPrecondition, internal, invalidArgument, isKind, notFound } from '../errors.js';
import { type ImportCandidate, pickPlatform, planImport, readArchive } from './archive.js';
import { assertSha256Digest, BlobStore, sha256Digest } from './blobs.js';
import { asAsyncIterable } from './fsutil.js';
import { diskUsage, PeriodicUsage, type MeasuredUsage } from '../util/disk-usage.js';
import { failpointAsync } from '../util/failpoint.js';
import { removeAtomicLeftovers, writeFileAtomic } from '../util/fs.js';
import { chainIds, LayerCache } from './layers.js';
import { formatReference, parseReference, repository, tryParseReference } from './reference.js';
import { copyRootfs, overlayAvailable, overlaySpec, type RootfsSpec } from './rootfs.js';
import { checkConfig, checkIndex, checkManifest } from './schema.js';
import type { ContainerConfig, Image, ImageConfigJson, IndexJson, LayerRecord, ManifestJson } from './types.js';
import { cliSetXattr, type SetXattr } from './xattr.js';

export type { Image, ContainerConfig } from './types.js';
export type { RootfsSpec, OverlaySpec, CopySpec } from './rootfs.js';

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface ImageServiceOptions {
  root: string;
  log?: LogFn;
  /** setxattr(2) implementation (e.g. from src/ffi). Default: `setfattr` CLI if installed, else none. */
  setxattr?: SetXattr;
  /** How long fsInfo's figures are reused (default 10 s, containerd's stats period). */
  fsUsagePeriodMs?: number;
}

/** What the store takes on its file system (ImageFsInfo). */
export interface FsUsage extends MeasuredUsage {
  mountpoint: string;
}

interface ImageRecord {
  id: string;
  manifestDigest: string;
  manifestSize: number;
  /** The manifest is peapod's, made for a docker-archive: no registry has its digest. */
  madeUpManifest?: true;
  /** Bytes of the index(es) the manifest was chosen from, which containerd counts in the size. */
  indexSize?: number;
  configDigest: string;
  configSize: number;
  layers: LayerRecord[];
  repoDigests: string[];
  config: ContainerConfig;
  os?: string;
  architecture?: string;
}

interface IndexState {
  version: 1;
  images: Record<string, ImageRecord>;
  /** normalised "repo:tag" → image id */
  tags: Record<string, string>;
  /** container id → image id */
}

const INDEX_FILE = 'index.json';

/** Where a committed manifest comes from (see ImageRecord). */
type ManifestOrigin = Pick<ImportCandidate, 'madeUp' | 'indexSize'>;

/** A manifest checked against the store, its layers unpacked (see unpackImage). */
interface Unpacked {
  manifestDigest: string;
  manifest: ReturnType<typeof checkManifest>;
  config: ReturnType<typeof checkConfig>;
  diffIds: string[];
  chains: string[];
}

/** Counts of holders by key: a key is held while its count is above zero. */
class Holds {
  private readonly counts = new Map<string, number>();
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  delete(key: string): void {
    const n = (this.counts.get(key) ?? 0) - 1;
    if (n > 0) this.counts.set(key, n);
    else this.counts.delete(key);
  }
  has(key: string): boolean {
    return this.counts.has(key);
  }
}

function addRepoDigest(rec: ImageRecord, rd: string): void {
  if (!rec.repoDigests.includes(rd)) rec.repoDigests.push(rd);
}

export class ImageService {
  private state: IndexState = { version: 1, images: {}, tags: {} };
  /**
   * Container id → image id. In memory only: containers live no longer than
   * the boot, and the container manager retains again for every container it
   * loads, so a create touches no image index on disk.
   */
  private readonly leases = new Map<string, string>();
  /**
   * Blobs and unpacked layers (chain IDs) that pulls and imports in flight
   * hold (see withBlobLease, import, unpackImage); collect() leaves them
   * alone, like containerd's GC with leased content.
   */
  private readonly heldBlobs = new Holds();
  private readonly heldChains = new Holds();
  /** Blob digest → the transfer storing it now (see ingestOnce). */
  private readonly transfers = new Map<string, Promise<unknown>>();
  private chain: Promise<unknown> = Promise.resolve();
  /** What fsInfo reports: the store's walk, at most once a period. */
  private readonly fsUsage: PeriodicUsage;

  private constructor(
    readonly root: string,
    private readonly blobs: BlobStore,
    private readonly layers: LayerCache,
    private readonly log: LogFn,
    fsUsagePeriodMs: number,
  ) {
    this.fsUsage = new PeriodicUsage(async () => {
      const started = performance.now();
      const usage = await diskUsage(root);
      log('debug', 'image store usage measured', { ...usage, ms: Math.round(performance.now() - started) });
      return usage;
    }, fsUsagePeriodMs);
  }

  static async open(opts: ImageServiceOptions): Promise<ImageService> {
    const root = path.resolve(opts.root);
    const log: LogFn = opts.log ?? (() => {});
    await fsp.mkdir(root, { recursive: true, mode: 0o700 });
    const setxattr = opts.setxattr ?? cliSetXattr();
    if (!setxattr) {
      log('warn', 'no setxattr available (no `setfattr`, none injected): layer xattrs such as security.capability are recorded, not applied; opaque dirs use explicit whiteouts');
    }
    const blobs = new BlobStore(root);
    await blobs.init();
    const layers = new LayerCache(root, blobs, { setxattr, log });
    await layers.init();
    for (const n of await fsp.readdir(root)) if (n.startsWith('.tmp-')) await fsp.rm(path.join(root, n), { force: true, recursive: true });
    await removeAtomicLeftovers(root);
    const svc = new ImageService(root, blobs, layers, log, opts.fsUsagePeriodMs ?? 10_000);
    await svc.load();
    return svc;
  }

  private async load(): Promise<void> {
    let raw: string | undefined;
    try {
      raw = await fsp.readFile(path.join(this.root, INDEX_FILE), 'utf8');
    } catch {
      raw = undefined;
    }
    if (raw !== undefined) {
      let s: IndexState;
      try {
        s = JSON.parse(raw) as IndexState;
      } catch (e) {
        throw internal(`image index ${path.join(this.root, INDEX_FILE)} is not valid JSON: ${(e as Error).message}`, e);
      }
      if (s.version !== 1) throw invalidArgument(`image index ${path.join(this.root, INDEX_FILE)}: unsupported version ${String(s.version)}`);
      this.state = { version: 1, images: s.images ?? {}, tags: s.tags ?? {} };
    }
    // Drop anything no image references (leftovers of a crash mid-remove or mid-import).
    await this.collect(new Set(this.blobs.list()), new Set(this.layers.list()));
  }

  /** Durable: blobs nothing indexes are collected at open. */
  private async persist(): Promise<void> {
    writeFileAtomic(path.join(this.root, INDEX_FILE), JSON.stringify(this.state, null, 1), { mode: 0o644, durable: true });
  }

  /** Serialises mutations. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  // ---------------------------------------------------------------- queries

  private toImage(r: ImageRecord): Image {
    const repoTags = Object.entries(this.state.tags)
      .filter(([, id]) => id === r.id)
      .map(([t]) => t)
      .sort();
    const img: Image = {
      id: r.id,
      repoTags,
      repoDigests: [...r.repoDigests].sort(),
      size: (r.indexSize ?? 0) + r.manifestSize + r.configSize + r.layers.reduce((a, l) => a + l.size, 0),
      config: r.config,
      manifestDigest: r.manifestDigest,
      chainIds: r.layers.map((l) => l.chainId),
    };
    if (r.os) img.os = r.os;
    if (r.architecture) img.architecture = r.architecture;
    const user = (r.config.User ?? '').split(':')[0] ?? '';
    if (/^\d+$/.test(user)) img.uid = Number(user);
    else if (user !== '') img.username = user;
    return img;
  }

  list(filterRef?: string): Image[] {
    if (filterRef) {
      const one = this.resolve(filterRef);
      return one ? [one] : [];
    }
    return Object.values(this.state.images)
      .map((r) => this.toImage(r))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private resolveId(ref: string): string | undefined {
    const s = ref.trim();
    if (s === '') return undefined;
    const full = /^(?:sha256:)?([a-f0-9]{64})$/.exec(s);
    if (full && this.state.images[`sha256:${full[1]}`]) return `sha256:${full[1]}`;
    const r = tryParseReference(s);
    if (r) {
      if (r.digest !== undefined) {
        const repo = repository(r);
        const want = `${repo}@${r.digest}`;
        for (const img of Object.values(this.state.images)) if (img.repoDigests.includes(want)) return img.id;
        for (const img of Object.values(this.state.images)) {
          if (img.manifestDigest === r.digest && !img.madeUpManifest && Object.entries(this.state.tags).some(([t, id]) => id === img.id && t.startsWith(`${repo}:`))) {
            return img.id;
          }
        }
      } else {
        const id = this.state.tags[formatReference(r)];
        if (id) return id;
      }
    }
    const prefix = /^(?:sha256:)?([a-f0-9]{3,64})$/.exec(s);
    if (prefix) {
      const hits = Object.keys(this.state.images).filter((id) => id.startsWith(`sha256:${prefix[1]}`));
      if (hits.length === 1) return hits[0];
    }
    return undefined;
  }

  resolve(ref: string): Image | undefined {
    const id = this.resolveId(ref);
    const r = id ? this.state.images[id] : undefined;
    return r ? this.toImage(r) : undefined;
  }

  /**
   * The image's whole config (created, os, architecture, config, rootfs,
   * history…) as stored: containerd's verbose ImageStatus gives it as
   * `imageSpec`. Undefined when there is no such image (removed meanwhile).
   */
  async imageConfig(imageId: string): Promise<ImageConfigJson | undefined> {
    const id = this.resolveId(imageId);
    if (!id) return undefined;
    try {
      return await this.blobs.readJson<ImageConfigJson>(this.state.images[id]!.configDigest);
    } catch (e) {
      if (isKind(e, 'NotFound') && !this.state.images[id]) return undefined;
      throw e;
    }
  }

  hasBlob(digest: string): boolean {
    return this.blobs.has(digest);
  }

  // -------------------------------------------------------------- mutations

  /**
   * Loads an OCI-layout or docker-archive tarball (optionally gzipped). The
   * archive is read and its layers unpacked outside the lock (a client's
   * upload or a large layer holds no pull or removal back), each blob held
   * from the moment it is read; only the records are written under it.
   */
  async import(stream: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, opts: { name?: string } = {}): Promise<Image[]> {
    if (opts.name !== undefined) parseReference(opts.name); // validate early
    const added = new Set<string>();
    const held: string[] = [];
    const unpacked: Unpacked[] = [];
    try {
      const archive = await readArchive(asAsyncIterable(stream), this.blobs, added, (d) => {
        held.push(d);
        this.heldBlobs.add(d);
      });
      const plan = await planImport(archive, this.blobs, { name: opts.name, log: this.log });
      for (const c of plan) unpacked.push(await this.unpackImage(c.manifestDigest));
      return await this.locked(async () => {
        const ids: string[] = [];
        for (const [i, c] of plan.entries()) ids.push(await this.record(unpacked[i]!, c.names, c));
        this.log('info', 'images imported', { images: ids.map((id) => this.toImage(this.state.images[id]!).repoTags.join(',') || id) });
        return ids.map((id) => this.toImage(this.state.images[id]!));
      });
    } finally {
      for (const u of unpacked) for (const c of u.chains) this.heldChains.delete(c);
      for (const d of held) this.heldBlobs.delete(d);
      // What this import brought that no image references (oci-layout,
      // index.json, unchosen platforms, or everything after a failure).
      await this.locked(() => this.collect(added, new Set(unpacked.flatMap((u) => u.chains))));
    }
  }

  /** Points the tag `ref` at image `imageId` (moving it from any other image). */
  tag(imageId: string, ref: string): Promise<void> {
    return this.locked(async () => {
      const id = this.resolveId(imageId);
      if (!id) throw notFound(`image ${imageId} not found`);
      const r = parseReference(ref);
      if (r.digest !== undefined || r.tag === undefined) throw invalidArgument(`cannot tag with a digest reference: ${ref}`);
      this.state.tags[formatReference(r)] = id;
      const img = this.state.images[id]!;
      if (!img.madeUpManifest) addRepoDigest(img, `${repository(r)}@${img.manifestDigest}`);
      await this.persist();
    });
  }

  /** Removes the image `ref` resolves to, with all its tags. Missing → no-op. */
  remove(ref: string): Promise<void> {
    return this.locked(async () => {
      const id = this.resolveId(ref);
      if (!id) return;
      const holders = this.usedBy(id);
      if (holders.length) {
        throw failedPrecondition(`image ${id} is in use by container(s) ${holders.join(', ')}`);
      }
      const rec = this.state.images[id]!;
      delete this.state.images[id];
      for (const [t, i] of Object.entries(this.state.tags)) if (i === id) delete this.state.tags[t];
      await this.persist(); // index first: a crash below only leaves orphans, collected on open
      const blobs = new Set([rec.manifestDigest, rec.configDigest, ...rec.layers.map((l) => l.digest)]);
      await this.collect(blobs, new Set(rec.layers.map((l) => l.chainId)));
      this.log('info', 'image removed', { id });
    });
  }

  /** Keeps an image from removal while a container uses it. */
  retain(imageId: string, containerId: string): void {
    const id = this.resolveId(imageId);
    if (!id) throw notFound(`image ${imageId} not found`);
    this.leases.set(containerId, id);
  }

  /** The containers holding a lease on an image. */
  usedBy(imageId: string): string[] {
    return [...this.leases].filter(([, id]) => id === imageId).map(([c]) => c);
  }

  release(containerId: string): void {
    this.leases.delete(containerId);
  }

  /**
   * Root filesystem for a container: an overlay spec (upper/work created under
   * containerDir) or, where the kernel has no overlayfs, a copy at containerDir/rootfs.
   */
  async rootfsSpec(imageId: string, containerDir: string): Promise<RootfsSpec> {
    const id = this.resolveId(imageId);
    if (!id) throw notFound(`image ${imageId} not found`);
    const rec = this.state.images[id]!;
    // Re-unpack layers that vanished from the cache (blobs are kept).
    const chains = await this.layers.ensure(rec.layers.map((l) => ({ digest: l.digest, diffId: l.diffId })));
    if (overlayAvailable()) return overlaySpec(this.layers, chains, containerDir);
    const rootfs = path.join(containerDir, 'rootfs');
    this.log('warn', 'overlayfs unavailable: copying image layers into the container rootfs', { image: id, rootfs });
    await copyRootfs(this.layers, chains, rootfs);
    return { type: 'copy', rootfs };
  }

  /**
   * The bytes and inodes under the root. A walk of the whole store, so, as
   * containerd's (refreshed every 10 s), figures at most a period old: one
   * walk at a time, shared by the calls that come meanwhile.
   */
  async fsInfo(): Promise<FsUsage> {
    return { mountpoint: this.root, ...(await this.fsUsage.fresh()) };
  }

  /** For the registry client: stores a blob, verified against `digest` (and `size`). */
  async ingestBlob(digest: string, size: number | undefined, stream: AsyncIterable<Uint8Array>): Promise<void> {
    assertSha256Digest(digest);
    const exp: { digest: string; size?: number } = { digest };
    if (size !== undefined) exp.size = size;
    await this.blobs.ingest(stream, exp);
  }

  /**
   * For the registry client: runs `transfer` to store blob `digest`, unless a
   * concurrent pull is storing it: then waits for that one, as containerd's
   * fetch waits on an ingest another holds, and transfers only if it ended
   * without the blob. Resolves with `transfer`'s value, or undefined when
   * the blob came otherwise. `signal` ends a wait.
   */
  async ingestOnce<T>(digest: string, signal: AbortSignal, transfer: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      if (this.blobs.has(digest)) return undefined;
      const other = this.transfers.get(digest);
      if (!other) break;
      await settledOrAborted(other, signal);
    }
    const p = transfer();
    this.transfers.set(digest, p);
    try {
      return await p;
    } finally {
      if (this.transfers.get(digest) === p) this.transfers.delete(digest);
    }
  }

  /**
   * For the registry client: one pull attempt under a lease on `digests` (the
   * config and layers of the manifest pulled). From the check of which are
   * stored until the attempt ends, none of them is collected by a concurrent
   * RemoveImage or failed import. `run` gets those not stored yet; if it fails,
   * the ones it stored that nothing references or holds are dropped.
   */
  async withBlobLease<T>(digests: string[], run: (missing: string[]) => Promise<T>): Promise<T> {
    const held = [...new Set(digests)];
    for (const d of held) this.heldBlobs.add(d);
    const missing = held.filter((d) => !this.blobs.has(d));
    let ok = false;
    try {
      const r = await run(missing);
      ok = true;
      return r;
    } finally {
      for (const d of held) this.heldBlobs.delete(d);
      if (!ok) {
        await this.locked(() => this.collect(new Set(missing), new Set())).catch((e: unknown) => {
          this.log('warn', 'dropping the blobs of a failed pull failed', { error: (e as Error).message });
        });
      }
    }
  }

  /**
   * For the registry client: stores an image manifest whose config and layers were
   * ingested already, unpacks its layers and indexes it (tagged `ref` if given).
   * `indexSize`: the bytes of the index it was chosen from, if any.
   */
  async commitManifest(manifestBytes: Buffer, ref: string | undefined, indexSize?: number): Promise<Image> {
    const names = ref === undefined ? [] : [formatReference(parseReference(ref))];
    const digest = sha256Digest(manifestBytes);
    this.heldBlobs.add(digest);
    let created = false;
    let u: Unpacked | undefined;
    let ok = false;
    try {
      created = (await this.blobs.ingestBuffer(manifestBytes, digest)).created === true;
      u = await this.unpackImage(digest);
      const id = await this.locked(() => this.record(u!, names, indexSize === undefined ? {} : { indexSize }));
      ok = true;
      return this.toImage(this.state.images[id]!);
    } finally {
      for (const c of u?.chains ?? []) this.heldChains.delete(c);
      this.heldBlobs.delete(digest);
      if (!ok) await this.locked(() => this.collect(new Set(created ? [digest] : []), new Set(u?.chains)));
    }
  }

  // -------------------------------------------------------------- internals

  /**
   * Outside the lock: checks a manifest (of an index, its platform's) against
   * the store and unpacks its layers. Its chains stay held, against a
   * concurrent collect, until the caller releases them.
   */
  private async unpackImage(manifestDigest: string): Promise<Unpacked> {
    let m = await this.blobs.readJson<ManifestJson | IndexJson>(manifestDigest);
    if (m !== null && typeof m === 'object' && Array.isArray((m as IndexJson).manifests)) {
      const pick = pickPlatform(checkIndex(m, `index ${manifestDigest}`), `index ${manifestDigest}`);
      assertSha256Digest(pick.digest, `index ${manifestDigest}`);
      if (!this.blobs.has(pick.digest)) throw invalidArgument(`index ${manifestDigest} references manifest ${pick.digest}, which is missing`);
      manifestDigest = pick.digest;
      m = await this.blobs.readJson<ManifestJson>(manifestDigest);
    }
    const manifest = checkManifest(m, `blob ${manifestDigest}`);
    const what = `manifest ${manifestDigest}`;
    for (const d of [manifest.config, ...manifest.layers]) {
      assertSha256Digest(d.digest, what);
      if (!this.blobs.has(d.digest)) throw invalidArgument(`${what} references blob ${d.digest}, which is missing`);
      const size = this.blobs.size(d.digest);
      if (typeof d.size === 'number' && d.size !== size) throw invalidArgument(`${what}: blob ${d.digest} is ${size} bytes, manifest says ${d.size}`);
    }
    const config = checkConfig(await this.blobs.readJson<ImageConfigJson>(manifest.config.digest), `config ${manifest.config.digest}`);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
      throw invalidArgument(`${what}: config ${manifest.config.digest} has ${diffIds?.length ?? 'no'} diff_ids for ${manifest.layers.length} layers`);
    }
    for (const d of diffIds) assertSha256Digest(d, `config ${manifest.config.digest} diff_id`);
    const chains = chainIds(diffIds);
    for (const c of chains) this.heldChains.add(c);
    try {
      await this.layers.ensure(manifest.layers.map((l, i) => ({ digest: l.digest, diffId: diffIds[i]! })));
    } catch (e) {
      for (const c of chains) this.heldChains.delete(c);
      // Layers below the failing one that no image uses or other attempt holds.
      await this.locked(() => this.collect(new Set(), new Set(chains)));
      throw e;
    }
    await failpointAsync('image.unpacked');
    return { manifestDigest, manifest, config, diffIds, chains };
  }

  /** Under the lock: indexes an unpacked image, tagged with `names`. */
  private async record(u: Unpacked, names: string[], from: ManifestOrigin): Promise<string> {
    const { manifestDigest, manifest, config, diffIds, chains } = u;
    const id = manifest.config.digest;
    const prev = this.state.images[id];
    const rec: ImageRecord = {
      id,
      manifestDigest,
      manifestSize: this.blobs.size(manifestDigest),
      configDigest: manifest.config.digest,
      configSize: this.blobs.size(manifest.config.digest),
      layers: manifest.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: diffIds[i]!, chainId: chains[i]! })),
      repoDigests: prev ? [...prev.repoDigests] : [],
      config: config.config ?? {},
    };
    if (from.madeUp) rec.madeUpManifest = true;
    if (from.indexSize) rec.indexSize = from.indexSize;
    if (config.os) rec.os = config.os;
    if (config.architecture) rec.architecture = config.architecture;
    for (const n of names) {
      const r = parseReference(n);
      // As containerd, which records no digest for a docker-archive's image.
      const digest = r.digest ?? (from.madeUp ? undefined : manifestDigest);
      if (digest !== undefined) addRepoDigest(rec, `${repository(r)}@${digest}`);
      if (r.tag !== undefined) this.state.tags[formatReference({ domain: r.domain, path: r.path, tag: r.tag })] = id;
    }
    this.state.images[id] = rec;
    // A replaced manifest (same config, other manifest) keeps its blob only if referenced.
    await this.persist();
    if (prev && prev.manifestDigest !== manifestDigest) await this.collect(new Set([prev.manifestDigest, ...prev.layers.map((l) => l.digest)]), new Set());
    return id;
  }

  private referencedBlobs(): Set<string> {
    const s = new Set<string>();
    for (const r of Object.values(this.state.images)) {
      s.add(r.manifestDigest);
      s.add(r.configDigest);
      for (const l of r.layers) s.add(l.digest);
    }
    return s;
  }

  /** Deletes the given blobs and layers unless an image references them or a pull or import holds them. */
  private async collect(blobs: Set<string>, chains: Set<string>): Promise<void> {
    const refBlobs = this.referencedBlobs();
    const refChains = new Set(Object.values(this.state.images).flatMap((r) => r.layers.map((l) => l.chainId)));
    for (const d of blobs) if (!refBlobs.has(d) && !this.heldBlobs.has(d)) this.blobs.delete(d);
    for (const c of chains) if (!refChains.has(c) && !this.heldChains.has(c)) await this.layers.remove(c);
  }
}

/** Resolves when `p` settles, either way; rejects with the reason once `signal` aborts first. */
function settledOrAborted(p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    const done = () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(done, done);
  });
}
