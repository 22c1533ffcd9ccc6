// CRI pod metrics (ListMetricDescriptors, ListPodSandboxMetrics,
// StreamPodSandboxMetrics): cAdvisor's series from the kernel's figures, each
// with as many label values as its descriptor has keys (the kubelet drops a
// series otherwise).
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metric__Output } from '../../src/cri/generated/runtime/v1/Metric.js';
import { criProto } from '../../src/cri/proto.js';
import { parseNetDev } from '../../src/linux/netdev.js';
import { collectStream, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

const MEMORY_LIMIT = 64 * 1024 * 1024;

describe(`pod metrics [server on ${runtime}]`, () => {
  let s: TestServer;
  let podId: string;
  let busy: string;
  let pause: number;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    podId = (await s.runtime.RunPodSandbox({ config: podConfig('metrics') })).podSandboxId;
    pause = JSON.parse((await s.runtime.PodSandboxStatus({ podSandboxId: podId, verbose: true })).info.info!).pid as number;
    // Links of the pod's own, and traffic between them: a datagram to a
    // neighbour nobody is makes v0 ask for it (ARP), which v1 receives.
    const inPod = (...cmd: string[]) => execFileSync('nsenter', [`--net=/proc/${pause}/ns/net`, ...cmd]);
    inPod('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    inPod('ip', 'addr', 'add', '10.253.0.1/24', 'dev', 'v0');
    inPod('ip', 'link', 'set', 'v0', 'up');
    inPod('ip', 'link', 'set', 'v1', 'up');
    inPod('bash', '-c', 'echo metrics > /dev/udp/10.253.0.2/9');
    const create = async (name: string, command: string[]) =>
      (
        await s.runtime.CreateContainer({
          podSandboxId: podId,
          config: {
            metadata: { name },
            image: { image: BUSYBOX },
            command,
            linux: { resources: { memoryLimitInBytes: String(MEMORY_LIMIT), cpuShares: '512' } },
          },
        })
      ).containerId;
    // Over a second of CPU (6 s busy: a loaded machine gives it a sixth of a core), then idle.
    busy = await create('busy', ['sh', '-c', 'end=$(($(date +%s) + 6)); while [ $(date +%s) -lt $end ]; do :; done; sleep 3600']);
    await s.runtime.StartContainer({ containerId: busy });
    await create('never-started', ['sleep', '3600']);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const cpu = (await s.runtime.ContainerStats({ containerId: busy })).stats!.cpu!.usageCoreNanoSeconds!.value;
      if (BigInt(cpu) >= 1_000_000_000n) break;
      if (Date.now() > deadline) throw new Error(`the busy container used ${cpu} ns of CPU`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  const value = (metrics: Metric__Output[], name: string, extra: string[] = []) => {
    const found = metrics.filter((m) => m.name === name && m.labelValues.slice(3).join() === extra.join());
    expect(found, name).toHaveLength(1);
    return BigInt(found[0]!.value!.value);
  };

  it("gives cAdvisor's series of a ready pod and its running containers, each as its descriptor says", async () => {
    const { descriptors } = await s.runtime.ListMetricDescriptors({});
    const keys = new Map(descriptors.map((d) => [d.name, d.labelKeys]));
    expect(keys.size).toBe(descriptors.length);
    for (const d of descriptors) expect(d.labelKeys.slice(0, 3)).toEqual(['id', 'name', 'image']);
    expect(keys.get('container_cpu_usage_seconds_total')).toEqual(['id', 'name', 'image', 'cpu']);
    expect(keys.get('container_network_receive_bytes_total')).toEqual(['id', 'name', 'image', 'interface']);

    const { podMetrics } = await s.runtime.ListPodSandboxMetrics({});
    const pod = podMetrics.find((p) => p.podSandboxId === podId)!;
    // Every series matches its descriptor, as the kubelet requires.
    for (const m of [...pod.metrics, ...pod.containerMetrics.flatMap((c) => c.metrics)]) {
      expect(keys.has(m.name), m.name).toBe(true);
      expect(m.labelValues, m.name).toHaveLength(keys.get(m.name)!.length);
      expect(BigInt(m.timestamp)).toBeGreaterThan(0n);
    }

    // Only the running container.
    expect(pod.containerMetrics.map((c) => c.containerId)).toEqual([busy]);
    const c = pod.containerMetrics[0]!.metrics;
    for (const m of c) expect(m.labelValues.slice(0, 3)).toEqual([busy, 'busy', BUSYBOX]);
    expect(value(c, 'container_cpu_usage_seconds_total', ['total'])).toBeGreaterThanOrEqual(1n);
    expect(c.find((m) => m.name === 'container_cpu_usage_seconds_total')!.metricType).toBe('COUNTER');
    expect(value(c, 'container_spec_memory_limit_bytes')).toBe(BigInt(MEMORY_LIMIT));
    expect(value(c, 'container_spec_cpu_shares')).toBe(512n);
    const status = (await s.runtime.ContainerStatus({ containerId: busy })).status!;
    expect(value(c, 'container_start_time_seconds')).toBe(BigInt(status.startedAt) / 1_000_000_000n);
    const workingSet = value(c, 'container_memory_working_set_bytes');
    expect(workingSet).toBeGreaterThan(0n);
    expect(workingSet).toBeLessThanOrEqual(BigInt(MEMORY_LIMIT));
    expect(value(c, 'container_threads')).toBeGreaterThanOrEqual(1n);
    expect(value(c, 'container_memory_failures_total', ['pgfault', 'hierarchy'])).toBeGreaterThan(0n);
    expect(value(c, 'container_oom_events_total')).toBe(0n);

    // The pod's own series: its cgroup (the container's CPU counted in it) and its links but lo.
    for (const m of pod.metrics) expect(m.labelValues.slice(0, 3)).toEqual([podId, 'POD', '']);
    expect(value(pod.metrics, 'container_cpu_usage_seconds_total', ['total'])).toBeGreaterThanOrEqual(1n);
    const links = () => new Map(parseNetDev(readFileSync(`/proc/${pause}/net/dev`, 'utf8')).map((l) => [l.name, l]));
    const before = links();
    const { podMetrics: again } = await s.runtime.ListPodSandboxMetrics({});
    const after = links();
    const net = again.find((p) => p.podSandboxId === podId)!.metrics.filter((m) => m.name.startsWith('container_network_'));
    expect(net.map((m) => m.labelValues[3]).sort()).toEqual([...Array(8).fill('v0'), ...Array(8).fill('v1')]);
    expect(BigInt(after.get('v0')!.txPackets)).toBeGreaterThan(0n);
    expect(BigInt(after.get('v1')!.rxPackets)).toBeGreaterThan(0n);
    // Each figure is the kernel's, read between the two reads of /proc.
    const fields = { transmit_packets: 'txPackets', transmit_bytes: 'txBytes', receive_packets: 'rxPackets', receive_bytes: 'rxBytes' } as const;
    for (const link of ['v0', 'v1']) {
      for (const [series, field] of Object.entries(fields)) {
        const got = value(net, `container_network_${series}_total`, [link]);
        expect(got, `${link} ${series}`).toBeGreaterThanOrEqual(BigInt(before.get(link)![field]));
        expect(got, `${link} ${series}`).toBeLessThanOrEqual(BigInt(after.get(link)![field]));
      }
    }
  });

  it('StreamPodSandboxMetrics sends the same pods, one per response; a stopped pod is left out', async () => {
    const other = (await s.runtime.RunPodSandbox({ config: podConfig('metrics-stopped') })).podSandboxId;
    await s.runtime.StopPodSandbox({ podSandboxId: other });
    try {
      const client = new (criProto().runtime.v1.RuntimeService)(`unix:${s.socket}`, grpc.credentials.createInsecure());
      const responses = await collectStream(client.StreamPodSandboxMetrics({}));
      client.close();
      expect(responses.map((r) => r.podSandboxMetrics.length)).toEqual(responses.map(() => 1));
      const streamed = responses.map((r) => r.podSandboxMetrics[0]!);
      expect(streamed.map((p) => p.podSandboxId)).toEqual([podId]);
      expect(streamed[0]!.containerMetrics.map((c) => c.containerId)).toEqual([busy]);
      expect((await s.runtime.ListPodSandboxMetrics({})).podMetrics.map((p) => p.podSandboxId)).toEqual([podId]);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: other });
    }
  });
});
