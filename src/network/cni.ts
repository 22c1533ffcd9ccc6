import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { failedPrecondition, internal, invalidArgument } from '../errors.js';
import type { Logger } from '../log.js';
import type { Sandbox } from '../sandbox/types.js';
import { writeJsonAtomic } from '../util/fs.js';
import { parseQuantity } from '../util/quantity.js';
import { findPlugin, loadNetwork, type ConfList, type PluginConf } from './cni-config.js';
import { execPlugin } from './cni-exec.js';
import type { NetworkStatus, PodIps, PodNetwork } from './status.js';

export interface CniOptions {
  confDir: string;
  binDirs: string[];
  /** `<state>`: the ADD result is cached at `<state>/sandboxes/<id>/cni-result.json`. */
  state: string;
  log: Logger;
  /** Per plugin invocation. */
  timeoutMs?: number;
}

export const IFNAME = 'eth0';
const CACHE_FILE = 'cni-result.json';

/** What ADD used and produced, so that DEL can undo exactly that. */
interface CacheEntry {
  list: ConfList;
  netns: string;
  ifName: string;
  cniArgs: string;
  capabilityArgs: Record<string, unknown>;
  /** The final ADD result; null while the ADD is under way (or failed). */
  result: Record<string, unknown> | null;
}

/**
 * CNI pod networking (spec 0.4.0 and 1.0.0): runs the plugins of the first
 * network config of the conf dir as child processes. They enter the pod's
 * pinned network namespace themselves through CNI_NETNS.
 */
export class CniNetwork implements PodNetwork {
  private podCidr = '';
  private readonly timeoutMs: number;

  constructor(private readonly opts: CniOptions) {
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /** Re-reads the conf dir every time: a config written later is picked up without a restart. */
  status(): NetworkStatus {
    const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
    if (!loaded.ok) return { ready: false, message: loaded.message };
    return { ready: true, message: `CNI network "${loaded.list.name}" from ${loaded.list.file}` };
  }

  setPodCidr(cidr: string): void {
    this.podCidr = cidr;
  }

  info(): Record<string, unknown> {
    const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
    return {
      mode: 'cni',
      confDir: this.opts.confDir,
      binDirs: this.opts.binDirs,
      podCidr: this.podCidr,
      network: loaded.ok ? { name: loaded.list.name, file: loaded.list.file, cniVersion: loaded.list.cniVersion } : null,
      message: loaded.ok ? '' : loaded.message,
    };
  }

  private cachePath(id: string): string {
    return join(this.opts.state, 'sandboxes', id, CACHE_FILE);
  }

  private readCache(id: string): CacheEntry | undefined {
    try {
      return JSON.parse(readFileSync(this.cachePath(id), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
  }

  /**
   * ADD: every plugin in order, each getting the previous one's result. On
   * failure the caller runs tearDown (DEL), as the spec asks of runtimes.
   */
  async setUp(sb: Sandbox): Promise<PodIps> {
    const netns = sb.namespaces.net;
    if (!netns) throw internal(`sandbox ${sb.id} has no network namespace of its own`);
    const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
    if (!loaded.ok) throw failedPrecondition(`pod network is not ready: ${loaded.message}`);
    // Never ADD twice without a DEL between.
    if (existsSync(this.cachePath(sb.id))) await this.tearDown(sb);

    const entry: CacheEntry = {
      list: loaded.list,
      netns,
      ifName: IFNAME,
      cniArgs: cniArgs(sb),
      capabilityArgs: capabilityArgs(sb, this.podCidr),
      result: null,
    };
    writeJsonAtomic(this.cachePath(sb.id), entry);
    const { list } = loaded;
    let prev: Record<string, unknown> | null = null;
    for (const [i, plugin] of list.plugins.entries()) {
      const out = await execPlugin({
        path: loaded.binaries[i]!,
        cniEnv: this.env('ADD', sb.id, netns, entry),
        stdin: JSON.stringify(pluginStdin(list, plugin, prev, entry.capabilityArgs)),
        timeoutMs: this.timeoutMs,
      }).catch((err: Error) => {
        throw internal(`network "${list.name}": ${err.message}`, err);
      });
      if (out !== undefined) {
        if (typeof out !== 'object' || out === null) throw internal(`CNI plugin ${plugin.type} (ADD): result is not an object`);
        prev = out as Record<string, unknown>;
      }
    }
    if (!prev) throw internal(`network "${list.name}": the plugins returned no result`);
    entry.result = prev;
    writeJsonAtomic(this.cachePath(sb.id), entry);
    const ips = podIps(prev, IFNAME);
    this.opts.log.info('pod network set up', { id: sb.id, network: list.name, ip: ips.ip, additionalIps: ips.additionalIps });
    return ips;
  }

  /**
   * DEL: every plugin in reverse, each getting the cached ADD result as
   * prevResult. Idempotent: without a cache it still asks every plugin to
   * release whatever it holds for this sandbox. Errors fail the call (the
   * kubelet retries StopPodSandbox).
   */
  async tearDown(sb: Sandbox): Promise<void> {
    const cache = this.readCache(sb.id);
    let list = cache?.list;
    if (!list) {
      const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
      if (!loaded.ok) {
        this.opts.log.warn('pod network teardown skipped: no CNI config and no cached ADD', { id: sb.id, why: loaded.message });
        return;
      }
      list = loaded.list;
    }
    const entry: CacheEntry = cache ?? {
      list,
      netns: sb.namespaces.net ?? '',
      ifName: IFNAME,
      cniArgs: cniArgs(sb),
      capabilityArgs: capabilityArgs(sb, this.podCidr),
      result: null,
    };
    // A namespace that is gone is passed as empty, as the spec allows for DEL.
    const netns = sb.namespaces.net && existsSync(sb.namespaces.net) ? sb.namespaces.net : '';
    const prev = entry.result && list.cniVersion !== '0.3.0' && list.cniVersion !== '0.3.1' ? entry.result : null;
    const errors: string[] = [];
    for (const plugin of [...list.plugins].reverse()) {
      const path = findPlugin(plugin.type, this.opts.binDirs);
      if (!path) {
        errors.push(`CNI plugin ${plugin.type} not found in ${this.opts.binDirs.join(':')}`);
        continue;
      }
      try {
        await execPlugin({
          path,
          cniEnv: this.env('DEL', sb.id, netns, entry),
          stdin: JSON.stringify(pluginStdin(list, plugin, prev, entry.capabilityArgs)),
          timeoutMs: this.timeoutMs,
        });
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    // Also after an ADD that failed half-way: the plugins before the failing
    // one hold what they set up (an address), and a DEL must clean up after
    // any ADD (the spec); containerd keeps such a sandbox for a retry too.
    if (errors.length > 0) throw internal(`network "${list.name}" teardown of sandbox ${sb.id}: ${errors.join('; ')}`);
    rmSync(this.cachePath(sb.id), { force: true });
    this.opts.log.info('pod network torn down', { id: sb.id, network: list.name });
  }

  private env(command: 'ADD' | 'DEL', id: string, netns: string, entry: CacheEntry): Record<string, string> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: netns,
      CNI_IFNAME: entry.ifName,
      CNI_ARGS: entry.cniArgs,
      CNI_PATH: this.opts.binDirs.join(':'),
    };
  }
}

export function cniArgs(sb: Sandbox): string {
  const m = sb.spec.metadata;
  return [
    'IgnoreUnknown=1',
    `K8S_POD_NAMESPACE=${m.namespace}`,
    `K8S_POD_NAME=${m.name}`,
    `K8S_POD_INFRA_CONTAINER_ID=${sb.id}`,
    `K8S_POD_UID=${m.uid}`,
  ].join(';');
}

const INGRESS_BANDWIDTH = 'kubernetes.io/ingress-bandwidth';
const EGRESS_BANDWIDTH = 'kubernetes.io/egress-bandwidth';
/** The kubelet's bounds for the bandwidth annotations, in bit/s. */
const MIN_BANDWIDTH = 1e3;
const MAX_BANDWIDTH = 1e15;

/**
 * The `bandwidth` capability from the pod's bandwidth annotations (which the
 * kubelet copies into the sandbox config), as containerd sends it: rates in
 * bit/s, bursts at 2^32-1 (no burst limit); undefined when neither is set.
 * A value that is not a quantity, or below 1k or above 1P as the kubelet
 * judges them, is INVALID_ARGUMENT.
 */
export function podBandwidth(annotations: Record<string, string>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [key, dir] of [[INGRESS_BANDWIDTH, 'ingress'], [EGRESS_BANDWIDTH, 'egress']] as const) {
    const v = annotations[key];
    if (v === undefined) continue;
    const rate = Math.ceil(parseQuantity(v, `annotation ${key}`));
    if (rate < MIN_BANDWIDTH || rate > MAX_BANDWIDTH) throw invalidArgument(`annotation ${key} "${v}" is outside 1k..1P bit/s`);
    out[`${dir}Rate`] = rate;
    out[`${dir}Burst`] = 2 ** 32 - 1;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The values of the CNI capabilities peapod knows, for the plugins that declare them. */
export function capabilityArgs(sb: Sandbox, podCidr: string): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  const ports = sb.spec.portMappings
    .filter((p) => p.hostPort > 0)
    .map((p) => ({
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: (p.protocol || 'TCP').toLowerCase(),
      hostIP: p.hostIp,
    }));
  if (ports.length > 0) args.portMappings = ports;
  const dns = sb.spec.dnsConfig;
  if (dns && (dns.servers.length || dns.searches.length || dns.options.length)) {
    args.dns = { servers: dns.servers, searches: dns.searches, options: dns.options };
  }
  if (podCidr) args.ipRanges = [[{ subnet: podCidr }]];
  const bandwidth = podBandwidth(sb.spec.annotations);
  if (bandwidth) args.bandwidth = bandwidth;
  return args;
}

/** libcni's buildOneConfig: the plugin entry plus name, cniVersion, prevResult and runtimeConfig. */
export function pluginStdin(
  list: ConfList,
  plugin: PluginConf,
  prevResult: Record<string, unknown> | null,
  capabilityArgs: Record<string, unknown>,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf.runtimeConfig;
  delete conf.prevResult;
  if (prevResult) conf.prevResult = prevResult;
  const caps = plugin.capabilities;
  const runtimeConfig: Record<string, unknown> = {};
  if (caps && typeof caps === 'object') {
    for (const [cap, on] of Object.entries(caps as Record<string, unknown>)) {
      if (on === true && capabilityArgs[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
    }
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  return conf;
}

/**
 * The pod's IPs from a result: those on interfaces inside the sandbox (the
 * one named ifName first), IPv4 first as containerd orders them; prefix
 * lengths dropped.
 */
export function podIps(result: Record<string, unknown>, ifName: string): PodIps {
  const interfaces = Array.isArray(result.interfaces) ? (result.interfaces as Array<Record<string, unknown>>) : [];
  const ips = Array.isArray(result.ips) ? (result.ips as Array<Record<string, unknown>>) : [];
  const rank = (ip: Record<string, unknown>): number => {
    const idx = typeof ip.interface === 'number' ? ip.interface : -1;
    const iface = interfaces[idx];
    if (!iface) return 1; // no interface named: assume the pod's
    if (!iface.sandbox) return 3; // on the host side
    return iface.name === ifName ? 0 : 2;
  };
  const addrs = ips
    .filter((ip) => typeof ip.address === 'string' && rank(ip) < 3)
    .map((ip) => ({ rank: rank(ip), addr: (ip.address as string).split('/')[0]! }))
    .sort((a, b) => a.rank - b.rank || Number(a.addr.includes(':')) - Number(b.addr.includes(':')))
    .map((x) => x.addr);
  const unique = [...new Set(addrs)];
  return { ip: unique[0] ?? '', additionalIps: unique.slice(1) };
}
