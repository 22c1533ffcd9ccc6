import type { ProcessIdentity } from '../linux/proc.js';
import type { PodNamespace } from '../linux/namespaces.js';

/** Where a pod-level namespace comes from (CRI NamespaceMode). */
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface NamespaceOptions {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
  targetId: string;
}

export interface PodMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

export interface PortMapping {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

/** The pod as asked for: the domain form of CRI PodSandboxConfig. */
export interface SandboxSpec {
  metadata: PodMetadata;
  hostname: string;
  logDirectory: string;
  dnsConfig: DnsConfig | null;
  portMappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  namespaceOptions: NamespaceOptions;
  cgroupParent: string;
  sysctls: Record<string, string>;
  runtimeHandler: string;
}

export type SandboxState = 'READY' | 'NOTREADY';

/** A sandbox as recorded on disk and kept in memory. */
export interface Sandbox {
  id: string;
  spec: SandboxSpec;
  createdAt: bigint;
  /** The pause process; null once it has been stopped and reaped. */
  pause: ProcessIdentity | null;
  /** For the namespaces the pod owns: the pinned netns file, pause's /proc/PID/ns/* for the others. */
  namespaces: Partial<Record<PodNamespace, string>>;
  /** Set by StopPodSandbox: a stopped sandbox never turns READY again. */
  stopped: boolean;
  /**
   * False while RunPodSandbox is still building it. A record found incomplete
   * at start-up belongs to a server that died half-way and is cleaned away;
   * if its CNI DEL fails it is kept instead, stopped and complete, for a retry.
   */
  complete: boolean;
  network: { ip: string; additionalIps: string[] };
  /**
   * The pod's cgroup: the kubelet's cgroup_parent, or one under peapod's
   * podCgroupRoot that peapod makes and removes. Recorded, so that a server
   * started with another podCgroupRoot still removes it.
   */
  cgroup: string;
  /** Pod networking (CNI ADD) was started and not yet torn down (DEL). */
  networkAttached?: boolean;
}

export interface SandboxFilter {
  id?: string;
  state?: SandboxState;
  labelSelector?: Record<string, string>;
}
