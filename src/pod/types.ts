// The pod runner's domain: a Pod manifest as peapod understands it (PodSpec),
// and what the runner records about a pod it runs (PodRecord).

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface HttpHeader {
  name: string;
  value: string;
}

/** A lifecycle hook or probe action: exactly one of exec, httpGet, tcpSocket. */
export interface Handler {
  exec?: { command: string[] };
  httpGet?: { scheme: 'HTTP' | 'HTTPS'; host: string; path: string; port: number | string; httpHeaders: HttpHeader[] };
  tcpSocket?: { host: string; port: number | string };
  /** Probes only; the port is a number (no named ports), the host the pod's IP. */
  grpc?: { port: number; service: string };
  /** Hooks only: wait this long (PodLifecycleSleepAction). */
  sleep?: { seconds: number };
}

export interface Probe extends Handler {
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
  /** Grace for a liveness/startup kill; null: the pod's. */
  terminationGracePeriodSeconds: number | null;
}

export type ProbeKind = 'startup' | 'liveness' | 'readiness';

export interface EnvVarSpec {
  name: string;
  value?: string;
  fieldRef?: { fieldPath: string };
  resourceFieldRef?: { containerName: string; resource: string; divisor: string };
}

export interface VolumeMountSpec {
  name: string;
  mountPath: string;
  readOnly: boolean;
  subPath: string;
}

/** cpu in cores, memory in bytes. */
export interface ResourceList {
  cpu?: number;
  memory?: number;
}

/** A seccompProfile; Localhost names a file below <root>/seccomp, as the kubelet's below <root-dir>/seccomp. */
export type SeccompSetting = 'RuntimeDefault' | 'Unconfined' | { localhostProfile: string };

export interface ContainerSecurity {
  runAsUser: number | null;
  runAsGroup: number | null;
  runAsNonRoot: boolean;
  privileged: boolean;
  readOnlyRootFilesystem: boolean;
  capAdd: string[];
  capDrop: string[];
  allowPrivilegeEscalation: boolean | null;
  seccomp: SeccompSetting | null;
  supplementalGroups: number[];
}

export interface PortSpec {
  name: string;
  containerPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  hostPort: number;
  hostIP: string;
}

export interface PodContainer {
  name: string;
  image: string;
  imagePullPolicy: PullPolicy;
  /** null: the image's entrypoint / cmd. */
  command: string[] | null;
  args: string[] | null;
  workingDir: string;
  env: EnvVarSpec[];
  ports: PortSpec[];
  resources: { limits: ResourceList; requests: ResourceList };
  volumeMounts: VolumeMountSpec[];
  security: ContainerSecurity;
  lifecycle: { postStart?: Handler; preStop?: Handler };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  /** 'Always' on an init container makes it a sidecar. */
  restartPolicy?: 'Always';
  /** Where the container may write why it ended (unset in records of older servers: the default). */
  terminationMessagePath?: string;
  /** FallbackToLogsOnError: the end of the log stands in when a failed container wrote no message. */
  terminationMessagePolicy?: 'File' | 'FallbackToLogsOnError';
}

/** An emptyDir's sizeLimit: bytes, and the quantity as the manifest wrote it (for messages). */
export interface SizeLimit {
  bytes: number;
  quantity: string;
}

/** A file of a downwardAPI volume. */
export interface DownwardAPIItem {
  path: string;
  fieldRef?: { fieldPath: string };
  resourceFieldRef?: { containerName: string; resource: string; divisor: string };
  /** null: the volume's defaultMode. */
  mode: number | null;
}

export interface VolumeSpec {
  name: string;
  emptyDir?: { medium: '' | 'Memory'; sizeLimit: SizeLimit | null };
  hostPath?: { path: string; type: string };
  downwardAPI?: { items: DownwardAPIItem[]; defaultMode: number };
}

export interface PodSpec {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  restartPolicy: RestartPolicy;
  terminationGracePeriodSeconds: number;
  activeDeadlineSeconds: number | null;
  hostNetwork: boolean;
  hostPID: boolean;
  hostIPC: boolean;
  shareProcessNamespace: boolean;
  hostname: string;
  subdomain: string;
  /** Extra /etc/hosts lines: one per entry, the ip then its hostnames. */
  hostAliases: Array<{ ip: string; hostnames: string[] }>;
  nodeName: string;
  serviceAccountName: string;
  volumes: VolumeSpec[];
  initContainers: PodContainer[];
  containers: PodContainer[];
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface Terminated {
  exitCode: number;
  signal: number;
  reason: string;
  message: string;
  startedAt: number;
  finishedAt: number;
  containerId: string;
}

export interface ProbeStatus {
  kind: ProbeKind;
  /** 'success' | 'failure' | '' (not run yet). */
  result: '' | 'success' | 'failure';
  message: string;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  lastProbeAt: number;
}

/** What the runner keeps per container name (across its restarts). */
export interface ContainerRecord {
  name: string;
  kind: 'init' | 'sidecar' | 'app';
  /** The current instance (a ContainerManager id), '' when none exists. */
  containerId: string;
  restartCount: number;
  /** Containers created so far for this name (restartCount = instances - 1). */
  instances: number;
  /** Why there is no running instance (ContainerCreating, ErrImagePull, …). */
  waiting: { reason: string; message: string } | null;
  /** The current instance's exit, once it has exited. */
  terminated: Terminated | null;
  /** The previous instance's exit. */
  lastState: Terminated | null;
  startedAt: number;
  /** postStart finished (the container counts as running only then). */
  postStartDone: boolean;
  /** The startup probe succeeded (or there is none) after postStart. */
  started: boolean;
  ready: boolean;
  /** An init container that exited 0. */
  succeeded: boolean;
  /** The next start may not happen before this time (ms since the epoch): the restart back-off. */
  nextStartAt: number;
  /** The back-off to apply after the next exit (0: restart at once). */
  backoffMs: number;
  /** The back-off nextStartAt was set with, shown in CrashLoopBackOff's message (absent in records of earlier versions). */
  currentBackoffMs?: number;
  /** The image pull back-off, apart from the restart one as the kubelet keeps it: the wait after the next failed pull. */
  pullBackoffMs?: number;
  probes: Partial<Record<ProbeKind, ProbeStatus>>;
  /**
   * The instance a failed liveness or startup probe killed under a policy
   * other than Never: restarted whatever its exit code (kept in the record,
   * so a restarted server still restarts it).
   */
  probeKilled?: string;
}

export interface PodEvent {
  /** The latest occurrence. */
  time: number;
  /** The first occurrence (absent in older records: time). */
  first?: number;
  type: 'Normal' | 'Warning';
  reason: string;
  object: string;
  message: string;
  count: number;
}

/** A pod as the runner records it in <root>/pods/<uid>/record.json. */
export interface PodRecord {
  id: string;
  spec: PodSpec;
  /** The manifest object as given (for -o yaml/json). */
  manifest: unknown;
  /** Where the pod came from: "api" or "file:<path>" (static pods). */
  source: string;
  sourceHash: string;
  createdAt: number;
  startTime: number;
  sandboxId: string;
  sandboxAttempt: number;
  podIP: string;
  hostIP: string;
  phase: PodPhase;
  reason: string;
  message: string;
  initialized: boolean;
  deleting: boolean;
  /** The phase is final but the sandbox and volumes are not yet torn down (absent in older records: done). */
  tearingDown?: boolean;
  containers: ContainerRecord[];
  events: PodEvent[];
}
