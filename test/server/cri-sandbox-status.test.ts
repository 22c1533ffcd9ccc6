// PodSandboxStatus carries its containers' statuses: with the EventedPLEG
// feature gate the kubelet reads them from there alone (when timestamp is set).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

describe(`PodSandboxStatus with container statuses [server on ${runtime}]`, () => {
  let s: TestServer;
  let logDir: string;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    logDir = mkdtempSync(join(tmpdir(), 'peapod-logs-'));
  });
  afterAll(async () => {
    await s?.cleanup();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('lists every container of the sandbox with the status ContainerStatus returns', async () => {
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('with-ctrs', { logDirectory: logDir }) });
    const empty = await s.runtime.PodSandboxStatus({ podSandboxId });
    expect(empty.containersStatuses).toEqual([]);
    expect(BigInt(empty.timestamp)).toBeGreaterThan(0n);

    const create = async (name: string) =>
      (
        await s.runtime.CreateContainer({
          podSandboxId,
          config: { metadata: { name }, image: { image: BUSYBOX }, command: ['sleep', '3600'], logPath: `${name}.log` },
        })
      ).containerId;
    const running = await create('running');
    await s.runtime.StartContainer({ containerId: running });
    const created = await create('created');

    const st = await s.runtime.PodSandboxStatus({ podSandboxId });
    const byId = new Map(st.containersStatuses.map((c) => [c.id, c]));
    expect([...byId.keys()].sort()).toEqual([running, created].sort());
    expect(byId.get(running)).toMatchObject({ state: 'CONTAINER_RUNNING', metadata: { name: 'running' }, image: { image: BUSYBOX } });
    expect(byId.get(created)).toMatchObject({ state: 'CONTAINER_CREATED', metadata: { name: 'created' } });
    for (const id of [running, created]) {
      const { status } = await s.runtime.ContainerStatus({ containerId: id });
      expect(byId.get(id)).toEqual(status);
    }
    await s.runtime.StopPodSandbox({ podSandboxId });
    await s.runtime.RemovePodSandbox({ podSandboxId });
  });
});
