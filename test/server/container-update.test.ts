// UpdateContainerResources is a patch: fields left zero or empty keep their
// values, as containerd merges an update into the container's spec (the
// kubelet's CPU manager sends cpuset_cpus alone).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups } from '../../src/linux/cgroups.js';
import { podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

describe(`UpdateContainerResources [server on ${runtime}]`, () => {
  const podRoot = `peapod-test-${process.pid}-update`;
  const cgroups = Cgroups.detect();
  let s: TestServer;

  beforeAll(async () => {
    s = await startServer({}, preloadBusybox, { args: ['--pod-cgroup-root', podRoot] });
  });

  afterAll(async () => {
    await s?.cleanup();
  });

  /** A cgroup file of the container, in the hierarchy (v1) or the cgroup2 tree that holds `controller`. */
  const read = (rel: string, controller: string, v1: string, v2: string) => {
    const at = cgroups.controllers.get(controller)!;
    return readFileSync(join(at.mount, rel, at.version === 1 ? v1 : v2), 'utf8').trim();
  };

  it('an update of cpuset_cpus alone keeps the CPU quota and the memory limit', async () => {
    const config = podConfig('update-patch');
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config });
    try {
      const { containerId } = await s.runtime.CreateContainer({
        podSandboxId,
        config: {
          metadata: { name: 'c' },
          image: { image: BUSYBOX },
          command: ['sleep', '300'],
          linux: { resources: { cpuPeriod: '100000', cpuQuota: '50000', memoryLimitInBytes: String(64 << 20) } },
        },
        sandboxConfig: config,
      });
      await s.runtime.StartContainer({ containerId });
      const rel = `${podRoot}/${podSandboxId}/${containerId}`;
      const quota = () => read(rel, 'cpu', 'cpu.cfs_quota_us', 'cpu.max');
      const memory = () => read(rel, 'memory', 'memory.limit_in_bytes', 'memory.max');
      const [quotaBefore, memoryBefore] = [quota(), memory()];
      expect(quotaBefore).toMatch(/^50000\b/);
      expect(memoryBefore).toBe(String(64 << 20));
      await s.runtime.UpdateContainerResources({ containerId, linux: { cpusetCpus: '0' } });
      expect(read(rel, 'cpuset', 'cpuset.cpus', 'cpuset.cpus')).toBe('0');
      expect(quota()).toBe(quotaBefore);
      expect(memory()).toBe(memoryBefore);
      // A later update of the memory limit alone keeps the cpuset and the quota.
      await s.runtime.UpdateContainerResources({ containerId, linux: { memoryLimitInBytes: String(128 << 20) } });
      expect(memory()).toBe(String(128 << 20));
      expect(quota()).toBe(quotaBefore);
      expect(read(rel, 'cpuset', 'cpuset.cpus', 'cpuset.cpus')).toBe('0');
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
      await cgroups.open(podRoot).remove();
    }
  });
});
