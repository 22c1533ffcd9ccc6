// Test helpers: build OCI-layout and docker-archive tarballs in memory.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzip, makeTar, type TarEntry } from './image-tar.js';

export const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hex = (d: string) => d.slice(7);

export const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

export interface BuiltImage {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  /** blobs (digest → bytes) */
  blobs: Map<string, Buffer>;
  diffIds: string[];
}

export function buildImage(layers: Buffer[], opts: { gzipLayers?: boolean; config?: Record<string, unknown>; arch?: string } = {}): BuiltImage {
  const blobs = new Map<string, Buffer>();
  const add = (b: Buffer) => {
    const d = sha(b);
    blobs.set(d, b);
    return { digest: d, size: b.length };
  };
  const diffIds = layers.map((l) => sha(l));
  const layerDescs = layers.map((l) =>
    opts.gzipLayers === false
      ? { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...add(l) }
      : { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...add(gzip(l)) },
  );
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.arch ?? ARCH,
      os: 'linux',
      config: opts.config ?? { Cmd: ['sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const cfg = add(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: layerDescs,
    }),
  );
  const man = add(manifest);
  return { config, configDigest: cfg.digest, manifest, manifestDigest: man.digest, blobs, diffIds };
}

/** An image of `n` one-file layers, layer i holding "layer i " `repeat + i` times. */
export async function layeredImage(n: number, opts: { arch?: string; repeat?: number } = {}): Promise<BuiltImage> {
  const layers: Buffer[] = [];
  for (let i = 0; i < n; i++) layers.push(await makeTar([{ name: `f${i}`, content: `layer ${i} `.repeat((opts.repeat ?? 100) + i) }]));
  return buildImage(layers, { arch: opts.arch ?? ARCH });
}

export interface IndexEntry {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}

/** An OCI layout tarball holding the given blobs and index entries. */
export async function ociArchive(blobs: Map<string, Buffer>, manifests: IndexEntry[], opts: { omit?: string[] } = {}): Promise<Buffer> {
  const entries: TarEntry[] = [
    { name: 'oci-layout', content: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests }) },
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
  ];
  for (const [d, b] of blobs) if (!opts.omit?.includes(d)) entries.push({ name: `blobs/sha256/${hex(d)}`, content: b });
  return makeTar(entries);
}

export function manifestEntry(img: BuiltImage, annotations?: Record<string, string>): IndexEntry {
  const e: IndexEntry = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: img.manifestDigest,
    size: img.manifest.length,
    platform: { os: 'linux', architecture: ARCH },
  };
  if (annotations) e.annotations = annotations;
  return e;
}

export async function ociArchiveOf(img: BuiltImage, ref?: string): Promise<Buffer> {
  return ociArchive(img.blobs, [manifestEntry(img, ref ? { 'org.opencontainers.image.ref.name': ref } : undefined)]);
}

/** A docker-archive (docker save layout) with uncompressed layers. */
export async function dockerArchive(images: Array<{ layers: Buffer[]; repoTags: string[]; config?: Record<string, unknown> }>): Promise<Buffer> {
  const entries: TarEntry[] = [];
  const manifest: unknown[] = [];
  const seen = new Set<string>();
  for (const im of images) {
    const diffIds = im.layers.map((l) => sha(l));
    const config = Buffer.from(JSON.stringify({ architecture: ARCH, os: 'linux', config: im.config ?? { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
    const cfgName = `${hex(sha(config))}.json`;
    if (!seen.has(cfgName)) entries.push({ name: cfgName, content: config });
    seen.add(cfgName);
    const layerPaths: string[] = [];
    for (const l of im.layers) {
      const id = hex(sha(l));
      if (!seen.has(id)) {
        entries.push({ name: `${id}/`, type: 'directory' }, { name: `${id}/VERSION`, content: '1.0' }, { name: `${id}/layer.tar`, content: l });
        seen.add(id);
      }
      layerPaths.push(`${id}/layer.tar`);
    }
    manifest.push({ Config: cfgName, RepoTags: im.repoTags, Layers: layerPaths });
  }
  // docker ≤ 24 writes manifest.json last: make sure we handle that.
  entries.push({ name: 'manifest.json', content: JSON.stringify(manifest) });
  return makeTar(entries);
}

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const IMAGES_BUILD = path.join(REPO, 'images/build');

/** Builds images/build/* if needed; returns the path of `name` or undefined when it cannot be built here. */
export function builtImage(name: 'busybox.tar' | 'busybox-docker.tar' | 'pause.tar'): string | undefined {
  const p = path.join(IMAGES_BUILD, name);
  if (!fs.existsSync(p)) {
    try {
      execFileSync(process.execPath, [path.join(REPO, 'images/build.mjs')], { stdio: 'pipe' });
    } catch {
      return undefined;
    }
  }
  return fs.existsSync(p) ? p : undefined;
}
