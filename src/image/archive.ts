// Reading image archives: OCI image layout tarballs and docker-archive tarballs
// (`docker save` / `podman save`), possibly with several images, possibly gzipped.
//
// The outer tar is streamed: every regular file is spooled into the content
// store while it is read (files named blobs/<alg>/<hex> are verified against
// their name), so no layer is ever held in memory. Metadata files (index.json,
// manifest.json, …) are read back from the store afterwards. The caller deletes
// the blobs this import added (`added`, also on failure) that no image ends up
// referencing.

import type { EventEmitter } from 'node:events';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { invalidArgument, isNoSpace, PeapodError, resourceExhausted } from '../errors.js';
import { drained } from '../util/drain.js';
import { assertSha256Digest, type BlobInfo, type BlobStore, sha256Digest } from './blobs.js';
import { isTagOnly, parseReference, repository, formatReference } from './reference.js';
import { checkConfig, checkDescriptor, checkIndex, checkManifest } from './schema.js';
import {
  ANNOTATION_CONTAINERD_NAME,
  ANNOTATION_REF_NAME,
  type Descriptor,
  type ImageConfigJson,
  type IndexJson,
  indexPlatforms,
  type ManifestJson,
  MT,
  platformString,
  runtimePlatform,
  selectPlatform,
} from './types.js';
import { decompressed, detectCompression } from './unpack.js';

export interface ArchiveFiles {
  /** path in the archive → blob */
  files: Map<string, BlobInfo>;
  /** symlinks in the archive (path → target path, normalised) */
  links: Map<string, string>;
  /** blobs this read added to the store (they did not exist before) */
  added: Set<string>;
}

export interface ImportCandidate {
  manifestDigest: string;
  /** Normalised references to tag the image with. */
  names: string[];
  /** The manifest was made here (docker-archive): its digest names nothing a registry has. */
  madeUp?: true;
  /** Bytes of the index(es) the manifest was chosen from. */
  indexSize?: number;
}

function normArchivePath(p: string): string {
  return path.posix.normalize(p.replace(/^\.?\/+/, '')).replace(/\/+$/, '');
}

/**
 * Streams the outer tar into the store, recording in `added` the blobs it
 * created; `hold` is given each blob's digest before it is written where the
 * archive names it, else as soon as it is known.
 */
export async function readArchive(
  src: AsyncIterable<Uint8Array>,
  blobs: BlobStore,
  added: Set<string>,
  hold: (digest: string) => void = () => {},
): Promise<ArchiveFiles> {
  const out: ArchiveFiles = { files: new Map(), links: new Map(), added };
  const { stream } = await decompressed(src, 'image archive');
  const extract = tar.extract();
  const feeder = (async () => {
    try {
      for await (const chunk of stream) {
        // A destroyed extract (the reader gave up) never drains nor closes again: stop at once.
        if (extract.destroyed) return;
        if (!extract.write(chunk) && !extract.destroyed) await drained(extract as unknown as EventEmitter);
        if (extract.destroyed) return;
      }
      (extract as unknown as NodeJS.WritableStream).end();
    } catch (e) {
      extract.destroy(e as Error);
      throw e;
    }
  })();
  feeder.catch(() => {});
  let sawEntry = false;
  try {
    for await (const entry of extract) {
      sawEntry = true;
      const h = entry.header;
      const body = entry as unknown as AsyncIterable<Uint8Array>;
      const p = normArchivePath(h.name);
      if (h.type === 'symlink' || h.type === 'link') {
        for await (const _ of body) {
          /* drain */
        }
        const target = h.type === 'symlink' ? normArchivePath(path.posix.join(path.posix.dirname(p), h.linkname)) : normArchivePath(h.linkname);
        out.links.set(p, target);
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        for await (const _ of body) {
          /* drain */
        }
        continue;
      }
      const m = /^blobs\/([^/]+)\/([^/]+)$/.exec(p);
      let expected: string | undefined;
      if (m) {
        expected = `${m[1]}:${m[2]}`;
        assertSha256Digest(expected, `archive entry "${h.name}"`);
      }
      const exp: { digest?: string; size: number; label: string } = { size: h.size, label: `archive entry "${h.name}"` };
      if (expected !== undefined) {
        exp.digest = expected;
        hold(expected);
      }
      const info = await blobs.ingest(body, exp);
      if (expected === undefined) hold(info.digest);
      if (info.created) out.added.add(info.digest);
      out.files.set(p, info);
    }
  } catch (e) {
    extract.destroy(new Error('aborted'));
    const fe = await feeder.then(
      () => undefined,
      (x: unknown) => x,
    );
    if (e instanceof PeapodError) throw e;
    if (fe instanceof PeapodError) throw fe;
    if (isNoSpace(e)) throw resourceExhausted(`image archive: ${(e as Error).message}`);
    throw invalidArgument(`image archive: corrupt or truncated tar stream: ${(e as Error).message}`);
  }
  try {
    await feeder;
  } catch (e) {
    if (e instanceof PeapodError) throw e;
    throw invalidArgument(`image archive: ${(e as Error).message}`);
  }
  if (!sawEntry) throw invalidArgument('image archive is empty');
  return out;
}

/** Follows archive symlinks to a file. */
function lookup(a: ArchiveFiles, p: string): BlobInfo | undefined {
  let cur = normArchivePath(p);
  for (let i = 0; i < 16; i++) {
    const f = a.files.get(cur);
    if (f) return f;
    const l = a.links.get(cur);
    if (!l) return undefined;
    cur = l;
  }
  return undefined;
}

function isIndex(mediaType: string | undefined, json: unknown): boolean {
  if (mediaType === MT.ociIndex || mediaType === MT.dockerList) return true;
  if (mediaType === MT.ociManifest || mediaType === MT.dockerManifest) return false;
  return typeof json === 'object' && json !== null && Array.isArray((json as IndexJson).manifests);
}

/** Picks the manifest for the runtime platform from an index (manifest list). */
export function pickPlatform(index: IndexJson, what: string): Descriptor {
  checkIndex(index, what);
  const pick = selectPlatform(index);
  if (!pick) throw invalidArgument(`${what}: no manifest for ${platformString(runtimePlatform())} (has: ${indexPlatforms(index)})`);
  return pick;
}

/** Names given by an index.json descriptor's annotations. */
function namesFromAnnotations(desc: Descriptor, nameOpt: string | undefined): string[] {
  const ann = desc.annotations ?? {};
  const out: string[] = [];
  const add = (r: string) => {
    const n = formatReference(parseReference(r));
    if (!out.includes(n)) out.push(n);
  };
  const full = ann[ANNOTATION_CONTAINERD_NAME];
  if (full) add(full);
  const refName = ann[ANNOTATION_REF_NAME];
  if (refName) {
    if (isTagOnly(refName) && !full) {
      // skopeo/umoci write only the tag; complete it with the name option.
      if (nameOpt) {
        const base = parseReference(nameOpt, { defaultTag: false });
        add(`${repository(base)}:${refName}`);
      }
    } else if (!isTagOnly(refName)) add(refName);
  }
  return out;
}

/**
 * Works out which images an archive holds. Returns manifest digests (present in
 * the store, platform already chosen) with their names. For docker-archives a
 * manifest is synthesised and stored.
 */
export async function planImport(
  a: ArchiveFiles,
  blobs: BlobStore,
  opts: { name?: string | undefined; log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void },
): Promise<ImportCandidate[]> {
  const indexFile = lookup(a, 'index.json');
  const dockerManifest = lookup(a, 'manifest.json');
  let out: ImportCandidate[];
  if (indexFile) {
    const layout = lookup(a, 'oci-layout');
    if (layout) {
      const l = await blobs.readJson<{ imageLayoutVersion?: string }>(layout.digest);
      if (l.imageLayoutVersion && !l.imageLayoutVersion.startsWith('1.')) {
        throw invalidArgument(`OCI layout version ${l.imageLayoutVersion} is not supported`);
      }
    }
    out = await planOci(a, blobs, indexFile, opts.name);
    // Docker ≥ 25 writes both index.json and manifest.json; RepoTags from the latter
    // name images whose index entry carries no annotation.
    if (dockerManifest) {
      const dm = await readDockerManifest(blobs, dockerManifest);
      for (const c of out) {
        if (c.names.length) continue;
        const cfg = (await blobs.readJson<ManifestJson>(c.manifestDigest)).config.digest;
        for (const e of dm) if (lookup(a, e.Config)?.digest === cfg) for (const t of e.RepoTags ?? []) c.names.push(formatReference(parseReference(t)));
      }
    }
  } else if (dockerManifest) {
    out = await planDocker(a, blobs, dockerManifest);
  } else {
    throw invalidArgument('not an image archive: neither index.json (OCI layout) nor manifest.json (docker-archive) found');
  }
  if (out.length === 0) throw invalidArgument('image archive contains no image');
  // The name option tags an archive with a single unnamed image.
  if (opts.name) {
    const unnamed = out.filter((c) => c.names.length === 0);
    if (unnamed.length === 1 && out.length === 1) unnamed[0]!.names.push(formatReference(parseReference(opts.name)));
  }
  for (const c of out) if (c.names.length === 0) opts.log?.('warn', 'imported image has no name', { manifest: c.manifestDigest });
  return out;
}

async function requireBlob(blobs: BlobStore, d: Descriptor, what: string): Promise<void> {
  assertSha256Digest(d.digest, what);
  if (!blobs.has(d.digest)) throw invalidArgument(`${what} references blob ${d.digest}, which is missing from the archive`);
  const size = blobs.size(d.digest);
  if (typeof d.size === 'number' && d.size !== size) {
    throw invalidArgument(`${what}: blob ${d.digest} has size ${size}, descriptor says ${d.size}`);
  }
}

async function planOci(a: ArchiveFiles, blobs: BlobStore, indexFile: BlobInfo, nameOpt: string | undefined): Promise<ImportCandidate[]> {
  const index = checkIndex(await blobs.readJson<IndexJson>(indexFile.digest), 'index.json');
  void a;
  const out: ImportCandidate[] = [];
  for (const desc of index.manifests) {
    const names = namesFromAnnotations(desc, nameOpt);
    const { manifestDigest, indexSize } = await resolveToManifest(blobs, desc, `index.json entry ${desc.digest}`, 0);
    const existing = out.find((c) => c.manifestDigest === manifestDigest);
    if (existing) {
      for (const n of names) if (!existing.names.includes(n)) existing.names.push(n);
    } else out.push(indexSize ? { manifestDigest, names, indexSize } : { manifestDigest, names });
  }
  return out;
}

/** The manifest `desc` is or leads to for this platform, and the bytes of the indexes on the way. */
async function resolveToManifest(blobs: BlobStore, desc: Descriptor, what: string, depth: number): Promise<{ manifestDigest: string; indexSize: number }> {
  if (depth > 4) throw invalidArgument(`${what}: indexes nested too deeply`);
  checkDescriptor(desc, what);
  await requireBlob(blobs, desc, what);
  const json = await blobs.readJson<unknown>(desc.digest);
  if (isIndex(desc.mediaType, json)) {
    const idx = checkIndex(json, `${what}: index ${desc.digest}`);
    const pick = pickPlatform(idx, `index ${desc.digest}`);
    const below = await resolveToManifest(blobs, pick, `index ${desc.digest} entry ${pick.digest}`, depth + 1);
    return { manifestDigest: below.manifestDigest, indexSize: below.indexSize + blobs.size(desc.digest) };
  }
  checkManifest(json, `${what}: ${desc.digest}`);
  return { manifestDigest: desc.digest, indexSize: 0 };
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function readDockerManifest(blobs: BlobStore, f: BlobInfo): Promise<DockerManifestEntry[]> {
  const dm = await blobs.readJson<DockerManifestEntry[]>(f.digest);
  if (!Array.isArray(dm)) throw invalidArgument('manifest.json is not an array');
  dm.forEach((e, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw invalidArgument(`manifest.json entry ${i} is not an object`);
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
      throw invalidArgument(`manifest.json entry ${i}: missing Config or Layers`);
    }
    if (e.RepoTags !== undefined && e.RepoTags !== null && !(Array.isArray(e.RepoTags) && e.RepoTags.every((t) => typeof t === 'string'))) {
      throw invalidArgument(`manifest.json entry ${i}: RepoTags must be an array of strings`);
    }
  });
  return dm;
}

async function planDocker(a: ArchiveFiles, blobs: BlobStore, f: BlobInfo): Promise<ImportCandidate[]> {
  const dm = await readDockerManifest(blobs, f);
  const out: ImportCandidate[] = [];
  for (const [i, e] of dm.entries()) {
    const what = `manifest.json entry ${i}`;
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers)) throw invalidArgument(`${what}: missing Config or Layers`);
    const cfg = lookup(a, e.Config);
    if (!cfg) throw invalidArgument(`${what}: config file "${e.Config}" is missing from the archive`);
    const config = checkConfig(await blobs.readJson<ImageConfigJson>(cfg.digest), what);
    const layers: Descriptor[] = [];
    for (const lp of e.Layers) {
      const l = lookup(a, lp);
      if (!l) throw invalidArgument(`${what}: layer file "${lp}" is missing from the archive`);
      const head = await readHead(blobs, l.digest);
      const c = detectCompression(head);
      layers.push({ mediaType: c === 'gzip' ? MT.ociLayerGzip : c === 'zstd' ? MT.ociLayerZstd : MT.ociLayer, digest: l.digest, size: l.size });
    }
    if (layers.length !== config.rootfs.diff_ids.length) {
      throw invalidArgument(`${what}: ${layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids in the config`);
    }
    const manifest: ManifestJson = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
      layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = sha256Digest(bytes);
    if (!blobs.has(digest)) {
      await blobs.ingestBuffer(bytes, digest);
      a.added.add(digest);
    }
    const names = (e.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
    out.push({ manifestDigest: digest, names, madeUp: true });
  }
  return out;
}

async function readHead(blobs: BlobStore, digest: string): Promise<Buffer> {
  const s = blobs.openRead(digest);
  try {
    for await (const c of s as AsyncIterable<Buffer>) return c.subarray(0, 4);
    return Buffer.alloc(0);
  } finally {
    s.destroy();
  }
}
