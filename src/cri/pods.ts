// peapod.v1.Peapod pod-runner methods (proto/peapod.proto): the gRPC edge of src/pod.

import type { PodRunner } from '../pod/runner.js';
import type { PodView } from '../pod/status.js';
import type { ApplyPodsRequest__Output } from './generated/peapod/v1/ApplyPodsRequest.js';
import type { ApplyPodsResponse } from './generated/peapod/v1/ApplyPodsResponse.js';
import type { ContainerLogPathRequest__Output } from './generated/peapod/v1/ContainerLogPathRequest.js';
import type { ContainerLogPathResponse } from './generated/peapod/v1/ContainerLogPathResponse.js';
import type { DeletePodRequest__Output } from './generated/peapod/v1/DeletePodRequest.js';
import type { GetPodRequest__Output } from './generated/peapod/v1/GetPodRequest.js';
import type { GetPodResponse } from './generated/peapod/v1/GetPodResponse.js';
import type { ListPodsRequest__Output } from './generated/peapod/v1/ListPodsRequest.js';
import type { ListPodsResponse } from './generated/peapod/v1/ListPodsResponse.js';
import type { PodSummary__Output } from './generated/peapod/v1/PodSummary.js';
import type { Implementation } from './handlers.js';

export function podHandlers(pods: PodRunner): Implementation {
  return {
    async ApplyPods(req: ApplyPodsRequest__Output): Promise<ApplyPodsResponse> {
      const recs = await pods.apply(req.manifest);
      return { pods: recs.map((r) => ({ namespace: r.spec.namespace, name: r.spec.name, uid: r.spec.uid })) };
    },
    async ListPods(req: ListPodsRequest__Output): Promise<ListPodsResponse> {
      const views = pods.list(req.namespace || undefined);
      return {
        pods: views.map((v) => podSummary(v, req.detailed)),
      };
    },
    async GetPod(req: GetPodRequest__Output): Promise<GetPodResponse> {
      return { podJson: JSON.stringify(pods.view(req.namespace, req.name)) };
    },
    async DeletePod(req: DeletePodRequest__Output) {
      await pods.delete(req.namespace, req.name, Number(req.gracePeriodSeconds), req.force);
      return {};
    },
    async ContainerLogPath(req: ContainerLogPathRequest__Output): Promise<ContainerLogPathResponse> {
      return pods.logPath(req.namespace, req.name, req.container, req.previous);
    },
  };
}

/** A pod's row in ListPods (also what the CLI makes of a GetPod for its table); the full view when `detailed`. */
export function podSummary(v: PodView, detailed: boolean): PodSummary__Output {
  return {
    name: v.metadata.name,
    namespace: v.metadata.namespace,
    uid: v.metadata.uid,
    ready: v.ready,
    status: v.status.display,
    restarts: v.restarts,
    lastRestartMs: String(Date.parse(v.lastRestart) || 0),
    createdAtMs: String(Date.parse(v.metadata.creationTimestamp)),
    ip: v.status.podIP,
    node: v.node,
    phase: v.status.phase,
    podJson: detailed ? JSON.stringify(v) : '',
  };
}
