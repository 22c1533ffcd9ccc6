// ContainerStats, ListContainerStats and PodSandboxStats as containerd fills
// them: the writable layer measured in the background (hard links once, one
// file system id for all), CPU rates from the previous sample, and the
// memory figures beyond usage and working set.
import * as grpc from '@grpc/grpc-js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cgroups, parsePressure } from '../../src/linux/cgroups.js';
import { execText, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

const MiB = 1024 * 1024;

describe(`container and pod stats [server on ${runtime}]`, () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  const pod = async (name: string) => (await s.runtime.RunPodSandbox({ config: podConfig(name) })).podSandboxId;
  async function run(podSandboxId: string, name: string, command: string[], extra: Record<string, unknown> = {}) {
    const { containerId } = await s.runtime.CreateContainer({ podSandboxId, config: { metadata: { name }, image: { image: BUSYBOX }, command, ...extra } });
    await s.runtime.StartContainer({ containerId });
    return containerId;
  }

  it('counts a hard-linked file of a writable layer once, all layers under one file system id', async () => {
    const p = await pod('layer');
    try {
      const a = await run(p, 'a', ['sleep', '300']);
      await run(p, 'b', ['sleep', '300']);
      expect((await execText(s.runtime, a, ['sh', '-c', `head -c ${MiB} /dev/urandom > /big && ln /big /big2 && sync`])).code).toBe(0);
      const layer = (await s.runtime.ContainerStats({ containerId: a })).stats!.writableLayer!;
      expect(Number(layer.usedBytes!.value)).toBeGreaterThanOrEqual(MiB);
      expect(Number(layer.usedBytes!.value)).toBeLessThan(2 * MiB);
      expect(BigInt(layer.timestamp)).toBeGreaterThan(0n);
      const all = (await s.runtime.ListContainerStats({ filter: { podSandboxId: p } })).stats;
      expect(all.map((c) => c.writableLayer!.fsId!.mountpoint)).toEqual([join(s.root, 'containers'), join(s.root, 'containers')]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('answers other calls while it walks a large writable layer', async () => {
    const p = await pod('many');
    try {
      const id = await run(p, 'many', ['sleep', '300']);
      // Straight into the upper dir: quicker than making them in the container.
      const dir = join(s.root, 'containers', id, 'upper', 'many');
      mkdirSync(dir);
      for (let i = 0; i < 30_000; i++) writeFileSync(join(dir, String(i)), '');
      const t0 = performance.now();
      // The container's first stats call waits for its walk.
      const stats = s.runtime.ListContainerStats({ filter: { id } }).then(() => performance.now() - t0);
      await s.runtime.Version({});
      const versionMs = performance.now() - t0;
      const statsMs = await stats;
      expect(versionMs, `Version took ${versionMs} ms, the stats call ${statsMs} ms`).toBeLessThan(statsMs / 2);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  it('fills usage_nano_cores from the previous sample, rss and page faults for a pod and its containers, available bytes under a limit', async () => {
    const p = await pod('busy');
    try {
      const limit = 64 * MiB;
      const busy = await run(p, 'busy', ['sh', '-c', 'while :; do :; done'], { linux: { resources: { memoryLimitInBytes: String(limit) } } });
      await sleep(200);
      const first = (await s.runtime.PodSandboxStats({ podSandboxId: p })).stats!.linux!;
      expect(first.cpu!.usageNanoCores).toBeNull(); // no earlier sample
      // Past the kernel's periodic flush of memory cgroup counters (every 2 s): before it, a few page faults may not show yet.
      await sleep(2100);
      const second = (await s.runtime.PodSandboxStats({ podSandboxId: p })).stats!.linux!;
      expect(Number(second.cpu!.usageNanoCores!.value)).toBeGreaterThan(0.3e9);
      const figures = JSON.stringify(second.memory);
      expect(Number(second.memory!.rssBytes!.value), figures).toBeGreaterThan(0);
      expect(Number(second.memory!.pageFaults!.value), figures).toBeGreaterThan(0);
      expect(second.memory!.majorPageFaults).not.toBeNull();
      // The pod's own cgroup has no limit.
      expect(second.memory!.availableBytes).toBeNull();
      // Loopback only (--network none): no interface to report, none the kubelet would read.
      expect(second.network).toBeNull();
      const c = second.containers.find((x) => x.attributes!.id === busy)!;
      expect(Number(c.cpu!.usageNanoCores!.value)).toBeGreaterThan(0.3e9);
      expect(Number(c.memory!.rssBytes!.value), JSON.stringify(c.memory)).toBeGreaterThan(0);
      expect(Number(c.memory!.pageFaults!.value), JSON.stringify(c.memory)).toBeGreaterThan(0);
      expect(Number(c.memory!.availableBytes!.value)).toBe(limit - Number(c.memory!.workingSetBytes!.value));
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
    }
  });

  const unified = Cgroups.detect().unified;
  it.skipIf(unified === undefined || !existsSync('/proc/pressure'))(
    "gives the pressure (PSI) of a container's and its pod's cgroup2 dir, as containerd on cgroup v2: the kernel's figures, totals in nanoseconds",
    async () => {
      const p = await pod('psi');
      try {
        // Three busy loops on this machine's two cores: some of them wait for a CPU.
        const id = await run(p, 'busy', ['sh', '-c', 'for i in 1 2 3; do (while :; do :; done) & done; wait']);
        const { cgroup } = JSON.parse((await s.runtime.ContainerStatus({ containerId: id, verbose: true })).info.info) as { cgroup: string };
        const cpuStall = () => parsePressure(readFileSync(join(unified!, cgroup, 'cpu.pressure'), 'utf8'))!.some.totalUs;
        await waitFor('a CPU stall', async () => cpuStall() > 0n);
        const before = cpuStall();
        const st = (await s.runtime.ContainerStats({ containerId: id })).stats!;
        const after = cpuStall();
        const total = BigInt(st.cpu!.psi!.Some!.Total);
        expect(total).toBeGreaterThanOrEqual(before * 1000n);
        expect(total).toBeLessThanOrEqual(after * 1000n);
        expect(total % 1000n).toBe(0n);
        expect(st.cpu!.psi!.Some!.Avg10).toBeGreaterThanOrEqual(0);
        for (const stalls of [st.memory!.psi!, st.io!.psi!]) expect([typeof stalls.Some!.Total, typeof stalls.Full!.Total]).toEqual(['string', 'string']);
        // The pod's figures are its own dir's, the container's parent. (Not
        // at least the container's: the kernel weights each CPU's stall by
        // the group's busy time there, so a parent's total can be less.)
        const podStall = () => parsePressure(readFileSync(join(unified!, dirname(cgroup), 'cpu.pressure'), 'utf8'))!.some.totalUs;
        const podBefore = podStall();
        const linux = (await s.runtime.PodSandboxStats({ podSandboxId: p })).stats!.linux!;
        const podAfter = podStall();
        const podTotal = BigInt(linux.cpu!.psi!.Some!.Total);
        expect(podBefore).toBeGreaterThan(0n);
        expect(podTotal).toBeGreaterThanOrEqual(podBefore * 1000n);
        expect(podTotal).toBeLessThanOrEqual(podAfter * 1000n);
        expect(linux.io!.psi!.Some).not.toBeNull();
      } finally {
        await s.runtime.RemovePodSandbox({ podSandboxId: p });
      }
    },
  );

  it('a stopped pod: PodSandboxStats is UNAVAILABLE and ListPodSandboxStats leaves it out, as containerd', async () => {
    const p = await pod('stopped');
    const live = await pod('live');
    try {
      await s.runtime.StopPodSandbox({ podSandboxId: p });
      await expect(s.runtime.PodSandboxStats({ podSandboxId: p })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      const ids = (await s.runtime.ListPodSandboxStats({})).stats.map((x) => x.attributes!.id);
      expect(ids).toContain(live);
      expect(ids).not.toContain(p);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: p });
      await s.runtime.RemovePodSandbox({ podSandboxId: live });
    }
  });
});
