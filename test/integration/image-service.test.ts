import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageService } from '../../src/image/service.js';
import { copyRootfs, overlayAvailable, overlayMountOptions, precreateMountTargets, type OverlaySpec } from '../../src/image/rootfs.js';
import { LayerCache } from '../../src/image/layers.js';
import { BlobStore } from '../../src/image/blobs.js';
import { PeapodError } from '../../src/errors.js';
import { chunks, describeTree, gzip, makeTar, tmpDir } from '../support/image-tar.js';
import { ARCH, buildImage, builtImage, dockerArchive, manifestEntry, ociArchive, ociArchiveOf, sha } from '../support/image-archive.js';

const isRoot = process.getuid?.() === 0;
let root: string;
let work: string;
const mounts: string[] = [];
const logs: Array<[string, string]> = [];
const log = (level: string, msg: string) => void logs.push([level, msg]);

beforeEach(() => {
  work = tmpDir('peapod-imgsvc-');
  root = path.join(work, 'root');
  logs.length = 0;
});
afterEach(() => {
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', [m]);
    } catch {
      execFileSync('umount', ['-l', m]);
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
});
afterAll(() => {
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});

const open = () => ImageService.open({ root, log });
const fileStream = (p: string) => fs.createReadStream(p);
const blobCount = () => fs.readdirSync(path.join(root, 'blobs/sha256')).length;
const layerDirs = () => fs.readdirSync(path.join(root, 'layers')).filter((n) => /^[a-f0-9]{64}$/.test(n));

async function expectError(p: Promise<unknown>, kind: string, re: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(PeapodError);
  expect((err as PeapodError).kind).toBe(kind);
  expect((err as Error).message).toMatch(re);
}

// Three layers exercising whiteouts and an opaque dir.
async function layeredImage() {
  const l1 = await makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/a', content: 'A' },
    { name: 'etc/b', content: 'B' },
    { name: 'dir/', type: 'directory' },
    { name: 'dir/x', content: 'X' },
    { name: 'dir/sub/', type: 'directory' },
    { name: 'dir/sub/y', content: 'Y' },
    { name: 'keep/', type: 'directory' },
    { name: 'keep/k', content: 'K' },
  ]);
  const l2 = await makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/.wh.b', content: '' },
    { name: 'dir/', type: 'directory' },
    { name: 'dir/.wh..wh..opq', content: '' },
    { name: 'dir/new', content: 'NEW' },
  ]);
  const l3 = await makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/a', content: 'A2', mode: 0o600 },
  ]);
  return buildImage([l1, l2, l3], { config: { Cmd: ['true'], User: 'nobody', Env: ['A=1'] } });
}

function checkMergedTree(dir: string): void {
  expect(fs.readFileSync(path.join(dir, 'etc/a'), 'utf8')).toBe('A2');
  expect(fs.statSync(path.join(dir, 'etc/a')).mode & 0o777).toBe(0o600);
  expect(fs.existsSync(path.join(dir, 'etc/b'))).toBe(false); // whited out
  expect(fs.readdirSync(path.join(dir, 'dir')).sort()).toEqual(['new']); // opaque: x and sub hidden
  expect(fs.readFileSync(path.join(dir, 'keep/k'), 'utf8')).toBe('K');
}

describe('ImageService with the busybox test image', () => {
  const ociTar = builtImage('busybox.tar');
  const dockerTar = builtImage('busybox-docker.tar');
  const skip = !ociTar || !dockerTar;
  if (skip) console.warn('SKIP busybox image tests: images/build.mjs could not build busybox (Debian package "busybox" missing?)');

  it.skipIf(skip)('imports the OCI archive: names, config, size, layer contents', async () => {
    const svc = await open();
    const [img, ...rest] = await svc.import(fileStream(ociTar!));
    expect(rest).toEqual([]);
    expect(img!.repoTags).toEqual(['docker.io/library/busybox:latest']);
    expect(img!.repoDigests).toEqual([`docker.io/library/busybox@${img!.manifestDigest}`]);
    expect(img!.id).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(img!.config.Cmd).toEqual(['sh']);
    expect(img!.config.Env?.[0]).toMatch(/^PATH=/);
    expect(img!.size).toBeGreaterThan(500_000);
    expect(img!.chainIds).toHaveLength(1);
    // resolution
    for (const r of ['busybox', 'busybox:latest', 'docker.io/library/busybox', img!.id, img!.id.slice(7), img!.id.slice(7, 12), `busybox@${img!.manifestDigest}`]) {
      expect(svc.resolve(r)?.id, r).toBe(img!.id);
    }
    expect(svc.resolve('busybox:other')).toBeUndefined();
    expect(svc.list()).toHaveLength(1);
    expect(svc.list('busybox')).toHaveLength(1);
    expect(svc.list('nope')).toEqual([]);
    // layer cache content: applets are hard links of /bin/busybox; modes and owners
    const fsDir = path.join(root, 'layers', img!.chainIds[0]!.slice(7), 'fs');
    const bb = fs.statSync(path.join(fsDir, 'bin/busybox'));
    expect(fs.statSync(path.join(fsDir, 'bin/sh')).ino).toBe(bb.ino);
    expect(bb.nlink).toBeGreaterThan(100);
    expect(fs.statSync(path.join(fsDir, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(fs.readFileSync(path.join(fsDir, 'etc/passwd'), 'utf8')).toContain('peapod:x:1000:1000:');
    if (isRoot) expect(fs.statSync(path.join(fsDir, 'home/peapod')).uid).toBe(1000);
    expect(fs.readFileSync(path.join(fsDir, 'bin/busybox')).equals(fs.readFileSync('/bin/busybox'))).toBe(true);
  });

  it.skipIf(skip)('docker-archive of the same image: same id, layer reused, the repo digest of the OCI manifest kept, none made up', async () => {
    const svc = await open();
    const [a] = await svc.import(fileStream(ociTar!));
    const layersBefore = layerDirs();
    const [b] = await svc.import(fileStream(dockerTar!));
    expect(b!.id).toBe(a!.id); // same config bytes
    expect(layerDirs()).toEqual(layersBefore); // same chain ID: unpacked once
    expect(b!.repoTags).toEqual(['docker.io/library/busybox:latest']);
    expect(b!.repoDigests).toEqual(a!.repoDigests);
    // only referenced blobs stay: docker manifest + config + uncompressed layer (the OCI ones were replaced)
    expect(blobCount()).toBe(3);
  });

  it.skipIf(skip)('pause image: entrypoint and numeric user', async () => {
    const pause = builtImage('pause.tar');
    if (!pause) return console.warn('SKIP pause image: native/build/pause not available');
    const svc = await open();
    const [img] = await svc.import(fileStream(pause));
    expect(img!.repoTags).toEqual(['registry.k8s.io/pause:3.9']);
    expect(img!.config.Entrypoint).toEqual(['/pause']);
    expect(img!.uid).toBe(65535);
    expect(img!.username).toBeUndefined();
  });
});

describe('ImageService: tags, removal, leases, restart', () => {
  it('multi-tag; remove by one tag removes the image, all tags, its blobs and layers', async () => {
    const svc = await open();
    const img = buildImage([await makeTar([{ name: 'f', content: 'one' }])]);
    const [i] = await svc.import(chunks(await ociArchiveOf(img, 'example.com/one:1')));
    await svc.tag(i!.id, 'peapod.local/one:latest');
    await svc.tag(i!.id.slice(7, 15), 'one:v1');
    expect(svc.resolve('one:v1')!.repoTags).toEqual(['docker.io/library/one:v1', 'example.com/one:1', 'peapod.local/one:latest']);
    expect(blobCount()).toBe(3);
    expect(layerDirs()).toHaveLength(1);
    await svc.remove('peapod.local/one');
    expect(svc.list()).toEqual([]);
    expect(svc.resolve('example.com/one:1')).toBeUndefined();
    expect(blobCount()).toBe(0);
    expect(layerDirs()).toEqual([]);
    await svc.remove('peapod.local/one'); // idempotent
    await svc.remove('sha256:' + 'f'.repeat(64));
  });

  it('id prefixes: unique ones resolve, ambiguous ones do not, fewer than 3 hex chars never', async () => {
    const svc = await open();
    const layer = await makeTar([{ name: 'p', content: 'p' }]);
    const a = buildImage([layer], { gzipLayers: false, config: { Labels: { n: 'a' } } });
    let b = a;
    for (let i = 0; b.configDigest.slice(7, 10) !== a.configDigest.slice(7, 10) || b === a; i++) {
      b = buildImage([layer], { gzipLayers: false, config: { Labels: { n: String(i) } } });
    }
    await svc.import(chunks(await ociArchiveOf(a, 'x.io/a:1')));
    await svc.import(chunks(await ociArchiveOf(b, 'x.io/b:1')));
    const common = a.configDigest.slice(7, 10);
    expect(svc.resolve(common)).toBeUndefined();
    expect(svc.resolve(`sha256:${common}`)).toBeUndefined();
    let n = 10;
    while (a.configDigest.slice(7, 7 + n) === b.configDigest.slice(7, 7 + n)) n++;
    expect(svc.resolve(a.configDigest.slice(7, 7 + n + 1))?.id).toBe(a.configDigest);
    expect(svc.resolve(b.configDigest.slice(0, 7 + n + 1))?.id).toBe(b.configDigest);
    expect(svc.resolve(a.configDigest.slice(7, 9))).toBeUndefined();
  });

  it('tag moves between images; image stays with its other tags', async () => {
    const svc = await open();
    const a = buildImage([await makeTar([{ name: 'a', content: 'a' }])]);
    const b = buildImage([await makeTar([{ name: 'b', content: 'b' }])]);
    const [ia] = await svc.import(chunks(await ociArchiveOf(a, 'x.io/app:1')));
    await svc.tag(ia!.id, 'x.io/app:latest');
    const [ib] = await svc.import(chunks(await ociArchiveOf(b, 'x.io/app:latest')));
    expect(svc.resolve('x.io/app:latest')!.id).toBe(ib!.id);
    expect(svc.resolve(ia!.id)!.repoTags).toEqual(['x.io/app:1']);
  });

  it('shared layers survive removal of one image; a lease blocks removal; images survive restart, leases are the holders\' to renew', async () => {
    const base = await makeTar([{ name: 'base', content: 'base' }]);
    const top = await makeTar([{ name: 'top', content: 'top' }]);
    const A = buildImage([base]);
    const B = buildImage([base, top], { config: { Cmd: ['b'] } });
    let svc = await open();
    const [ia] = await svc.import(chunks(await ociArchiveOf(A, 'x.io/a:1')));
    const [ib] = await svc.import(chunks(await ociArchiveOf(B, 'x.io/b:1')));
    expect(ib!.chainIds[0]).toBe(ia!.chainIds[0]);
    expect(layerDirs()).toHaveLength(2);
    svc.retain(ib!.id, 'ctr-1');
    expect(svc.usedBy(ib!.id)).toEqual(['ctr-1']);
    await svc.remove('x.io/a:1');
    expect(layerDirs()).toHaveLength(2); // base still used by B
    const baseBlob = [...B.blobs.keys()].find((d) => B.blobs.get(d)!.equals(gzip(base)))!;
    expect(svc.hasBlob(baseBlob)).toBe(true);
    await expectError(svc.remove('x.io/b:1'), 'FailedPrecondition', /in use by container\(s\) ctr-1/);

    // restart: same images; leases are in memory (the container manager
    // retains again for every container it loads)
    svc = await open();
    expect(svc.list().map((i) => i.id)).toEqual([ib!.id]);
    expect(svc.resolve('x.io/b:1')!.config.Cmd).toEqual(['b']);
    expect(svc.usedBy(ib!.id)).toEqual([]);
    svc.retain(ib!.id, 'ctr-1');
    await expectError(svc.remove(ib!.id), 'FailedPrecondition', /ctr-1/);
    svc.release('ctr-1');
    svc.release('ctr-1'); // idempotent
    await svc.remove('x.io/b:1');
    expect(layerDirs()).toEqual([]);
    expect(blobCount()).toBe(0);
    expect(() => svc.retain('sha256:' + '0'.repeat(64), 'c')).toThrow(/not found/);
  });

  it('open() cleans crash leftovers: ingest temps, half-unpacked layers, orphan blobs and layers', async () => {
    let svc = await open();
    const img = buildImage([await makeTar([{ name: 'f', content: 'kept' }])]);
    await svc.import(chunks(await ociArchiveOf(img, 'x.io/kept:1')));
    fs.writeFileSync(path.join(root, 'ingest/ingest-123'), 'partial');
    fs.mkdirSync(path.join(root, 'layers/.tmp-1-abc/fs'), { recursive: true });
    fs.writeFileSync(path.join(root, 'blobs/sha256', 'e'.repeat(64)), 'orphan');
    fs.mkdirSync(path.join(root, 'layers', 'd'.repeat(64), 'fs'), { recursive: true });
    fs.writeFileSync(path.join(root, '.tmp-99-index'), '{');
    svc = await open();
    expect(fs.readdirSync(path.join(root, 'ingest'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'layers')).sort()).toEqual(layerDirs().sort());
    expect(layerDirs()).toHaveLength(1);
    expect(blobCount()).toBe(3);
    expect(fs.existsSync(path.join(root, '.tmp-99-index'))).toBe(false);
    expect(svc.resolve('x.io/kept:1')).toBeDefined();
  });

  it('fsInfo reports the root with bytes and inodes', async () => {
    const svc = await open();
    await svc.import(chunks(await ociArchiveOf(buildImage([await makeTar([{ name: 'f', content: Buffer.alloc(100_000, 1) }])]), 'x.io/f:1')));
    const fi = await svc.fsInfo();
    expect(fi.mountpoint).toBe(root);
    expect(fi.usedBytes).toBeGreaterThan(100_000);
    expect(fi.inodesUsed).toBeGreaterThan(5);
    expect(fi.timestampNs).toBeGreaterThan(1_600_000_000_000_000_000n);
  });

  it('fsInfo walks the store at most once a period, one walk shared by the calls meanwhile', async () => {
    const svc = await ImageService.open({ root, log, fsUsagePeriodMs: 1000 });
    const walks = () => logs.filter(([, msg]) => msg === 'image store usage measured').length;
    await svc.import(chunks(await ociArchiveOf(buildImage([await makeTar([{ name: 'a', content: 'a' }])]), 'x.io/a:1')));
    const [a, b] = await Promise.all([svc.fsInfo(), svc.fsInfo()]);
    expect(walks()).toBe(1);
    expect(b).toEqual(a);
    // An image added within the period: the same figures, no walk.
    await svc.import(chunks(await ociArchiveOf(buildImage([await makeTar([{ name: 'f', content: Buffer.alloc(100_000, 1) }])]), 'x.io/f:1')));
    expect(await svc.fsInfo()).toEqual(a);
    expect(walks()).toBe(1);
    // Once the period is over, measured again.
    await new Promise((r) => setTimeout(r, 1000));
    const c = await svc.fsInfo();
    expect(walks()).toBe(2);
    expect(c.usedBytes).toBeGreaterThan(a.usedBytes + 100_000);
    expect(c.inodesUsed).toBeGreaterThan(a.inodesUsed);
    expect(c.timestampNs).toBeGreaterThan(a.timestampNs);
  });
});

describe('ImageService: archive formats', () => {
  it('multi-image OCI archive, nested index picks the runtime platform, ref.name tag completed by name', async () => {
    const svc = await open();
    const a = buildImage([await makeTar([{ name: 'a', content: 'a' }])]);
    const b = buildImage([await makeTar([{ name: 'b', content: 'b' }])]);
    const other = buildImage([await makeTar([{ name: 'arm', content: 'arm' }])], { arch: 'arm64' });
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...manifestEntry(other), platform: { os: 'linux', architecture: ARCH === 'amd64' ? 'arm64' : 'amd64' } },
          manifestEntry(b),
        ],
      }),
    );
    const blobs = new Map([...a.blobs, ...b.blobs, [sha(list), list]]);
    const tarball = await ociArchive(
      blobs,
      [
        manifestEntry(a, { 'org.opencontainers.image.ref.name': 'registry.example/a:1', 'io.containerd.image.name': 'registry.example/a:1' }),
        { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha(list), size: list.length, annotations: { 'org.opencontainers.image.ref.name': '2.0' } },
      ],
    );
    const imgs = await svc.import(chunks(tarball), { name: 'peapod.local/multi' });
    expect(imgs.map((i) => i.repoTags)).toEqual([['registry.example/a:1'], ['peapod.local/multi:2.0']]);
    expect(imgs[1]!.manifestDigest).toBe(b.manifestDigest);
    // As containerd sizes an image whose target is an index: the index is counted too.
    const layerSizes = (i: typeof b) => (JSON.parse(i.manifest.toString()) as { layers: Array<{ size: number }> }).layers.reduce((n, l) => n + l.size, 0);
    expect(imgs[0]!.size).toBe(a.manifest.length + a.config.length + layerSizes(a));
    expect(imgs[1]!.size).toBe(list.length + b.manifest.length + b.config.length + layerSizes(b));
    // the other platform's blobs were not in the archive and nothing unreferenced is kept
    expect(blobCount()).toBe(6);
  });

  it('docker-archive with two images, shared layer, manifest.json last', async () => {
    const svc = await open();
    const base = await makeTar([{ name: 'base', content: 'base' }]);
    const top = await makeTar([{ name: 'top', content: 'top' }]);
    const t = await dockerArchive([
      { layers: [base], repoTags: ['busybox:1', 'busybox:latest'] },
      { layers: [base, top], repoTags: ['host:5000/app:v2'], config: { Cmd: ['app'], User: '1000:1000' } },
    ]);
    const imgs = await svc.import(chunks(t));
    expect(imgs.map((i) => i.repoTags)).toEqual([['docker.io/library/busybox:1', 'docker.io/library/busybox:latest'], ['host:5000/app:v2']]);
    // The manifests are peapod's: no registry has them, so no repo digest
    // (containerd gives none either), now or when tagged, and their digest names nothing.
    expect(imgs.map((i) => i.repoDigests)).toEqual([[], []]);
    await svc.tag(imgs[1]!.id, 'host:5000/app:v3');
    expect(svc.resolve('host:5000/app:v3')!.repoDigests).toEqual([]);
    expect(svc.resolve(`host:5000/app@${imgs[1]!.manifestDigest}`)).toBeUndefined();
    // containerd's size: the manifest with the sizes it gives its config and layers.
    const blobSize = (d: string) => fs.statSync(path.join(root, 'blobs/sha256', d.slice(7))).size;
    expect(imgs[1]!.size).toBe(blobSize(imgs[1]!.manifestDigest) + blobSize(imgs[1]!.id) + base.length + top.length);
    expect(imgs[1]!.uid).toBe(1000);
    expect(imgs[1]!.chainIds[0]).toBe(imgs[0]!.chainIds[0]);
    const fsDir = path.join(root, 'layers', imgs[1]!.chainIds[1]!.slice(7), 'fs');
    expect(fs.readFileSync(path.join(fsDir, 'top'), 'utf8')).toBe('top');
  });

  it('docker >= 25 save format: OCI layout plus manifest.json naming the image', async () => {
    const svc = await open();
    const img = buildImage([await makeTar([{ name: 'd25', content: 'x' }])], { gzipLayers: false });
    const layer = [...img.blobs.keys()].find((d) => d !== img.configDigest && d !== img.manifestDigest)!;
    const entries = [
      { name: 'oci-layout', content: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
      { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests: [manifestEntry(img)] }) },
      ...[...img.blobs].map(([d, b]) => ({ name: `blobs/sha256/${d.slice(7)}`, content: b })),
      {
        name: 'manifest.json',
        content: JSON.stringify([{ Config: `blobs/sha256/${img.configDigest.slice(7)}`, RepoTags: ['d25:v1'], Layers: [`blobs/sha256/${layer.slice(7)}`] }]),
      },
    ];
    const [i] = await svc.import(chunks(await makeTar(entries)));
    expect(i!.repoTags).toEqual(['docker.io/library/d25:v1']);
    expect(i!.manifestDigest).toBe(img.manifestDigest);
  });

  it('gzipped outer archive and an unnamed image tagged by the name option', async () => {
    const svc = await open();
    const img = buildImage([await makeTar([{ name: 'f', content: 'z' }])], { gzipLayers: false });
    const [i] = await svc.import(chunks(gzip(await ociArchiveOf(img))), { name: 'peapod.local/z' });
    expect(i!.repoTags).toEqual(['peapod.local/z:latest']);
  });

  it('rejects: missing blob, wrong digest, bad layer, zstd, not an archive — leaving no blob or layer', async () => {
    const svc = await open();
    const img = buildImage([await makeTar([{ name: 'f', content: 'x' }])]);
    const layerDigest = [...img.blobs.keys()].find((d) => d !== img.configDigest && d !== img.manifestDigest)!;
    await expectError(
      svc.import(chunks(await ociArchive(img.blobs, [manifestEntry(img, { 'org.opencontainers.image.ref.name': 'x.io/m:1' })], { omit: [layerDigest] }))),
      'InvalidArgument',
      new RegExp(`references blob ${layerDigest}, which is missing`),
    );
    // wrong digest: put other bytes under the layer's name
    const tampered = new Map(img.blobs);
    tampered.set(layerDigest, gzip(await makeTar([{ name: 'f', content: 'evil' }])));
    const t2 = await ociArchive(tampered, [manifestEntry(img)]);
    await expectError(svc.import(chunks(t2)), 'InvalidArgument', /digest mismatch/);
    // layer with a path traversal
    const bad = buildImage([await makeTar([{ name: 'ok', content: 'fine' }, { name: '../../escape', content: 'x' }])]);
    await expectError(svc.import(chunks(await ociArchiveOf(bad, 'x.io/bad:1'))), 'InvalidArgument', /entry "\.\.\/\.\.\/escape"/);
    expect(fs.existsSync(path.join(root, '..', 'escape'))).toBe(false);
    // zstd layer
    const z = buildImage([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4])], { gzipLayers: false });
    await expectError(svc.import(chunks(await ociArchiveOf(z, 'x.io/z:1'))), 'InvalidArgument', /zstd/);
    // not an archive
    await expectError(svc.import(chunks(await makeTar([{ name: 'hello', content: 'x' }]))), 'InvalidArgument', /not an image archive/);
    // truncated archive
    const good = await ociArchiveOf(img, 'x.io/t:1');
    await expectError(svc.import(chunks(good.subarray(0, 1500))), 'InvalidArgument', /truncated|size mismatch/);
    expect(blobCount()).toBe(0);
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'ingest'))).toEqual([]);
    expect(svc.list()).toEqual([]);
  });
});

describe('ImageService: registry-client API', () => {
  it('ingestBlob verifies; commitManifest unpacks and indexes', async () => {
    const svc = await open();
    const img = buildImage([await makeTar([{ name: 'hello', content: 'world' }])]);
    for (const [d, b] of img.blobs) {
      if (d === img.manifestDigest) continue;
      await expectError(svc.ingestBlob(d, b.length, chunks(Buffer.concat([b, Buffer.from('x')]))), 'InvalidArgument', /size mismatch/);
      await expectError(svc.ingestBlob(d, undefined, chunks(Buffer.from('other'))), 'InvalidArgument', /digest mismatch/);
      expect(svc.hasBlob(d)).toBe(false);
      await svc.ingestBlob(d, b.length, chunks(b));
      expect(svc.hasBlob(d)).toBe(true);
    }
    const i = await svc.commitManifest(img.manifest, 'quay.io/x/hello:1');
    expect(i.id).toBe(img.configDigest);
    expect(i.repoTags).toEqual(['quay.io/x/hello:1']);
    expect(i.repoDigests).toEqual([`quay.io/x/hello@${img.manifestDigest}`]);
    expect(svc.resolve(`quay.io/x/hello@${img.manifestDigest}`)?.id).toBe(i.id);
    const missing = buildImage([await makeTar([{ name: 'nope', content: 'n' }])]);
    await expectError(svc.commitManifest(missing.manifest, undefined), 'InvalidArgument', /which is missing/);
  });

  // An image of two layers whose config names a wrong diff_id for the second.
  async function wrongSecondDiffId() {
    const img = buildImage([await makeTar([{ name: 'a', content: 'a'.repeat(1000) }]), await makeTar([{ name: 'b', content: 'b' }])]);
    const cfg = JSON.parse(img.config.toString()) as { rootfs: { diff_ids: string[] } };
    cfg.rootfs.diff_ids[1] = sha('not this layer');
    const config = Buffer.from(JSON.stringify(cfg));
    const man = JSON.parse(img.manifest.toString()) as { config: { digest: string; size: number } };
    man.config = { ...man.config, digest: sha(config), size: config.length };
    const manifest = Buffer.from(JSON.stringify(man));
    const blobs = new Map([...img.blobs].filter(([d]) => d !== img.configDigest && d !== img.manifestDigest));
    blobs.set(sha(config), config);
    blobs.set(sha(manifest), manifest);
    return { ...img, config, configDigest: sha(config), manifest, manifestDigest: sha(manifest), blobs };
  }

  it('a commit failing at layer 2 (wrong diff_id) leaves no layer and no unreferenced blob', async () => {
    const svc = await open();
    const img = await wrongSecondDiffId();
    const digests = [...img.blobs.keys()].filter((d) => d !== img.manifestDigest);
    await expectError(
      svc.withBlobLease(digests, async (missing) => {
        expect(missing.sort()).toEqual([...digests].sort());
        for (const d of missing) await svc.ingestBlob(d, img.blobs.get(d)!.length, chunks(img.blobs.get(d)!));
        return svc.commitManifest(img.manifest, 'x.io/bad:1');
      }),
      'InvalidArgument',
      /does not match the config's diff_id/,
    );
    expect(layerDirs()).toEqual([]);
    expect(blobCount()).toBe(0);
    // The same through an archive import.
    await expectError(svc.import(chunks(await ociArchiveOf(img, 'x.io/bad:1'))), 'InvalidArgument', /does not match the config's diff_id/);
    expect(layerDirs()).toEqual([]);
    expect(blobCount()).toBe(0);
    expect(svc.list()).toEqual([]);
  });

  it('an archive of two images whose second fails to unpack records neither, and leaves none of their layers or blobs', async () => {
    const svc = await open();
    const good = buildImage([await makeTar([{ name: 'good', content: 'g'.repeat(500) }])]);
    const bad = await wrongSecondDiffId();
    const ref = (r: string) => ({ 'org.opencontainers.image.ref.name': r });
    const archive = await ociArchive(new Map([...good.blobs, ...bad.blobs]), [manifestEntry(good, ref('x.io/good:1')), manifestEntry(bad, ref('x.io/bad:1'))]);
    await expectError(svc.import(chunks(archive)), 'InvalidArgument', /does not match the config's diff_id/);
    expect(svc.list()).toEqual([]);
    expect(layerDirs()).toEqual([]);
    expect(blobCount()).toBe(0);
  });

  it('a lease keeps shared blobs from an image removed meanwhile; they go with the last image', async () => {
    const svc = await open();
    const l1 = await makeTar([{ name: 'shared', content: 'L1' }]);
    const a = buildImage([l1]);
    const b = buildImage([l1, await makeTar([{ name: 'own', content: 'L2' }])]);
    await svc.import(chunks(await ociArchiveOf(a, 'x.io/a:1')));
    const l1Digest = [...a.blobs.keys()].find((d) => d !== a.configDigest && d !== a.manifestDigest)!;
    const want = [...b.blobs.keys()].filter((d) => d !== b.manifestDigest);
    const i = await svc.withBlobLease(want, async (missing) => {
      expect(missing).not.toContain(l1Digest); // stored: a pull would skip it
      await svc.remove('x.io/a:1'); // image GC, concurrently
      expect(svc.hasBlob(l1Digest)).toBe(true);
      for (const d of missing) await svc.ingestBlob(d, b.blobs.get(d)!.length, chunks(b.blobs.get(d)!));
      return svc.commitManifest(b.manifest, 'x.io/b:1');
    });
    expect(i.id).toBe(b.configDigest);
    expect(svc.hasBlob(l1Digest)).toBe(true);
    expect(layerDirs()).toHaveLength(2);
    await svc.remove('x.io/b:1');
    expect(blobCount()).toBe(0);
    expect(layerDirs()).toEqual([]);
  });
});

describe('rootfs', () => {
  it.skipIf(!isRoot || !overlayAvailable())('rootfsSpec mounts with overlayfs: whiteouts and opaque dirs work, writes go to upper', async () => {
    const svc = await open();
    const img = await layeredImage();
    const [i] = await svc.import(chunks(await ociArchiveOf(img, 'x.io/layered:1')));
    expect(i!.username).toBe('nobody');
    const cdir = path.join(work, 'ctr');
    const spec = (await svc.rootfsSpec(i!.id, cdir)) as OverlaySpec;
    expect(spec.type).toBe('overlay');
    expect(spec.lowerdir).toEqual([...i!.chainIds].reverse().map((c) => path.join(root, 'layers', c.slice(7), 'fs')));
    expect(fs.statSync(spec.upperdir).isDirectory()).toBe(true);
    const target = path.join(cdir, 'merged');
    fs.mkdirSync(target);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', overlayMountOptions(spec), target]);
    mounts.push(target);
    checkMergedTree(target);
    fs.writeFileSync(path.join(target, 'etc/new'), 'n');
    fs.rmSync(path.join(target, 'keep/k'));
    execFileSync('umount', [target]);
    mounts.pop();
    expect(fs.readFileSync(path.join(spec.upperdir, 'etc/new'), 'utf8')).toBe('n');
    // the layer cache itself is untouched
    expect(fs.readFileSync(path.join(spec.lowerdir[2]!, 'keep/k'), 'utf8')).toBe('K');
  });

  it.skipIf(!isRoot || !overlayAvailable())('precreateMountTargets: targets made in upper only where no layer has them, /etc keeping its mode and owner', () => {
    const spec = (name: string): OverlaySpec => {
      const d = path.join(work, name);
      for (const sub of ['top', 'bottom', 'upper', 'work']) fs.mkdirSync(path.join(d, sub), { recursive: true });
      return { type: 'overlay', lowerdir: [path.join(d, 'top'), path.join(d, 'bottom')], upperdir: path.join(d, 'upper'), workdir: path.join(d, 'work') };
    };
    const targets = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

    const a = spec('targets-a');
    const [top, bottom] = a.lowerdir as [string, string];
    fs.mkdirSync(path.join(bottom, 'etc'), { mode: 0o750 });
    fs.writeFileSync(path.join(bottom, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    fs.writeFileSync(path.join(bottom, 'etc/hostname'), 'image\n');
    fs.mkdirSync(path.join(top, 'etc'));
    fs.chmodSync(path.join(top, 'etc'), 0o711);
    fs.chownSync(path.join(top, 'etc'), 9, 9);
    execFileSync('mknod', [path.join(top, 'etc/resolv.conf'), 'c', '0', '0']); // a whiteout: the image deleted it
    precreateMountTargets(a, targets);
    expect(fs.readdirSync(path.join(a.upperdir, 'etc'))).toEqual(['hosts']);
    const target = path.join(work, 'targets-a', 'merged');
    fs.mkdirSync(target);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', overlayMountOptions(a), target]);
    mounts.push(target);
    expect(fs.readdirSync(path.join(target, 'etc')).sort()).toEqual(['hostname', 'hosts', 'passwd']);
    const etc = fs.statSync(path.join(target, 'etc'));
    expect([etc.mode & 0o7777, etc.uid, etc.gid]).toEqual([0o711, 9, 9]);
    expect(fs.readFileSync(path.join(target, 'etc/hostname'), 'utf8')).toBe('image\n');

    const b = spec('targets-b'); // /etc a symlink: never shadowed by a directory
    fs.symlinkSync('usr/etc', path.join(b.lowerdir[0]!, 'etc'));
    precreateMountTargets(b, targets);
    expect(fs.readdirSync(b.upperdir)).toEqual([]);

    const c = spec('targets-c'); // no /etc at all
    precreateMountTargets(c, targets);
    expect(fs.readdirSync(path.join(c.upperdir, 'etc')).sort()).toEqual(['hostname', 'hosts', 'resolv.conf']);
    expect(fs.statSync(path.join(c.upperdir, 'etc')).mode & 0o7777).toBe(0o755);

    // A spare layer (SpareLayers) comes with all three made: what is not wanted goes.
    const spare = (name: string): OverlaySpec => {
      const x = spec(name);
      fs.mkdirSync(path.join(x.upperdir, 'etc'));
      for (const t of targets) fs.writeFileSync(path.join(x.upperdir, t), '');
      return x;
    };
    const d = spare('targets-d'); // the image has hostname and deleted resolv.conf
    fs.mkdirSync(path.join(d.lowerdir[1]!, 'etc'), { mode: 0o750 });
    fs.writeFileSync(path.join(d.lowerdir[1]!, 'etc/hostname'), 'image\n');
    fs.mkdirSync(path.join(d.lowerdir[0]!, 'etc'));
    execFileSync('mknod', [path.join(d.lowerdir[0]!, 'etc/resolv.conf'), 'c', '0', '0']);
    fs.chmodSync(path.join(d.lowerdir[0]!, 'etc'), 0o751);
    precreateMountTargets(d, targets, targets);
    expect(fs.readdirSync(path.join(d.upperdir, 'etc'))).toEqual(['hosts']);
    expect(fs.statSync(path.join(d.upperdir, 'etc')).mode & 0o7777).toBe(0o751);
    const e = spare('targets-e'); // every target replaced by a CRI mount
    precreateMountTargets(e, [], targets);
    expect(fs.readdirSync(e.upperdir)).toEqual([]);
    const f = spare('targets-f'); // /etc a symlink
    fs.symlinkSync('usr/etc', path.join(f.lowerdir[1]!, 'etc'));
    precreateMountTargets(f, targets, targets);
    expect(fs.readdirSync(f.upperdir)).toEqual([]);
  });

  it.skipIf(!isRoot)('copyRootfs (no-overlay fallback) gives the same merged tree', async () => {
    const img = await layeredImage();
    const svc = await open();
    const [i] = await svc.import(chunks(await ociArchiveOf(img, 'x.io/layered:1')));
    const blobs = new BlobStore(root);
    const cache = new LayerCache(root, blobs, {});
    const dest = path.join(work, 'copy');
    await copyRootfs(cache, i!.chainIds, dest);
    checkMergedTree(dest);
    const t = describeTree(dest);
    expect([...t.keys()].some((k) => t.get(k)!.startsWith('chr'))).toBe(false); // no whiteout devices left
  });
});
