// Pulls over the OCI distribution API. The real registry (`docker-registry`, the
// distribution project) serves images pushed by skopeo; a fake registry in this
// process covers auth flows, corruption, redirects and request counting.
// Every server listens on 127.0.0.1 only; mirrors are configured exclusive so no
// upstream (docker.io, registry.k8s.io) is ever contacted.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseMirrorFlag, pullImage, type RegistryConfig, RegistryError } from '../../src/image/registry.js';
import { TokenCache } from '../../src/image/auth.js';
import { ImageService } from '../../src/image/service.js';
import { MT } from '../../src/image/types.js';
import { ARCH, type BuiltImage, buildImage, builtImage, layeredImage, ociArchiveOf } from '../support/image-archive.js';
import { makeTar, tmpDir } from '../support/image-tar.js';
import {
  type FakeRegistry,
  type FakeRegistryOptions,
  freePort,
  hasBinary,
  pushBlob,
  putManifest,
  type RealRegistry,
  sha256,
  skopeoPush,
  startFakeRegistry,
  startRegistry,
  startTokenServer,
  type TokenServer,
} from '../support/registry.js';
import { failure } from '../support/errors.js';
import { sleep, waitFor } from '../support/wait.js';

const OTHER_ARCH = ARCH === 'arm64' ? 'amd64' : 'arm64';
const noConfig: RegistryConfig = { mirrors: {}, insecure: [] };

let work: string;
let svc: ImageService;
beforeEach(async () => {
  work = tmpDir('peapod-pull-');
  svc = await ImageService.open({ root: path.join(work, 'root') });
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

function blobFiles(root: string): string[] {
  return fs.readdirSync(path.join(root, 'blobs/sha256')).map((n) => `sha256:${n}`);
}

// ------------------------------------------------------------ real registry

const canReal = hasBinary('docker-registry', ['--version']) && hasBinary('skopeo');
const busyboxTar = canReal ? builtImage('busybox.tar') : undefined;
const pauseTar = canReal ? builtImage('pause.tar') : undefined;
if (!canReal) console.warn('SKIP real-registry pull tests: docker-registry or skopeo missing');

describe.skipIf(!canReal || !busyboxTar || !pauseTar)('pull from a real distribution registry', () => {
  let reg: RealRegistry;
  let ref: ImageService; // images imported from the same tarballs, for comparison
  let refDir: string;
  let busyboxId: string;
  let pauseId: string;
  let busyboxDigest: string;
  let indexDigest: string;

  beforeAll(async () => {
    reg = await startRegistry();
    await skopeoPush(busyboxTar!, `${reg.host}/library/busybox:latest`);
    await skopeoPush(busyboxTar!, `${reg.host}/library/multi:native`);
    await skopeoPush(pauseTar!, `${reg.host}/pause:3.9`);
    refDir = tmpDir('peapod-pull-ref-');
    ref = await ImageService.open({ root: refDir });
    busyboxId = (await ref.import(fs.createReadStream(busyboxTar!)))[0]!.id;
    pauseId = (await ref.import(fs.createReadStream(pauseTar!)))[0]!.id;
    const head = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
    busyboxDigest = head.headers.get('docker-content-digest')!;
    const native = await fetch(`${reg.url}/v2/library/multi/manifests/native`, { headers: { accept: MT.ociManifest } });
    const nativeBytes = Buffer.from(await native.arrayBuffer());
    // A multi-platform index: another architecture first (a dummy image), then ours.
    const other = buildImage([await makeTar([{ name: 'other', content: 'not for this machine' }])], { arch: OTHER_ARCH });
    for (const b of other.blobs.values()) if (!b.equals(other.manifest)) await pushBlob(reg.url, 'library/multi', b);
    await putManifest(reg.url, 'library/multi', other.manifestDigest, other.manifest, MT.ociManifest);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [
          { mediaType: MT.ociManifest, digest: other.manifestDigest, size: other.manifest.length, platform: { os: 'linux', architecture: OTHER_ARCH } },
          { mediaType: MT.ociManifest, digest: sha256(nativeBytes), size: nativeBytes.length, platform: { os: 'linux', architecture: ARCH } },
        ],
      }),
    );
    indexDigest = await putManifest(reg.url, 'library/multi', 'latest', index, MT.ociIndex);
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
    if (refDir) fs.rmSync(refDir, { recursive: true, force: true });
  });

  const hubMirror = (): RegistryConfig => ({ mirrors: { 'docker.io': [reg.url] }, insecure: [], exclusiveMirrors: ['docker.io'] });

  it('pulls by tag: busybox → docker.io/library/busybox:latest through a docker.io mirror', async () => {
    const img = await pullImage(svc, 'busybox', { config: hubMirror() });
    expect(img.id).toBe(busyboxId);
    expect(img.repoTags).toEqual(['docker.io/library/busybox:latest']);
    expect(img.repoDigests).toEqual([`docker.io/library/busybox@${busyboxDigest}`]);
    expect(svc.resolve('busybox:latest')?.id).toBe(busyboxId);
    expect(svc.resolve(`busybox@${busyboxDigest}`)?.id).toBe(busyboxId);
    expect(img.chainIds.length).toBeGreaterThan(0);
  });

  it('pulls from the registry host itself (loopback is plain HTTP) by tag and by digest', async () => {
    const a = await pullImage(svc, `${reg.host}/library/busybox:latest`, { config: noConfig });
    expect(a.id).toBe(busyboxId);
    expect(a.repoTags).toEqual([`${reg.host}/library/busybox:latest`]);
    const svc2 = await ImageService.open({ root: path.join(work, 'root2') });
    const b = await pullImage(svc2, `${reg.host}/library/busybox@${busyboxDigest}`, { config: noConfig });
    expect(b.id).toBe(busyboxId);
    expect(b.repoTags).toEqual([]);
    expect(b.repoDigests).toEqual([`${reg.host}/library/busybox@${busyboxDigest}`]);
    expect(svc2.resolve(`${reg.host}/library/busybox@${busyboxDigest}`)?.id).toBe(busyboxId);
  });

  it('pulls registry.k8s.io/pause:3.9 through a mirror given as a flag', async () => {
    const m = parseMirrorFlag(`registry.k8s.io=${reg.url}`);
    const config: RegistryConfig = { mirrors: { [m.host]: [m.endpoint] }, insecure: [], exclusiveMirrors: ['registry.k8s.io'] };
    const img = await pullImage(svc, 'registry.k8s.io/pause:3.9', { config });
    expect(img.id).toBe(pauseId);
    expect(img.repoTags).toEqual(['registry.k8s.io/pause:3.9']);
    expect(img.repoDigests[0]).toMatch(/^registry\.k8s\.io\/pause@sha256:[a-f0-9]{64}$/);
    expect(img.config.Entrypoint).toEqual(['/pause']);
  });

  it('falls back to the next mirror when one is down', async () => {
    const dead = await freePort();
    const logs: string[] = [];
    const config: RegistryConfig = { mirrors: { 'registry.k8s.io': [`http://127.0.0.1:${dead}`, reg.url] }, insecure: [], exclusiveMirrors: ['registry.k8s.io'] };
    const img = await pullImage(svc, 'registry.k8s.io/pause:3.9', { config, log: (_l, msg, f) => logs.push(`${msg} ${String(f?.['endpoint'])}`) });
    expect(img.id).toBe(pauseId);
    expect(logs).toContain(`pull from endpoint failed http://127.0.0.1:${dead}/v2`);
  });

  it(`resolves a multi-platform index to ${ARCH}`, async () => {
    const img = await pullImage(svc, `${reg.host}/library/multi`, { config: noConfig });
    expect(img.id).toBe(busyboxId);
    expect(img.architecture).toBe(ARCH);
    expect(img.repoTags).toEqual([`${reg.host}/library/multi:latest`]);
    // the repo digest is the index digest (what was pulled), as containerd records it
    expect(img.repoDigests).toEqual([`${reg.host}/library/multi@${indexDigest}`]);
    expect(svc.resolve(`${reg.host}/library/multi@${indexDigest}`)?.id).toBe(busyboxId);
  });

  it('a missing tag or repository is NotFound naming the reference', async () => {
    const e = await failure(pullImage(svc, `${reg.host}/library/busybox:nope`, { config: noConfig }));
    expect(e.kind).toBe('NotFound');
    expect(e.message).toContain(`${reg.host}/library/busybox:nope`);
    expect(e.message).toMatch(/MANIFEST_UNKNOWN/);
    const e2 = await failure(pullImage(svc, 'registry.k8s.io/nothing-here:1', { config: { mirrors: { 'registry.k8s.io': [reg.url] }, insecure: [], exclusiveMirrors: ['registry.k8s.io'] } }));
    expect(e2.kind).toBe('NotFound');
    expect(e2.message).toContain('registry.k8s.io/nothing-here:1');
    expect(svc.list()).toEqual([]);
  });
});

describe.skipIf(!canReal || !busyboxTar || !hasBinary('openssl', ['version']))('pull from a real registry behind a token server', () => {
  let reg: RealRegistry;
  let tok: TokenServer;
  let dir: string;
  let busyboxId: string;
  beforeAll(async () => {
    dir = tmpDir('peapod-pull-token-');
    tok = await startTokenServer(dir, { pusher: 'push-pw', reader: 'read-pw' });
    reg = await startRegistry({ token: { realm: tok.realm, service: tok.service, issuer: tok.issuer, rootCertBundle: tok.certPath } });
    await skopeoPush(busyboxTar!, `${reg.host}/library/busybox:latest`, 'pusher:push-pw');
    await skopeoPush(busyboxTar!, `${reg.host}/private/busybox:1`, 'pusher:push-pw');
    const imp = await ImageService.open({ root: path.join(dir, 'imp') });
    busyboxId = (await imp.import(fs.createReadStream(busyboxTar!)))[0]!.id;
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
    await tok?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('anonymous token for a public repository', async () => {
    tok.requests.length = 0;
    const img = await pullImage(svc, `${reg.host}/library/busybox:latest`, { config: noConfig, tokenCache: new TokenCache() });
    expect(img.id).toBe(busyboxId);
    expect(tok.requests).toEqual([{ scope: ['repository:library/busybox:pull'] }]);
  });

  it('a private repository: denied anonymously, pulled with PullAuth or docker config.json credentials', async () => {
    const ref = `${reg.host}/private/busybox:1`;
    const e = await failure(pullImage(svc, ref, { config: noConfig, tokenCache: new TokenCache() }));
    expect(e.kind).toBe('FailedPrecondition');
    expect(e.message).toMatch(/pull access denied for 127\.0\.0\.1:\d+\/private\/busybox/);
    const bad = await failure(pullImage(svc, ref, { config: noConfig, auth: { username: 'reader', password: 'wrong' }, tokenCache: new TokenCache() }));
    expect(bad.kind).toBe('FailedPrecondition');
    expect(bad.message).toMatch(/incorrect username or password/);
    const img = await pullImage(svc, ref, { config: noConfig, auth: { username: 'reader', password: 'read-pw' }, tokenCache: new TokenCache() });
    expect(img.id).toBe(busyboxId);
    expect(img.repoTags).toEqual([ref]);
    const cfg = path.join(work, 'config.json');
    fs.writeFileSync(cfg, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('reader:read-pw').toString('base64') } } }));
    const svc2 = await ImageService.open({ root: path.join(work, 'root2') });
    expect((await pullImage(svc2, ref, { config: { ...noConfig, dockerConfigPath: cfg }, tokenCache: new TokenCache() })).id).toBe(busyboxId);
  });
});

// ------------------------------------------------------------ fake registry

describe('pull from the fake registry', () => {
  let fake: FakeRegistry | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  async function serve(opts: FakeRegistryOptions, repo = 'team/app', tag = '1', n = 3): Promise<{ img: BuiltImage; ref: string; digest: string }> {
    fake = await startFakeRegistry(opts);
    const img = await layeredImage(n);
    for (const b of img.blobs.values()) if (!b.equals(img.manifest)) fake.addBlob(b);
    const digest = fake.addManifest(repo, tag, { bytes: img.manifest, mediaType: MT.ociManifest });
    return { img, ref: `${fake.host}/${repo}:${tag}`, digest };
  }

  async function importedId(img: BuiltImage): Promise<string> {
    const s = await ImageService.open({ root: path.join(work, 'import') });
    return (await s.import((async function* () {
      yield await ociArchiveOf(img);
    })()))[0]!.id;
  }

  const blobGets = (f: FakeRegistry) => f.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));

  it('pulls without auth; the image equals the imported archive; a second pull fetches no blob', async () => {
    const { img, ref, digest } = await serve({});
    const a = await pullImage(svc, ref, { config: noConfig });
    expect(a.id).toBe(await importedId(img));
    expect(a.repoTags).toEqual([ref]);
    expect(a.repoDigests).toEqual([`${fake!.host}/team/app@${digest}`]);
    // containerd's size: the manifest, and its config's and layers' sizes.
    const layers = (JSON.parse(img.manifest.toString()) as { layers: Array<{ size: number }> }).layers;
    expect(a.size).toBe(img.manifest.length + img.config.length + layers.reduce((n, l) => n + l.size, 0));
    expect(blobGets(fake!)).toHaveLength(4); // config + 3 layers
    fake!.requests.length = 0;
    const b = await pullImage(svc, ref, { config: noConfig });
    expect(b.id).toBe(a.id);
    expect(blobGets(fake!)).toHaveLength(0);
    expect(fake!.requests.map((r) => r.path)).toEqual([`/v2/team/app/manifests/1`]);
  });

  it('fetches layers in parallel, at most 4 at a time', async () => {
    const { ref } = await serve({ blobDelayMs: 150 }, 'team/app', '1', 7);
    const t0 = Date.now();
    await pullImage(svc, ref, { config: noConfig });
    expect(blobGets(fake!)).toHaveLength(8);
    expect(fake!.maxConcurrentBlobs).toBe(4);
    expect(Date.now() - t0).toBeLessThan(8 * 150);
  });

  it('two pulls of the same image at once fetch each blob once: the second waits on the first\'s transfers, as containerd\'s', async () => {
    const { ref } = await serve({ blobDelayMs: 200 });
    const [a, b] = await Promise.all([pullImage(svc, ref, { config: noConfig }), pullImage(svc, ref, { config: noConfig })]);
    expect(b.id).toBe(a.id);
    expect(blobGets(fake!)).toHaveLength(4); // config + 3 layers, once
  });

  it('a pull waiting on another\'s transfers fetches the blobs itself once that pull is cancelled; one cancelled while it waits ends then', async () => {
    const { ref } = await serve({ blobDelayMs: 1500 });
    const first = new AbortController();
    let firstEnded = false;
    const cancelled = failure(pullImage(svc, ref, { config: noConfig, signal: first.signal })).finally(() => (firstEnded = true));
    await waitFor('the first pull\'s transfers', async () => blobGets(fake!).length === 4);
    const waiting = new AbortController();
    const gaveUp = failure(pullImage(svc, ref, { config: noConfig, signal: waiting.signal }));
    const second = pullImage(svc, ref, { config: noConfig });
    await waitFor('both manifests read', async () => fake!.requests.filter((r) => r.path.includes('/manifests/')).length === 3);
    await sleep(100);
    expect(blobGets(fake!)).toHaveLength(4); // neither fetches what the first is fetching
    waiting.abort();
    expect((await gaveUp).kind).toBe('DeadlineExceeded');
    expect(firstEnded).toBe(false); // it stopped waiting at once, not when the transfers ended
    first.abort();
    expect((await cancelled).kind).toBe('DeadlineExceeded');
    expect((await second).id).toBe((await svc.list())[0]!.id);
    expect(blobGets(fake!)).toHaveLength(8); // the second's own, after the first's were cancelled
    expect(fs.readdirSync(path.join(work, 'root/ingest'))).toEqual([]);
  });

  it('a corrupt blob fails the pull (Internal, digest mismatch) and is not kept', async () => {
    const img = await layeredImage(3);
    const bad = (JSON.parse(img.manifest.toString()) as { layers: Array<{ digest: string }> }).layers[1]!.digest;
    fake = await startFakeRegistry({ corrupt: new Set([bad]) });
    for (const b of img.blobs.values()) if (!b.equals(img.manifest)) fake.addBlob(b);
    fake.addManifest('team/app', '1', { bytes: img.manifest, mediaType: MT.ociManifest });
    const e = await failure(pullImage(svc, `${fake.host}/team/app:1`, { config: noConfig }));
    expect(e.kind).toBe('Internal');
    expect(e.message).toContain(bad);
    expect(e.message).toMatch(/digest mismatch/);
    expect(e.message).toContain(fake.url);
    expect(svc.hasBlob(bad)).toBe(false);
    expect(blobFiles(path.join(work, 'root'))).not.toContain(bad);
    expect(fs.readdirSync(path.join(work, 'root/ingest'))).toEqual([]);
    expect(svc.list()).toEqual([]);
  });

  it('a pull failing at layer 2 leaves no unpacked layer and no fetched blob', async () => {
    const img = buildImage([await makeTar([{ name: 'ok', content: 'fine' }]), Buffer.alloc(4096, 'not a tar ')], { gzipLayers: false });
    fake = await startFakeRegistry({});
    for (const b of img.blobs.values()) if (!b.equals(img.manifest)) fake.addBlob(b);
    fake.addManifest('team/app', '1', { bytes: img.manifest, mediaType: MT.ociManifest });
    const e = await failure(pullImage(svc, `${fake.host}/team/app:1`, { config: noConfig }));
    expect(e.kind).toBe('InvalidArgument');
    expect(e.message).toMatch(/corrupt or truncated tar stream/);
    expect(blobFiles(path.join(work, 'root'))).toEqual([]);
    expect(fs.readdirSync(path.join(work, 'root/layers'))).toEqual([]);
    expect(svc.list()).toEqual([]);
  });

  it('removing an image while a pull of another one sharing a layer is fetching does not break the pull', async () => {
    const l1 = await makeTar([{ name: 'shared', content: 'L1 '.repeat(100) }]);
    const a = buildImage([l1]);
    const b = buildImage([l1, await makeTar([{ name: 'own', content: 'L2' }])]);
    await svc.import((async function* () {
      yield await ociArchiveOf(a, 'x.io/a:1');
    })());
    const l1Digest = [...a.blobs.keys()].find((d) => d !== a.configDigest && d !== a.manifestDigest)!;
    fake = await startFakeRegistry({ blobDelayMs: 300 });
    for (const blob of b.blobs.values()) if (!blob.equals(b.manifest)) fake.addBlob(blob);
    fake.addManifest('team/b', '1', { bytes: b.manifest, mediaType: MT.ociManifest });
    const pull = pullImage(svc, `${fake.host}/team/b:1`, { config: noConfig });
    while (blobGets(fake).length === 0) await new Promise((r) => setTimeout(r, 10));
    await svc.remove('x.io/a:1'); // image GC while the pull fetches (it skipped L1: stored)
    const img = await pull;
    expect(img.id).toBe(b.configDigest);
    expect(blobGets(fake).map((r) => r.path)).not.toContain(`/v2/team/b/blobs/${l1Digest}`);
    expect(svc.hasBlob(l1Digest)).toBe(true);
    await svc.remove(img.id);
    expect(blobFiles(path.join(work, 'root'))).toEqual([]);
    expect(fs.readdirSync(path.join(work, 'root/layers')).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)('a full disk while fetching is ResourceExhausted and no other endpoint is tried', async () => {
    const small = path.join(work, 'small');
    fs.mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
    try {
      const full = await ImageService.open({ root: path.join(small, 'root') });
      const img = buildImage([await makeTar([{ name: 'big', content: randomBytes(1 << 20) }])]);
      fake = await startFakeRegistry({});
      for (const b of img.blobs.values()) if (!b.equals(img.manifest)) fake.addBlob(b);
      fake.addManifest('team/app', '1', { bytes: img.manifest, mediaType: MT.ociManifest });
      // The fake is both a mirror and the registry itself: two endpoints.
      const config: RegistryConfig = { mirrors: { [fake.host]: [fake.url] }, insecure: [] };
      const e = await failure(pullImage(full, `${fake.host}/team/app:1`, { config }));
      expect(e.kind).toBe('ResourceExhausted');
      expect(e.message).toMatch(/ENOSPC/);
      expect(fake.requests.filter((r) => r.path === '/v2/team/app/manifests/1')).toHaveLength(1);
      expect(fs.readdirSync(path.join(small, 'root/ingest'))).toEqual([]);
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('follows blob redirects to storage', async () => {
    const { img, ref } = await serve({ redirectBlobs: true, auth: 'bearer' });
    const a = await pullImage(svc, ref, { config: noConfig, tokenCache: new TokenCache() });
    expect(a.id).toBe(await importedId(img));
    expect(fake!.requests.filter((r) => r.path.startsWith('/storage/'))).toHaveLength(4);
  });

  it('bearer token flow, anonymous: one token request, then the token on every request', async () => {
    const { img, ref } = await serve({ auth: 'bearer' });
    const cache = new TokenCache();
    const a = await pullImage(svc, ref, { config: noConfig, tokenCache: cache });
    expect(a.id).toBe(await importedId(img));
    expect(fake!.tokenRequests).toBe(1);
    const [first, second, ...rest] = fake!.requests.filter((r) => r.path.startsWith('/v2/'));
    expect(first).toEqual({ method: 'GET', path: '/v2/team/app/manifests/1' });
    expect(second!.authorization).toMatch(/^Bearer /);
    for (const r of rest) expect(r.authorization).toBe(second!.authorization);
    expect(fake!.requests.find((r) => r.path === '/token')?.authorization).toBeUndefined();
    // a second pull reuses the cached token: one 401 (a new session), no token request
    const svc2 = await ImageService.open({ root: path.join(work, 'root2') });
    fake!.requests.length = 0;
    await pullImage(svc2, ref, { config: noConfig, tokenCache: cache });
    expect(fake!.tokenRequests).toBe(1);
    const [unauth, ...authd] = fake!.requests;
    expect(unauth!.authorization).toBeUndefined();
    expect(authd.length).toBe(5); // manifest retry + config + 3 layers
    expect(authd.every((r) => r.authorization === second!.authorization)).toBe(true);
  });

  it('bearer token flow with basic credentials from PullAuth (username/password and auth)', async () => {
    const { ref } = await serve({ auth: 'bearer', users: { alice: 's3cret' }, privateRepos: ['team/app'] });
    const denied = await failure(pullImage(svc, ref, { config: noConfig, tokenCache: new TokenCache() }));
    expect(denied.kind).toBe('FailedPrecondition');
    expect(denied.message).toMatch(/pull access denied for .*team\/app.*insufficient_scope/);
    expect(denied).toBeInstanceOf(RegistryError);
    expect((denied as RegistryError).details.status).toBe(401);

    const wrong = await failure(pullImage(svc, ref, { config: noConfig, auth: { username: 'alice', password: 'nope' }, tokenCache: new TokenCache() }));
    expect(wrong.kind).toBe('FailedPrecondition');
    expect(wrong.message).toMatch(/token server .* answered 401/);

    fake!.requests.length = 0;
    const a = await pullImage(svc, ref, { config: noConfig, auth: { username: 'alice', password: 's3cret' }, tokenCache: new TokenCache() });
    const tokenReq = fake!.requests.find((r) => r.path === '/token')!;
    expect(tokenReq.authorization).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    const svc2 = await ImageService.open({ root: path.join(work, 'root2') });
    const b = await pullImage(svc2, ref, { config: noConfig, auth: { auth: Buffer.from('alice:s3cret').toString('base64') }, tokenCache: new TokenCache() });
    expect(b.id).toBe(a.id);
  });

  it('credentials from a docker config.json for the registry host', async () => {
    const { ref } = await serve({ auth: 'bearer', users: { bob: 'pw' }, privateRepos: ['team/app'] });
    const cfg = path.join(work, 'config.json');
    fs.writeFileSync(cfg, JSON.stringify({ auths: { 'other.example': { auth: 'eDp5' }, [`http://${fake!.host}`]: { auth: Buffer.from('bob:pw').toString('base64') } } }));
    const img = await pullImage(svc, ref, { config: { ...noConfig, dockerConfigPath: cfg }, tokenCache: new TokenCache() });
    expect(img.repoTags).toEqual([ref]);
    // PullAuth wins over the config file
    const svc2 = await ImageService.open({ root: path.join(work, 'root2') });
    const e = await failure(pullImage(svc2, ref, { config: { ...noConfig, dockerConfigPath: cfg }, auth: { username: 'bob', password: 'bad' }, tokenCache: new TokenCache() }));
    expect(e.kind).toBe('FailedPrecondition');
  });

  it('identity token: OAuth2 refresh_token grant (POST)', async () => {
    const { ref } = await serve({ auth: 'bearer', refreshTokens: ['rt-123'], privateRepos: ['team/app'] });
    await pullImage(svc, ref, { config: noConfig, auth: { identityToken: 'rt-123' }, tokenCache: new TokenCache() });
    expect(fake!.requests.find((r) => r.path === '/token')?.method).toBe('POST');
  });

  it('Basic challenge: credentials sent directly; none → access denied', async () => {
    const { ref } = await serve({ auth: 'basic', users: { carol: 'pw' } });
    const e = await failure(pullImage(svc, ref, { config: noConfig }));
    expect(e.kind).toBe('FailedPrecondition');
    expect(e.message).toMatch(/pull access denied/);
    await pullImage(svc, ref, { config: noConfig, auth: { username: 'carol', password: 'pw' } });
    const authd = fake!.requests.filter((r) => r.authorization);
    expect(authd.length).toBeGreaterThan(0);
    expect(authd.every((r) => r.authorization === `Basic ${Buffer.from('carol:pw').toString('base64')}`)).toBe(true);
  });

  it('verifies the manifest digest when pulling by digest', async () => {
    const { img, digest } = await serve({});
    const other = await layeredImage(1);
    // serve another manifest under the requested digest
    fake!.manifests.set(`team/app@${digest}`, { bytes: other.manifest, mediaType: MT.ociManifest });
    const e = await failure(pullImage(svc, `${fake!.host}/team/app@${digest}`, { config: noConfig }));
    expect(e.kind).toBe('Internal');
    expect(e.message).toMatch(/digest mismatch/);
    void img;
  });

  it('schema 1 manifests are rejected as unsupported', async () => {
    fake = await startFakeRegistry({});
    fake.addManifest('old/app', 'v1', {
      bytes: Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'old/app', tag: 'v1', fsLayers: [], history: [] })),
      mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
    });
    const e = await failure(pullImage(svc, `${fake.host}/old/app:v1`, { config: noConfig }));
    expect(e.kind).toBe('Unimplemented');
    expect(e.message).toMatch(/schema 1/);
  });

  it('an index without this platform is NotFound listing what it has; a Docker manifest list resolves', async () => {
    fake = await startFakeRegistry({});
    const other = await layeredImage(1, { arch: OTHER_ARCH });
    const mine = await layeredImage(2);
    for (const im of [other, mine]) for (const b of im.blobs.values()) if (!b.equals(im.manifest)) fake.addBlob(b);
    const od = fake.addManifest('x/y', undefined, { bytes: other.manifest, mediaType: MT.ociManifest });
    const md = fake.addManifest('x/y', undefined, { bytes: mine.manifest, mediaType: MT.ociManifest });
    const entry = (d: string, b: Buffer, arch: string) => ({ mediaType: MT.dockerManifest, digest: d, size: b.length, platform: { os: 'linux', architecture: arch } });
    fake.addManifest('x/y', 'only-other', {
      bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerList, manifests: [entry(od, other.manifest, OTHER_ARCH)] })),
      mediaType: MT.dockerList,
    });
    const e = await failure(pullImage(svc, `${fake.host}/x/y:only-other`, { config: noConfig }));
    expect(e.kind).toBe('NotFound');
    expect(e.message).toContain(`linux/${OTHER_ARCH}`);
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerList, manifests: [entry(od, other.manifest, OTHER_ARCH), entry(md, mine.manifest, ARCH)] }));
    fake.addManifest('x/y', 'both', { bytes: list, mediaType: MT.dockerList });
    const img = await pullImage(svc, `${fake.host}/x/y:both`, { config: noConfig });
    expect(img.id).toBe(mine.configDigest);
    expect(img.manifestDigest).toBe(md);
    // containerd's size counts the index the manifest was chosen from too.
    const layers = (JSON.parse(mine.manifest.toString()) as { layers: Array<{ size: number }> }).layers;
    expect(img.size).toBe(list.length + mine.manifest.length + mine.config.length + layers.reduce((n, l) => n + l.size, 0));
    // only our platform's blobs were fetched
    expect(svc.hasBlob(other.configDigest)).toBe(false);
  });

  it('network errors are Internal naming the endpoint; cancellation is DeadlineExceeded', async () => {
    const port = await freePort();
    const e = await failure(pullImage(svc, `127.0.0.1:${port}/a/b:1`, { config: noConfig }));
    expect(e.kind).toBe('Internal');
    expect(e.message).toContain(`http://127.0.0.1:${port}/v2`);
    expect(e.message).toMatch(/ECONNREFUSED/);

    const { ref } = await serve({ blobDelayMs: 2000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const c = await failure(pullImage(svc, ref, { config: noConfig, signal: ac.signal }));
    expect(c.kind).toBe('DeadlineExceeded');
    expect(fs.readdirSync(path.join(work, 'root/ingest'))).toEqual([]);
  });
});
