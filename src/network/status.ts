import type { Sandbox } from '../sandbox/types.js';

export interface NetworkStatus {
  ready: boolean;
  message: string;
}

export interface PodIps {
  ip: string;
  additionalIps: string[];
}

/**
 * Pod networking behind the sandbox manager: set up after the pod's network
 * namespace is pinned, torn down when the sandbox stops. Both idempotent.
 */
export interface PodNetwork {
  /** Whether pods can get a network now; re-evaluated on every call (a config may appear later). */
  status(): NetworkStatus;
  /** What the CRI Status reports: status(), and the plugins' own word where the config's version lets them give it. */
  probe(): Promise<NetworkStatus>;
  setUp(sb: Sandbox, signal?: AbortSignal): Promise<PodIps>;
  tearDown(sb: Sandbox): Promise<void>;
  /** UpdateRuntimeConfig's pod CIDR (one per IP family): stored and reported. */
  setPodCidr(cidrs: string[]): void;
  /**
   * At start-up, with the ids of the sandboxes on record: starts releasing,
   * in the background, what sandboxes gone since (a reboot) still hold.
   */
  recover(sandboxIds: ReadonlySet<string>): Promise<void>;
  /** For Status verbose info. */
  info(): Record<string, unknown>;
}

/** `--network none`: every pod gets a network namespace with loopback only. */
export function loopbackOnlyNetwork(): PodNetwork {
  let podCidrs: string[] = [];
  const status = () => ({ ready: true, message: 'network mode "none": pods get a network namespace with loopback only (no CNI)' });
  return {
    status,
    probe: async () => status(),
    setUp: async () => ({ ip: '', additionalIps: [] }),
    tearDown: async () => {},
    setPodCidr: (cidrs) => {
      podCidrs = cidrs;
    },
    recover: async () => {},
    info: () => ({ mode: 'none', podCidr: podCidrs.join(',') }),
  };
}
