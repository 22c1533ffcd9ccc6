import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { grpcCode, podConfig } from '../support/cri-client.js';
import { busyboxTar, ensureTestImages } from '../support/images.js';
import { hasBinary, skopeoPush, startRegistry, type RealRegistry } from '../support/registry.js';
import { repoRoot, runtime, startServer, type TestServer } from '../support/server.js';

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
        config: { metadata: { name: 'c' }, image: { image: 'busybox' }, command: ['sleep', '60'] },
      });
      await s.runtime.StartContainer({ containerId });
      const r = await s.runtime.ExecSync({ containerId, cmd: ['echo', 'pulled'], timeout: '5' });
      expect(Buffer.from(r.stdout).toString()).toBe('pulled\n');
      const c = (await s.runtime.ContainerStatus({ containerId })).status!;
      expect(c.imageId).toBe(imageRef);
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
