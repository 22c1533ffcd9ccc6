import type { ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import type { ContainerManager } from '../container/manager.js';
import { invalidArgument } from '../errors.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { NamespaceMode, NamespaceOptions, Sandbox, SandboxSpec, SandboxState } from '../sandbox/types.js';
import { nowNs } from '../util/time.js';
import { containerStatus, toResources } from './container.js';
import type { ListPodSandboxRequest__Output } from './generated/runtime/v1/ListPodSandboxRequest.js';
import type { ListPodSandboxResponse } from './generated/runtime/v1/ListPodSandboxResponse.js';
import type { NamespaceOption__Output } from './generated/runtime/v1/NamespaceOption.js';
import type { PodSandbox } from './generated/runtime/v1/PodSandbox.js';
import type { PodSandboxConfig__Output } from './generated/runtime/v1/PodSandboxConfig.js';
import type { PodSandboxFilter__Output } from './generated/runtime/v1/PodSandboxFilter.js';
import type { PodSandboxStatusRequest__Output } from './generated/runtime/v1/PodSandboxStatusRequest.js';
import type { PodSandboxStatusResponse } from './generated/runtime/v1/PodSandboxStatusResponse.js';
import type { PodSandboxState } from './generated/runtime/v1/PodSandboxState.js';
import type { PodSandboxStatus } from './generated/runtime/v1/PodSandboxStatus.js';
import type { RemovePodSandboxRequest__Output } from './generated/runtime/v1/RemovePodSandboxRequest.js';
import type { RunPodSandboxRequest__Output } from './generated/runtime/v1/RunPodSandboxRequest.js';
import type { RunPodSandboxResponse } from './generated/runtime/v1/RunPodSandboxResponse.js';
import type { StopPodSandboxRequest__Output } from './generated/runtime/v1/StopPodSandboxRequest.js';
import type { StreamPodSandboxesRequest__Output } from './generated/runtime/v1/StreamPodSandboxesRequest.js';
import type { StreamPodSandboxesResponse } from './generated/runtime/v1/StreamPodSandboxesResponse.js';
import type { UpdatePodSandboxResourcesRequest__Output } from './generated/runtime/v1/UpdatePodSandboxResourcesRequest.js';
import { type Implementation, untilCancelled, writeEach } from './handlers.js';

/** Runtime handlers (RuntimeClass names) peapod answers to. */
export const runtimeHandlers = ['', 'peapod'];

const modes: readonly NamespaceMode[] = ['POD', 'CONTAINER', 'NODE', 'TARGET'];

function namespaceOptions(o: NamespaceOption__Output | null | undefined): NamespaceOptions {
  const opts: NamespaceOptions = {
    network: (o?.network as NamespaceMode) ?? 'POD',
    pid: (o?.pid as NamespaceMode) ?? 'POD',
    ipc: (o?.ipc as NamespaceMode) ?? 'POD',
    targetId: o?.targetId ?? '',
  };
  for (const [field, allowed] of [
    ['network', ['POD', 'NODE']],
    ['ipc', ['POD', 'NODE']],
    ['pid', ['POD', 'CONTAINER', 'NODE']],
  ] as const) {
    const mode = opts[field];
    if (!modes.includes(mode) || !(allowed as readonly string[]).includes(mode)) {
      throw invalidArgument(`namespace_options.${field} ${mode} is not valid for a pod sandbox`);
    }
  }
  const userns = o?.usernsOptions;
  if (userns && userns.mode !== 'NODE') {
    throw invalidArgument('namespace_options.userns_options: user namespaces are not supported by peapod');
  }
  return opts;
}

/** CRI PodSandboxConfig → the domain spec; rejects what the proto allows but a pod cannot be. */
export function toSandboxSpec(config: PodSandboxConfig__Output | null, runtimeHandler: string): SandboxSpec {
  if (!config) throw invalidArgument('config is required');
  if (!config.metadata) throw invalidArgument('config.metadata is required');
  if (!runtimeHandlers.includes(runtimeHandler)) {
    throw invalidArgument(`runtime_handler "${runtimeHandler}" is not configured (peapod answers to "" and "peapod")`);
  }
  const linux = config.linux;
  const m = config.metadata;
  return {
    metadata: { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt },
    hostname: config.hostname,
    logDirectory: config.logDirectory,
    dnsConfig: config.dnsConfig && {
      servers: config.dnsConfig.servers,
      searches: config.dnsConfig.searches,
      options: config.dnsConfig.options,
    },
    portMappings: config.portMappings.map((p) => ({
      protocol: p.protocol as 'TCP' | 'UDP' | 'SCTP',
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      hostIp: p.hostIp,
    })),
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    namespaceOptions: namespaceOptions(linux?.securityContext?.namespaceOptions),
    cgroupParent: linux?.cgroupParent ?? '',
    sysctls: { ...(linux?.sysctls ?? {}) },
    runtimeHandler,
  };
}

const stateName: Record<SandboxState, PodSandboxState> = { READY: 'SANDBOX_READY', NOTREADY: 'SANDBOX_NOTREADY' };

function metadataOf(sb: Sandbox) {
  return { ...sb.spec.metadata };
}

/** Verbose info, as crictl inspectp prints it: what peapod knows beyond the CRI status. */
function verboseInfo(sb: Sandbox): Record<string, string> {
  return {
    info: JSON.stringify({
      pid: sb.pause?.pid ?? 0,
      pauseStartTime: sb.pause?.startTime ?? '',
      namespaces: sb.namespaces,
      stopped: sb.stopped,
      runtimeHandler: sb.spec.runtimeHandler,
      config: sb.spec,
    }),
  };
}

/** The CRI PodSandboxStatus of a sandbox in `state` (shared by PodSandboxStatus and container events). */
export function sandboxStatus(sb: Sandbox, state: SandboxState): PodSandboxStatus {
  const o = sb.spec.namespaceOptions;
  return {
    id: sb.id,
    metadata: metadataOf(sb),
    state: stateName[state],
    createdAt: sb.createdAt.toString(),
    network: { ip: sb.network.ip, additionalIps: sb.network.additionalIps.map((ip) => ({ ip })) },
    linux: { namespaces: { options: { network: o.network, pid: o.pid, ipc: o.ipc, targetId: o.targetId } } },
    labels: sb.spec.labels,
    annotations: sb.spec.annotations,
    runtimeHandler: sb.spec.runtimeHandler,
  };
}

export function sandboxHandlers(sandboxes: SandboxManager, containers: ContainerManager): Implementation {
  const listed = (f: PodSandboxFilter__Output | null) =>
    sandboxes.list({
      id: f?.id || undefined,
      state: f?.state ? (f.state.state === 'SANDBOX_READY' ? 'READY' : 'NOTREADY') : undefined,
      labelSelector: f?.labelSelector,
    });
  const podSandbox = (sb: Sandbox): PodSandbox => ({
    id: sb.id,
    metadata: metadataOf(sb),
    state: stateName[sandboxes.stateOf(sb)],
    createdAt: sb.createdAt.toString(),
    labels: sb.spec.labels,
    annotations: sb.spec.annotations,
    runtimeHandler: sb.spec.runtimeHandler,
  });
  return {
    async RunPodSandbox(req: RunPodSandboxRequest__Output, call?: ServerUnaryCall<unknown, unknown>): Promise<RunPodSandboxResponse> {
      const spec = toSandboxSpec(req.config, req.runtimeHandler);
      const sb = await untilCancelled(call, (signal) => sandboxes.run(spec, signal));
      return { podSandboxId: sb.id };
    },

    async StopPodSandbox(req: StopPodSandboxRequest__Output) {
      await sandboxes.stop(req.podSandboxId);
      return {};
    },

    async RemovePodSandbox(req: RemovePodSandboxRequest__Output) {
      await sandboxes.remove(req.podSandboxId);
      return {};
    },

    async PodSandboxStatus(req: PodSandboxStatusRequest__Output): Promise<PodSandboxStatusResponse> {
      const sb = sandboxes.get(req.podSandboxId);
      return {
        status: sandboxStatus(sb, sandboxes.stateOf(sb)),
        info: req.verbose ? verboseInfo(sb) : {},
        // With a timestamp, an evented-PLEG kubelet takes the pod's containers from here alone.
        containersStatuses: containers.inSandbox(sb.id).map((c) => containerStatus(containers, c)),
        timestamp: nowNs().toString(),
      };
    },

    async ListPodSandbox(req: ListPodSandboxRequest__Output): Promise<ListPodSandboxResponse> {
      return { items: listed(req.filter).map(podSandbox) };
    },
    async UpdatePodSandboxResources(req: UpdatePodSandboxResourcesRequest__Output) {
      sandboxes.get(req.podSandboxId);
      // Checked as a container's would be, then, as containerd and CRI-O do
      // without NRI plugins, left alone: the kubelet sizes the pod's cgroup.
      toResources(req.overhead, 'overhead');
      toResources(req.resources);
      return {};
    },
    async StreamPodSandboxes(req: StreamPodSandboxesRequest__Output, call: ServerWritableStream<unknown, StreamPodSandboxesResponse>) {
      await writeEach(call, listed(req.filter), (sb) => ({ podSandboxes: [podSandbox(sb)] }));
    },
  };
}
