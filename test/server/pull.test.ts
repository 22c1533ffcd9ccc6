import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { criProto } from '../../src/cri/proto.js';
import { grpcCode, podConfig } from '../support/cri-client.js';
import { layeredImage } from '../support/image-archive.js';
import { busyboxTar, ensureTestImages } from '../support/images.js';
import { hasBinary, serveImage, skopeoPush, startFakeRegistry, startRegistry, startStub, type RealRegistry } from '../support/registry.js';
import { repoRoot, runtime, startServer, type TestServer } from '../support/server.js';
import { until } from '../support/wait.js';

const canRun = hasBinary('docker-registry', ['--version']) && hasBinary('skopeo');
if (!canRun) console.warn('SKIP PullImage server tests: docker-registry or skopeo missing');

// CRI PullImage through `peapod serve --registry-mirror HOST=URL`, against the
// real distribution registry on 127.0.0.1.
describe.skipIf(!canRun)(`PullImage through registry mirrors [server on ${runtime}]`, () => {
  let reg: RealRegistry;
  let s: TestServer;
  beforeAll(async () => {
    ensureTestImages();
    reg = await startRegistry();
    await skopeoPush(join(repoRoot, 'images', 'build', 'pause.tar'), `${reg.host}/pause:pulled`);
    await skopeoPush(busyboxTar, `${reg.host}/library/busybox:latest`);
    s = await startServer({}, undefined, {
      args: ['--registry-mirror', `registry.k8s.io=http://${reg.host}`, '--registry-mirror', `docker.io=http://${reg.host}`],
    });
  }, 120_000);
  afterAll(async () => {
    await s?.cleanup();
    await reg?.stop();
  });

  it('pulls through the mirror given in the exact flag form, and the image runs', async () => {
    expect((await s.image.ImageStatus({ image: { image: 'busybox' } })).image).toBeNull();
    const { imageRef } = await s.image.PullImage({ image: { image: 'busybox' } });
    expect(imageRef).toMatch(/^sha256:[0-9a-f]{64}$/);
    const st = (await s.image.ImageStatus({ image: { image: 'docker.io/library/busybox:latest' } })).image!;
    expect(st.id).toBe(imageRef);
    expect(st.repoTags).toContain('docker.io/library/busybox:latest');
    expect(st.repoDigests[0]).toMatch(/^docker\.io\/library\/busybox@sha256:[0-9a-f]{64}$/);
    expect((await s.image.ImageStatus({ image: { image: st.repoDigests[0]! } })).image!.id).toBe(imageRef);
    expect(Number(st.size)).toBeGreaterThan(0);

    const pause = await s.image.PullImage({ image: { image: 'registry.k8s.io/pause:pulled' } });
    const ps = (await s.image.ImageStatus({ image: { image: 'registry.k8s.io/pause:pulled' } })).image!;
    expect(ps.id).toBe(pause.imageRef);
    expect(ps.uid!.value).toBe('65535');

    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('pulled') });
    try {
      const { containerId } = await s.runtime.CreateContainer({
        podSandboxId,
        config: { metadata: { name: 'c' }, image: { image: imageRef, userSpecifiedImage: 'busybox' }, command: ['sleep', '60'] },
      });
      await s.runtime.StartContainer({ containerId });
      const r = await s.runtime.ExecSync({ containerId, cmd: ['echo', 'pulled'], timeout: '5' });
      expect(Buffer.from(r.stdout).toString()).toBe('pulled\n');
      const c = (await s.runtime.ContainerStatus({ containerId })).status!;
      expect(c.imageId).toBe(imageRef);
      // As containerd: the tag and the repo digest for the id the kubelet sends.
      expect(c.image).toMatchObject({ image: st.repoTags[0], userSpecifiedImage: 'busybox' });
      expect(c.imageRef).toBe(st.repoDigests[0]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
    }
  });

  it('answers NOT_FOUND for a tag the registry does not have, and adds nothing', async () => {
    const before = (await s.image.ListImages({})).images.length;
    // Named by the registry's own loopback address: a miss on a mirror would
    // fall through to the upstream registry, which tests never contact.
    await expect(s.image.PullImage({ image: { image: `${reg.host}/pause:missing` } })).rejects.toSatisfy(
      (e) => grpcCode(e) === 'NOT_FOUND',
    );
    expect((await s.image.ListImages({})).images.length).toBe(before);
  });
});

// A client that gives up on a pull (deadline or cancel) through the real
// server under each runtime: the server drops the registry transfer and keeps
// nothing of it. The registry is a stub on 127.0.0.1 that stalls a layer.
describe(`PullImage the client gives up on [server on ${runtime}]`, () => {
  type PullClient = grpc.Client & {
    PullImage(req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
  };
  let s: TestServer;
  let client: PullClient;
  beforeAll(async () => {
    s = await startServer();
    const def = criProto().runtime.v1.ImageService;
    client = new def(`unix:${s.socket}`, grpc.credentials.createInsecure()) as unknown as PullClient;
  });
  afterAll(async () => {
    client?.close();
    await s?.cleanup();
  });

  const pullCall = (ref: string, opts: grpc.CallOptions) => {
    let call!: grpc.ClientUnaryCall;
    const done = new Promise<grpc.ServiceError | null>((resolve) => {
      call = client.PullImage({ image: { image: ref } }, opts, (err) => resolve(err));
    });
    return { call, done };
  };
  const stored = () => ({
    blobs: readdirSync(join(s.root, 'images/blobs/sha256')).sort(),
    ingest: readdirSync(join(s.root, 'images/ingest')),
  });

  it('a deadline or a cancel closes the stalled transfer and keeps nothing; the server pulls on', async () => {
    const img = await layeredImage(2, { repeat: 2000 });
    const layer = (JSON.parse(img.manifest.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    const reg = await startStub(serveImage(img, layer));
    try {
      const ref = `${reg.host}/team/app:1`;
      const before = stored();
      const images = (await s.image.ListImages({})).images.length;

      const byDeadline = pullCall(ref, { deadline: Date.now() + 1000 });
      expect((await byDeadline.done)?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      await until('the server to drop its registry requests', () => reg.open() === 0);
      await until('the server to drop what it fetched', () => JSON.stringify(stored()) === JSON.stringify(before));

      reg.requests.length = 0;
      const byCancel = pullCall(ref, {});
      await until('the stalled blob request', () => reg.requests.some((r) => r.path.endsWith(layer)));
      byCancel.call.cancel();
      expect((await byCancel.done)?.code).toBe(grpc.status.CANCELLED);
      await until('the server to drop its registry requests', () => reg.open() === 0);
      await until('the server to drop what it fetched', () => JSON.stringify(stored()) === JSON.stringify(before));
      expect((await s.image.ListImages({})).images.length).toBe(images);
    } finally {
      await reg.stop();
    }

    // The same image, served whole: the pull after the given-up ones completes.
    const whole = await startStub(serveImage(img));
    try {
      const { imageRef } = await s.image.PullImage({ image: { image: `${whole.host}/team/app:1` } });
      expect(imageRef).toBe(img.configDigest);
    } finally {
      await whole.stop();
    }
  }, 30_000);

  it('two pulls of the same image at once fetch each blob once, and both answer with it', async () => {
    const img = await layeredImage(3);
    const reg = await startFakeRegistry({ blobDelayMs: 300 });
    try {
      for (const b of img.blobs.values()) if (!b.equals(img.manifest)) reg.addBlob(b);
      reg.addManifest('team/twice', '1', { bytes: img.manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      const image = { image: `${reg.host}/team/twice:1` };
      const [a, b] = await Promise.all([s.image.PullImage({ image }), s.image.PullImage({ image })]);
      expect([a.imageRef, b.imageRef]).toEqual([img.configDigest, img.configDigest]);
      expect(reg.requests.filter((r) => r.path.includes('/manifests/'))).toHaveLength(2); // both pulls ran, not one answered twice
      expect(reg.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toHaveLength(4); // config + 3 layers, once
    } finally {
      await reg.stop();
    }
  });
});
