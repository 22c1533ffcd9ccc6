import { version } from '../config.js';
import { parsePodCidrs } from '../network/cni.js';
import type { NetworkStatus } from '../network/status.js';
import type { RuntimeConfigResponse } from './generated/runtime/v1/RuntimeConfigResponse.js';
import type { StatusRequest__Output } from './generated/runtime/v1/StatusRequest.js';
import type { StatusResponse } from './generated/runtime/v1/StatusResponse.js';
import type { UpdateRuntimeConfigRequest__Output } from './generated/runtime/v1/UpdateRuntimeConfigRequest.js';
import type { VersionResponse } from './generated/runtime/v1/VersionResponse.js';
import type { Implementation } from './handlers.js';
import { runtimeHandlers } from './sandbox.js';

/** The kubelet's CRI API version string, which every runtime reports. */
const KUBE_API_VERSION = '0.1.0';

export function runtimeInfoHandlers(
  network: () => Promise<NetworkStatus>,
  info: () => Record<string, unknown>,
  setPodCidr: (cidrs: string[]) => void = () => {},
): Implementation {
  return {
    /**
     * Only network_config.pod_cidr exists in it: the CNI ipRanges capability,
     * also reported in Status verbose info. One bad CIDR changes nothing.
     */
    async UpdateRuntimeConfig(req: UpdateRuntimeConfigRequest__Output) {
      const cidr = req.runtimeConfig?.networkConfig?.podCidr;
      if (cidr) setPodCidr(parsePodCidrs(cidr));
      return {};
    },

    /**
     * Kubelets from 1.31 (1.28 behind a feature gate) take their cgroup
     * driver from here over their own setting. Named, since proto3's default
     * (0) would read as SYSTEMD: peapod writes cgroupfs paths only.
     */
    async RuntimeConfig(): Promise<RuntimeConfigResponse> {
      return { linux: { cgroupDriver: 'CGROUPFS' } };
    },

    async Version(): Promise<VersionResponse> {
      return { version: KUBE_API_VERSION, runtimeName: 'peapod', runtimeVersion: version, runtimeApiVersion: 'v1' };
    },

    async Status(req: StatusRequest__Output): Promise<StatusResponse> {
      const net = await network();
      return {
        status: {
          conditions: [
            { type: 'RuntimeReady', status: true, reason: '', message: '' },
            {
              type: 'NetworkReady',
              status: net.ready,
              reason: net.ready ? '' : 'NetworkPluginNotReady',
              message: net.message,
            },
          ],
        },
        info: req.verbose ? { config: JSON.stringify(info()) } : {},
        runtimeHandlers: runtimeHandlers.map((name) => ({
          name,
          features: { recursiveReadOnlyMounts: false, userNamespaces: false },
        })),
        features: { supplementalGroupsPolicy: false },
      };
    },
  };
}
