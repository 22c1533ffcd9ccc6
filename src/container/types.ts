import type { ProcessIdentity } from '../linux/proc.js';

export type Propagation = 'PRIVATE' | 'HOST_TO_CONTAINER' | 'BIDIRECTIONAL';

export interface MountSpec {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  propagation: Propagation;
  /** More flags of the bind mount (CDI mounts give them; CRI mounts have none). */
  flags?: MountFlag[];
}

export type MountFlag = 'nosuid' | 'nodev' | 'noexec';

/** A host device node the container gets at containerPath (CRI Device). */
export interface DeviceSpec {
  containerPath: string;
  hostPath: string;
  /** Letters of rwm: the access its device cgroup rule allows ('' none: CDI's "none"). */
  permissions: string;
}

/** What a seccomp rule or the profile's default does (libseccomp's actions; `errno` for errno and trace). */
export interface SeccompAction {
  action: 'allow' | 'errno' | 'kill-thread' | 'kill-process' | 'trap' | 'trace' | 'log';
  errno: number;
}

export interface SeccompArg {
  index: number;
  op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'masked-eq';
  value: number;
  valueTwo: number;
}

/** A Localhost (JSON) profile as read at CreateContainer, validated (src/container/seccomp-profile.ts). */
export interface SeccompProfile {
  path: string;
  defaultAction: SeccompAction;
  /** libseccomp names (x86, x32...) besides the native one. */
  architectures: string[];
  flags: Array<'log' | 'spec-allow'>;
  syscalls: Array<{ names: string[]; action: SeccompAction; args: SeccompArg[] }>;
}

export type SeccompMode = 'unconfined' | 'default' | SeccompProfile;

/** Container security settings, as the CRI LinuxContainerSecurityContext asks. */
export interface SecuritySpec {
  privileged: boolean;
  capAdd: string[];
  capDrop: string[];
  runAsUser: number | null;
  runAsUsername: string;
  runAsGroup: number | null;
  supplementalGroups: number[];
  readonlyRootfs: boolean;
  noNewPrivs: boolean;
  /** null: the runtime's defaults (masked unless privileged). */
  maskedPaths: string[] | null;
  readonlyPaths: string[] | null;
  seccomp: SeccompMode;
  pidMode: 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
  /** TARGET: the container (of the same pod, running at the create) whose PID namespace this one joined, and that namespace's path. */
  pidTarget?: { id: string; namespace: string };
}

export interface ResourceSpec {
  cpuPeriod: number;
  cpuQuota: number;
  cpuShares: number;
  memoryLimitBytes: number;
  cpusetCpus: string;
  cpusetMems: string;
  oomScoreAdj: number;
  /** memory+swap; 0 = unset (no swap when memory is limited), -1 = unlimited. */
  memorySwapLimitBytes: number;
  /** Per page size, as the kubelet sends every size (0 where none is requested). */
  hugepageLimits: { pageSize: string; limit: number }[];
  /** Raw cgroup v2 files (a pure v2 host only). */
  unified: Record<string, string>;
}

/** The container as asked for: the domain form of CRI ContainerConfig. */
export interface ContainerSpec {
  name: string;
  attempt: number;
  /** The image reference as the client gave it (the kubelet gives the image id). */
  image: string;
  /** CRI user_specified_image: the image as the pod spec names it. Absent in older records. */
  userSpecifiedImage?: string;
  command: string[];
  args: string[];
  workingDir: string;
  env: Array<{ key: string; value: string }>;
  mounts: MountSpec[];
  /** CRI devices; absent: none. */
  devices?: DeviceSpec[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Relative to the sandbox's log directory. */
  logPath: string;
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
  security: SecuritySpec;
  resources: ResourceSpec;
  stopSignal: string;
}

/** The process peapod decided to run, after merging the image config. */
export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  capabilities: bigint;
  noNewPrivs: boolean;
  seccomp: SeccompMode;
}

export interface ExitStatus {
  exitCode: number;
  signal: number;
  finishedAt: bigint;
  reason: 'Completed' | 'Error' | 'OOMKilled' | 'StartError';
  message: string;
}

export type ContainerState = 'CREATED' | 'RUNNING' | 'EXITED' | 'UNKNOWN';

export interface Container {
  id: string;
  sandboxId: string;
  spec: ContainerSpec;
  imageId: string;
  /** The canonical image reference (repo digest, or the id) reported as image_ref. */
  imageRef: string;
  process: ProcessSpec;
  createdAt: bigint;
  startedAt: bigint;
  /** Absolute CRI log path, '' when the pod or container gave none. */
  logPath: string;
  cgroup: string;
  monitor: ProcessIdentity | null;
  init: ProcessIdentity | null;
  exit: ExitStatus | null;
}
