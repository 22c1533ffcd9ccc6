// `peapod image load|ls|rm` against a real server: the CLI streams archives
// over peapod.v1.Peapod/LoadImages on the CRI socket; CRI ImageService sees
// the result. The CLI runs under the matrix runtime, as the server does.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadImagesResponse__Output } from '../../src/cri/generated/peapod/v1/LoadImagesResponse.js';
import { peapodProto } from '../../src/cri/proto.js';
import { peapodCommand, repoRoot, runtime, startServer, type TestServer } from '../support/server.js';

const build = join(repoRoot, 'images', 'build');
const busybox = join(build, 'busybox.tar');
const busyboxDocker = join(build, 'busybox-docker.tar');
const pause = join(build, 'pause.tar');

const hasSkopeo = spawnSync('skopeo', ['--version'], { stdio: 'ignore' }).status === 0;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Image id of a single-image OCI-layout archive: its manifest's config digest. */
function ociImageId(archive: string): string {
  const read = (p: string) => execFileSync('tar', ['-xOf', archive, p], { encoding: 'utf8' });
  const index = JSON.parse(read('index.json'));
  const manifest = JSON.parse(read(`blobs/sha256/${index.manifests[0].digest.slice(7)}`));
  return manifest.config.digest;
}

describe(`peapod image load, ls, rm [server on ${runtime}]`, () => {
  let s: TestServer;
  let tmp: string;
  let busyboxId: string;
  let pauseId: string;

  /** Runs the real CLI (`peapod image …` under the matrix runtime), stdin from `stdinFile` if given. */
  const cli = (args: string[], opts: { stdinFile?: string; socket?: string } = {}): Run => {
    const fd = opts.stdinFile ? openSync(opts.stdinFile, 'r') : undefined;
    try {
      const res = spawnSync(peapodCommand[0], [...peapodCommand.slice(1), 'image', ...args, '--socket', opts.socket ?? s.socket], {
        encoding: 'utf8',
        stdio: [fd ?? 'ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });
      return { code: res.status, stdout: res.stdout, stderr: res.stderr };
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  };
  const listed = async () => (await s.image.ListImages({})).images;
  const tagsOf = async (id: string) => (await listed()).find((i) => i.id === id)?.repoTags ?? [];

  beforeAll(async () => {
    if (![busybox, busyboxDocker, pause].every((f) => existsSync(f))) {
      execFileSync('make', ['-s', '-C', 'native'], { cwd: repoRoot, stdio: 'inherit' });
      execFileSync(process.execPath, ['images/build.mjs'], { cwd: repoRoot, stdio: 'inherit' });
    }
    busyboxId = ociImageId(busybox);
    pauseId = ociImageId(pause);
    tmp = mkdtempSync(join(tmpdir(), 'peapod-image-load-'));
    s = await startServer();
  }, 180_000);
  afterAll(async () => {
    await s?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('loads an OCI-layout archive, prints each image, and CRI sees it', async () => {
    const r = cli(['load', busybox]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Loaded image: docker.io/library/busybox:latest (${busyboxId})\n`);

    const img = (await listed()).find((i) => i.id === busyboxId);
    expect(img?.repoTags).toEqual(['docker.io/library/busybox:latest']);
    expect(Number(img!.size)).toBeGreaterThan(0);
    for (const ref of ['busybox', 'docker.io/library/busybox:latest', busyboxId]) {
      const st = await s.image.ImageStatus({ image: { image: ref } });
      expect(st.image?.id).toBe(busyboxId);
      expect(st.image?.repoTags).toContain('docker.io/library/busybox:latest');
    }
  });

  it('loads the docker-archive variant as the same image id', async () => {
    await s.image.RemoveImage({ image: { image: busyboxId } });
    expect(await tagsOf(busyboxId)).toEqual([]);
    const r = cli(['load', busyboxDocker]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Loaded image: docker.io/library/busybox:latest (${busyboxId})\n`);
    expect(await tagsOf(busyboxId)).toEqual(['docker.io/library/busybox:latest']);
  });

  it('loads two files in one command, in order', async () => {
    await s.image.RemoveImage({ image: { image: busyboxId } });
    const r = cli(['load', pause, busybox]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `Loaded image: registry.k8s.io/pause:3.9 (${pauseId})\n` + `Loaded image: docker.io/library/busybox:latest (${busyboxId})\n`,
    );
    const ids = (await listed()).map((i) => i.id);
    expect(ids).toContain(pauseId);
    expect(ids).toContain(busyboxId);
  });

  it('reads an archive from stdin ("-")', async () => {
    await s.image.RemoveImage({ image: { image: busyboxId } });
    const r = cli(['load', '-'], { stdinFile: busyboxDocker });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Loaded image: docker.io/library/busybox:latest (${busyboxId})\n`);
    expect(await tagsOf(busyboxId)).toEqual(['docker.io/library/busybox:latest']);
  });

  it.skipIf(!hasSkopeo)('--name completes a tag-only ref.name (archive written by skopeo)', async () => {
    const x = join(tmp, 'tag-only.tar');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${busybox}`, `oci-archive:${x}:mytag`]);
    const r = cli(['load', x, '--name', 'docker.io/library/peapod-named']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Loaded image: docker.io/library/peapod-named:mytag (${busyboxId})\n`);
    const st = await s.image.ImageStatus({ image: { image: 'peapod-named:mytag' } });
    expect(st.image?.id).toBe(busyboxId);
    expect(await tagsOf(busyboxId)).toEqual(['docker.io/library/busybox:latest', 'docker.io/library/peapod-named:mytag']);
  });
  if (!hasSkopeo) it.todo('--name completing a tag-only ref.name needs skopeo (not installed)');

  it('a docker-archive with several RepoTags tags the image with all of them', async () => {
    const dir = join(tmp, 'retag');
    mkdirSync(dir);
    execFileSync('tar', ['-xf', busyboxDocker, '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    manifest[0].RepoTags = ['busybox:latest', 'example.com/peapod/bb:v1'];
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    rmSync(join(dir, 'repositories'), { force: true });
    const archive = join(tmp, 'retag.tar');
    execFileSync('tar', ['-cf', archive, '-C', dir, '.']);
    const r = cli(['load', archive]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Loaded image: example.com/peapod/bb:v1 (${busyboxId})\n`);
    expect(await tagsOf(busyboxId)).toContain('example.com/peapod/bb:v1');
  });

  it('a corrupt or truncated archive exits 1 with the server message and adds nothing', async () => {
    const before = (await listed()).map((i) => `${i.id} ${i.repoTags.join(',')}`).sort();
    const truncated = join(tmp, 'truncated.tar');
    writeFileSync(truncated, readFileSync(busybox).subarray(0, 200_000));
    const garbage = join(tmp, 'garbage.tar');
    writeFileSync(garbage, Buffer.alloc(3 * 1024 * 1024, 0x5a)); // several chunks, none of them tar

    for (const f of [truncated, garbage]) {
      const r = cli(['load', f]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^peapod: image load: ${f}: .+\\(INVALID_ARGUMENT\\)\\n$`));
    }
    expect(cli(['load', truncated]).stderr).toMatch(/truncated|corrupt|end of data/i);
    expect((await listed()).map((i) => `${i.id} ${i.repoTags.join(',')}`).sort()).toEqual(before);

    // The server is not stuck on the failed loads.
    expect(cli(['load', pause]).code).toBe(0);
  });

  it('usage and local errors: exit 2 for usage, 1 for a missing file or an unreachable server', () => {
    const none = cli(['load']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give at least one archive FILE');
    expect(cli(['load', pause, busybox, '--name', 'x/y:z']).code).toBe(2);
    expect(cli(['load', '-', '-']).code).toBe(2);
    expect(cli(['frobnicate']).code).toBe(2);

    const missing = cli(['load', join(tmp, 'nope.tar')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`peapod: image load: ${join(tmp, 'nope.tar')}: no such file\n`);

    const down = cli(['load', pause], { socket: join(tmp, 'no-server.sock') });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^peapod: cannot reach the peapod server at .*no-server\.sock \(is "peapod serve" running\?\)/);
  });

  it('peapod image ls lists every tag like crictl images', async () => {
    const r = cli(['ls']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s{3,}TAG\s{3,}IMAGE ID\s{3,}SIZE$/);
    const row = lines.find((l) => l.startsWith('docker.io/library/busybox '));
    expect(row?.split(/\s+/)).toEqual(['docker.io/library/busybox', 'latest', busyboxId.slice(7, 20), expect.stringMatching(/^[\d.]+[kMG]?B$/)]);
    expect(lines.some((l) => /^registry\.k8s\.io\/pause\s+3\.9\s+/.test(l))).toBe(true);
    // Columns line up.
    const col = lines[0]!.indexOf('IMAGE ID');
    for (const l of lines.slice(1)) expect(l.slice(col, col + 13)).toMatch(/^[a-f0-9]{13}$/);
  });

  it('peapod image rm removes the image with every tag; a missing ref fails without stopping the others', async () => {
    const tags = await tagsOf(busyboxId);
    expect(tags.length).toBeGreaterThan(1);
    const r = cli(['rm', 'no-such-image', 'busybox']);
    expect(r.stderr).toBe('peapod: image rm: no such image "no-such-image"\n');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(tags.map((t) => `Deleted: ${t}\n`).join('') + `Deleted: ${busyboxId}\n`);
    expect((await listed()).map((i) => i.id)).not.toContain(busyboxId);
    for (const t of tags) expect((await s.image.ImageStatus({ image: { image: t } })).image).toBeNull();

    const again = cli(['rm', 'busybox']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('peapod: image rm: no such image "busybox"\n');
  });

  it('CRI ImageStatus of a missing image is OK with the image unset', async () => {
    const st = await s.image.ImageStatus({ image: { image: 'docker.io/library/never-loaded:1.0' } });
    expect(st.image).toBeNull();
  });

  it('CRI ImageFsInfo reports the bytes the images use', async () => {
    const fs = await s.image.ImageFsInfo({});
    expect(fs.imageFilesystems).toHaveLength(1);
    expect(Number(fs.imageFilesystems[0]!.usedBytes?.value)).toBeGreaterThan(0);
    expect(fs.imageFilesystems[0]!.fsId?.mountpoint).toBe(join(s.root, 'images'));
  });
  it("a load whose client has not sent the archive's end holds no other image call back; what it read stays, though removed meanwhile", async () => {
    expect(cli(['load', busybox]).code).toBe(0);
    const bytes = readFileSync(busybox);
    const client = new (peapodProto().peapod.v1.Peapod)(`unix:${s.socket}`, grpc.credentials.createInsecure());
    try {
      let answer: ((err: grpc.ServiceError | null, res?: LoadImagesResponse__Output) => void) | undefined;
      const loaded = new Promise<LoadImagesResponse__Output>((resolve, reject) => {
        answer = (err, res) => (err ? reject(err) : resolve(res!));
      });
      const call = client.LoadImages((err, res) => answer!(err, res));
      // Every entry but the archive's two closing blocks: the server has read each blob and waits for the end.
      call.write({ data: bytes.subarray(0, bytes.length - 1024) });
      await new Promise((r) => setTimeout(r, 1000));
      const within = <T>(p: Promise<T>, what: string) =>
        Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} waited for the load`)), 5000))]);
      // Removes busybox, whose blobs the load has read: they stay, held by the load.
      await within(s.image.RemoveImage({ image: { image: 'busybox' } }), 'RemoveImage');
      expect((await s.image.ImageStatus({ image: { image: 'busybox' } })).image).toBeNull();
      call.write({ data: bytes.subarray(bytes.length - 1024) });
      call.end();
      const res = await loaded;
      expect(res.images.map((i) => i.id)).toEqual([busyboxId]);
      expect((await s.image.ImageStatus({ image: { image: 'busybox' } })).image!.id).toBe(busyboxId);
    } finally {
      client.close();
    }
  });
});

describe(`an image unpacked outside the store's lock [server on ${runtime}]`, () => {
  let s: TestServer;
  beforeAll(async () => {
    // Each image waits 5 s between its unpacked layers and its record.
    s = await startServer({ PEAPOD_FAILPOINTS: 'image.unpacked=delay-5000' });
  }, 60_000);
  afterAll(async () => {
    await s?.cleanup();
  });

  it("holds no other image call back, and keeps its layers though a removal meanwhile drops another image's", async () => {
    const load = (archive: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(peapodCommand[0], [...peapodCommand.slice(1), 'image', 'load', archive, '--socket', s.socket], { stdio: 'ignore' });
        child.on('exit', resolve);
      });
    // The docker-archive: the same image, so the same layers (chain IDs).
    expect(await load(busyboxDocker)).toBe(0);
    const { chainID } = JSON.parse((await s.image.ImageStatus({ image: { image: 'busybox' }, verbose: true })).info.info!) as { chainID: string };
    const layerDir = join(s.root, 'images', 'layers', chainID.replace('sha256:', ''));
    expect(existsSync(layerDir)).toBe(true);
    let done = false;
    const windows = () => s.output().split('failpoint image.unpacked: waiting').length - 1;
    const before = windows();
    const loading = load(busybox).then((code) => ((done = true), code));
    const deadline = Date.now() + 30_000;
    while (windows() === before && !done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(windows()).toBe(before + 1);
    // The load has its layers and waits 5 s to record the image: a removal
    // goes ahead (it waited out the rest before), and leaves the layers the load holds.
    const t = Date.now();
    await s.image.RemoveImage({ image: { image: 'busybox' } });
    expect(Date.now() - t).toBeLessThan(2500);
    expect(done).toBe(false);
    expect((await s.image.ImageStatus({ image: { image: 'busybox' } })).image).toBeNull();
    expect(existsSync(layerDir)).toBe(true);
    expect(await loading).toBe(0);
    expect((await s.image.ImageStatus({ image: { image: 'busybox' } })).image!.id).toBe(ociImageId(busybox));
    expect(existsSync(layerDir)).toBe(true);
  });
});
