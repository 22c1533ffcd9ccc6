// RemovePodSandbox called several times at once for one pod (the kubelet's
// garbage collector and its pod deleter can overlap): every call succeeds, as
// a missing object is success, and the pod goes once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { mountsContaining, runtime, startServer, type TestServer } from '../support/server.js';

describe(`concurrent RemovePodSandbox [server on ${runtime}]`, () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
  });

  afterAll(async () => {
    await s?.cleanup();
  });

  it('removes of a pod with a running container, started while the others run, all succeed', async () => {
    const config = podConfig('remove-race');
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config });
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId,
      config: { metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '300'] },
      sandboxConfig: config,
    });
    await s.runtime.StartContainer({ containerId });
    // One every few ms while the first runs: some arrive in each of its steps.
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      calls.push(s.runtime.RemovePodSandbox({ podSandboxId }));
      await new Promise((r) => setTimeout(r, 3));
    }
    const results = await Promise.allSettled(calls);
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    expect((await s.runtime.ListPodSandbox({})).items!.map((p) => p.id)).not.toContain(podSandboxId);
    expect((await s.runtime.ListContainers({})).containers!.map((c) => c.id)).not.toContain(containerId);
    expect(mountsContaining(s.state)).toEqual([]);
  });
});
