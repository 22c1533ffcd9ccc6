// UpdateContainerResources is a patch: fields left zero or empty keep their
// values, as containerd merges an update into the container's spec (the
// kubelet's CPU manager sends cpuset_cpus alone). And the swap limit, the
// hugepage limits and the unified map reach the cgroup.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups } from '../../src/linux/cgroups.js';
import { execText, grpcCode, podConfig } from '../support/cri-client.js';
import { preloadBusybox, sleeper } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

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
        config: sleeper('c', { linux: { resources: { cpuPeriod: '100000', cpuQuota: '50000', memoryLimitInBytes: String(64 << 20) } } }),
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

  const memsw = cgroups.controllers.get('memory')?.version === 1 && existsSync(join(cgroups.controllers.get('memory')!.mount, 'memory.memsw.limit_in_bytes'));
  it.skipIf(!memsw)('writes memory_swap_limit_in_bytes (v1 memory+swap) at create and update, and reports it', async () => {
    const config = podConfig('update-swap');
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config });
    try {
      const container = (name: string, linux: object) =>
        s.runtime.CreateContainer({
          podSandboxId,
          config: sleeper(name, { linux }),
          sandboxConfig: config,
        });
      const { containerId } = await container('c', { resources: { memoryLimitInBytes: String(64 << 20), memorySwapLimitInBytes: String(128 << 20) } });
      const rel = `${podRoot}/${podSandboxId}/${containerId}`;
      const memswLimit = () => read(rel, 'memory', 'memory.memsw.limit_in_bytes', '');
      expect(memswLimit()).toBe(String(128 << 20));
      const status = (await s.runtime.ContainerStatus({ containerId })).status!;
      expect(status.resources!.linux!.memorySwapLimitInBytes).toBe(String(128 << 20));
      await s.runtime.UpdateContainerResources({ containerId, linux: { memoryLimitInBytes: String(64 << 20), memorySwapLimitInBytes: String(256 << 20) } });
      expect(memswLimit()).toBe(String(256 << 20));
      // unified needs a pure cgroup v2 host: refused here, nothing left of the container.
      const err = await container('u', { resources: { unified: { 'memory.high': '1000000' } } }).catch((e) => e);
      expect(grpcCode(err)).toBe('INVALID_ARGUMENT');
      expect((await s.runtime.ListContainers({ filter: { podSandboxId } })).containers!.map((c) => c.id)).toEqual([containerId]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
      await cgroups.open(podRoot).remove();
    }
  });

  const memoryV1 = cgroups.controllers.get('memory')?.version === 1;
  it.skipIf(!memoryV1)('an update the kernel refuses changes nothing: not the CPU quota sent with it, nor the status, nor the record', async () => {
    const config = podConfig('update-refused');
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config });
    try {
      // 24 MiB in the pod's /dev/shm: charged to the container, and without swap the kernel cannot reclaim it.
      const { containerId } = await s.runtime.CreateContainer({
        podSandboxId,
        config: sleeper('c', {
          command: ['sh', '-c', 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 && touch /dev/shm/done && exec sleep 300'],
          linux: { resources: { cpuPeriod: '100000', cpuQuota: '50000', memoryLimitInBytes: String(64 << 20) } },
        }),
        sandboxConfig: config,
      });
      await s.runtime.StartContainer({ containerId });
      await waitFor('the container to fill its /dev/shm', async () => (await execText(s.runtime, containerId, ['ls', '/dev/shm'])).out.includes('done'));
      const rel = `${podRoot}/${podSandboxId}/${containerId}`;
      const quota = () => read(rel, 'cpu', 'cpu.cfs_quota_us', 'cpu.max');
      const memory = () => read(rel, 'memory', 'memory.limit_in_bytes', 'memory.max');
      const status = async () => (await s.runtime.ContainerStatus({ containerId })).status!.resources!.linux!;
      const before = { quota: quota(), memory: memory(), status: await status() };
      expect(before.quota).toBe('50000');

      // The quota is written before the memory limit, which the kernel refuses (EBUSY).
      const err = await s.runtime.UpdateContainerResources({ containerId, linux: { cpuQuota: '20000', memoryLimitInBytes: String(8 << 20) } }).catch((e) => e);
      expect(grpcCode(err)).toBe('FAILED_PRECONDITION');
      expect(String(err.message)).toMatch(/cannot lower the memory limit/);
      expect({ quota: quota(), memory: memory(), status: await status() }).toEqual(before);
      const rec = JSON.parse(readFileSync(join(s.state, 'containers', containerId, 'record.json'), 'utf8'));
      expect([rec.spec.resources.cpuQuota, rec.spec.resources.memoryLimitBytes]).toEqual([50000, 64 << 20]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
      await cgroups.open(podRoot).remove();
    }
  });

  it('loads a container record written before swap, hugepage and unified limits were kept, and updates it', async () => {
    const config = podConfig('update-legacy');
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config });
    try {
      const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: sleeper('c'), sandboxConfig: config });
      await s.runtime.StartContainer({ containerId });
      await s.kill9();
      const file = join(s.state, 'containers', containerId, 'record.json');
      const rec = JSON.parse(readFileSync(file, 'utf8'));
      for (const k of ['memorySwapLimitBytes', 'hugepageLimits', 'unified']) delete rec.spec.resources[k];
      writeFileSync(file, JSON.stringify(rec));
      await s.restart();
      const { status } = await s.runtime.ContainerStatus({ containerId });
      expect(status!.state).toBe('CONTAINER_RUNNING');
      expect(status!.resources!.linux).toMatchObject({ memorySwapLimitInBytes: '0', hugepageLimits: [] });
      await s.runtime.UpdateContainerResources({ containerId, linux: { cpusetCpus: '0' } });
      expect(read(`${podRoot}/${podSandboxId}/${containerId}`, 'cpuset', 'cpuset.cpus', 'cpuset.cpus')).toBe('0');
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
      await cgroups.open(podRoot).remove();
    }
  });
});
