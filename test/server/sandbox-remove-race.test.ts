// RemovePodSandbox called several times at once for one pod (the kubelet's
// garbage collector and its pod deleter can overlap): every call succeeds, as
// a missing object is success, and the pod goes once. And a CreateContainer
// racing the pod's removal never leaves a container behind it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCode, podConfig } from '../support/cri-client.js';
import { preloadBusybox, sleeper } from '../support/images.js';
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
      config: sleeper('c'),
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

  it('a CreateContainer racing RemovePodSandbox fails or is removed with the pod: no container is left', async () => {
    // The create is held after its monitor reported, so that the whole removal runs meanwhile.
    await s.restart({ PEAPOD_FAILPOINTS: 'container.after-monitor=delay-400' });
    for (let i = 0; i < 3; i++) {
      const config = podConfig(`create-race-${i}`);
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config });
      const create = s.runtime.CreateContainer({
        podSandboxId,
        config: sleeper('c'),
        sandboxConfig: config,
      });
      // Started at staggered moments of the create.
      await new Promise((r) => setTimeout(r, i * 100));
      const [made, removed] = await Promise.allSettled([create, s.runtime.RemovePodSandbox({ podSandboxId })]);
      expect(removed.status).toBe('fulfilled');
      if (made.status === 'rejected') expect(['FAILED_PRECONDITION', 'NOT_FOUND']).toContain(grpcCode(made.reason));
      expect((await s.runtime.ListContainers({})).containers!.filter((c) => c.podSandboxId === podSandboxId)).toEqual([]);
      expect((await s.runtime.ListPodSandbox({})).items!.map((p) => p.id)).not.toContain(podSandboxId);
    }
    await s.restart();
    expect(mountsContaining(s.state)).toEqual([]);
  });
});
