import type { ContainerManager } from '../container/manager.js';
import type { Container } from '../container/types.js';
import type { CgroupStats } from '../linux/cgroups.js';
import type { InterfaceCounters } from '../linux/netdev.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { Sandbox } from '../sandbox/types.js';
import { nowNs } from '../util/time.js';
import { podInterfaces } from './container.js';
import type { Metric } from './generated/runtime/v1/Metric.js';
import type { MetricDescriptor } from './generated/runtime/v1/MetricDescriptor.js';
import type { PodSandboxMetrics } from './generated/runtime/v1/PodSandboxMetrics.js';
import { type Implementation, writeEach } from './handlers.js';

// CRI pod metrics (KEP-2371, the kubelet's /metrics/cadvisor without
// cAdvisor): cAdvisor's names, help and label keys, as CRI-O gives them. The
// kubelet makes a Prometheus series of each Metric with its descriptor's label
// keys, and drops one whose label values do not match them in number.

type Kind = 'COUNTER' | 'GAUGE';
/** One series of a metric: its value and the values of the labels after the base ones. */
type Sample = { value: bigint | number; labels?: string[] };

interface Family<T> {
  name: string;
  help: string;
  kind: Kind;
  /** Label keys after id, name and image. */
  extraLabels?: string[];
  samples(of: T): Sample[];
}

const BASE_LABELS = ['id', 'name', 'image'];
const NS_PER_S = 1_000_000_000n;

/** Figures of a cgroup: a pod's or a container's. */
const cgroupFamilies: Family<CgroupStats>[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative CPU time consumed in seconds.',
    kind: 'COUNTER',
    extraLabels: ['cpu'],
    // The value is an integer: whole seconds, as CRI-O sends them.
    samples: (cg) => [{ value: cg.cpuUsageNs / NS_PER_S, labels: ['total'] }],
  },
  {
    name: 'container_memory_usage_bytes',
    help: 'Current memory usage in bytes, including all memory regardless of when it was accessed',
    kind: 'GAUGE',
    samples: (cg) => [{ value: cg.memoryUsageBytes }],
  },
  { name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.', kind: 'GAUGE', samples: (cg) => [{ value: cg.memoryWorkingSetBytes }] },
  { name: 'container_memory_rss', help: 'Size of RSS in bytes.', kind: 'GAUGE', samples: (cg) => [{ value: cg.memoryRssBytes }] },
  {
    name: 'container_memory_failures_total',
    help: 'Cumulative count of memory allocation failures.',
    kind: 'COUNTER',
    extraLabels: ['failure_type', 'scope'],
    // The cgroup's own counters hold its descendants' too: cAdvisor's "hierarchy" scope.
    samples: (cg) => [
      { value: cg.pageFaults, labels: ['pgfault', 'hierarchy'] },
      { value: cg.majorPageFaults, labels: ['pgmajfault', 'hierarchy'] },
    ],
  },
  { name: 'container_oom_events_total', help: 'Count of out of memory events observed for the container', kind: 'COUNTER', samples: (cg) => [{ value: cg.oomKills }] },
  { name: 'container_threads', help: 'Number of threads running inside the container', kind: 'GAUGE', samples: (cg) => [{ value: cg.pids }] },
];

/** What a container has beyond its cgroup: its spec and start. */
const containerFamilies: Family<Container>[] = [
  {
    name: 'container_spec_memory_limit_bytes',
    help: 'Memory limit for the container in bytes.',
    kind: 'GAUGE',
    samples: (c) => [{ value: c.spec.resources.memoryLimitBytes }],
  },
  { name: 'container_spec_cpu_shares', help: 'CPU share of the container.', kind: 'GAUGE', samples: (c) => [{ value: c.spec.resources.cpuShares }] },
  { name: 'container_spec_cpu_period', help: 'CPU period of the container.', kind: 'GAUGE', samples: (c) => [{ value: c.spec.resources.cpuPeriod }] },
  {
    name: 'container_spec_cpu_quota',
    help: 'CPU quota of the container.',
    kind: 'GAUGE',
    // -1 (no quota) cannot go in an unsigned value: none, as cAdvisor shows no quota as 0.
    samples: (c) => [{ value: Math.max(0, c.spec.resources.cpuQuota) }],
  },
  {
    name: 'container_start_time_seconds',
    help: 'Start time of the container since unix epoch in seconds.',
    kind: 'GAUGE',
    samples: (c) => [{ value: c.startedAt / NS_PER_S }],
  },
];

const counter = (name: string, help: string, field: keyof Omit<InterfaceCounters, 'name'>): Family<InterfaceCounters[]> => ({
  name,
  help,
  kind: 'COUNTER',
  extraLabels: ['interface'],
  samples: (links) => links.map((l) => ({ value: BigInt(l[field]), labels: [l.name] })),
});

/** A pod's network namespace, every link but lo. */
const networkFamilies: Family<InterfaceCounters[]>[] = [
  counter('container_network_receive_bytes_total', 'Cumulative count of bytes received', 'rxBytes'),
  counter('container_network_receive_packets_total', 'Cumulative count of packets received', 'rxPackets'),
  counter('container_network_receive_packets_dropped_total', 'Cumulative count of packets dropped while receiving', 'rxDropped'),
  counter('container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving', 'rxErrors'),
  counter('container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted', 'txBytes'),
  counter('container_network_transmit_packets_total', 'Cumulative count of packets transmitted', 'txPackets'),
  counter('container_network_transmit_packets_dropped_total', 'Cumulative count of packets dropped while transmitting', 'txDropped'),
  counter('container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting', 'txErrors'),
];

type Described = Pick<Family<unknown>, 'name' | 'help' | 'extraLabels'>;

export const metricDescriptors: MetricDescriptor[] = ([] as Described[]).concat(cgroupFamilies, containerFamilies, networkFamilies).map((f) => ({
  name: f.name,
  help: f.help,
  labelKeys: [...BASE_LABELS, ...(f.extraLabels ?? [])],
}));

function metricsOf<T>(list: Family<T>[], of: T | undefined, base: string[], at: bigint): Metric[] {
  if (of === undefined) return [];
  return list.flatMap((f) =>
    f.samples(of).map((s) => ({
      name: f.name,
      timestamp: at.toString(),
      metricType: f.kind,
      labelValues: [...base, ...(s.labels ?? [])],
      value: { value: s.value.toString() },
    })),
  );
}

/**
 * ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics:
 * every ready pod with its running containers, read at the call. A pod's
 * series are named "POD" with no image, as CRI-O names them; its network
 * series are the pod's (its containers share the namespace).
 */
export function metricHandlers(containers: ContainerManager, sandboxes: SandboxManager): Implementation {
  const podMetrics = (sb: Sandbox): PodSandboxMetrics => {
    const at = nowNs();
    const base = [sb.id, 'POD', ''];
    return {
      podSandboxId: sb.id,
      metrics: [...metricsOf(cgroupFamilies, containers.podStats(sb), base, at), ...metricsOf(networkFamilies, podInterfaces(sb), base, at)],
      containerMetrics: containers
        .inSandbox(sb.id)
        .filter((c) => containers.stateOf(c) === 'RUNNING')
        .map((c) => {
          const labels = [c.id, c.spec.name, c.spec.image];
          return {
            containerId: c.id,
            metrics: [...metricsOf(cgroupFamilies, containers.stats(c), labels, at), ...metricsOf(containerFamilies, c, labels, at)],
          };
        }),
    };
  };
  const readyPods = () => sandboxes.list({ state: 'READY' });
  return {
    async ListMetricDescriptors() {
      return { descriptors: metricDescriptors };
    },
    async ListPodSandboxMetrics() {
      return { podMetrics: readyPods().map(podMetrics) };
    },
    async StreamPodSandboxMetrics(_req, call) {
      await writeEach(call, readyPods(), (sb) => ({ podSandboxMetrics: [podMetrics(sb)] }));
    },
  };
}
