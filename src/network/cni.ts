import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { failedPrecondition, internal, invalidArgument } from '../errors.js';
import type { Logger } from '../log.js';
import type { Sandbox } from '../sandbox/types.js';
import { removeAtomicLeftovers, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { parseQuantity } from '../util/quantity.js';
import { compareVersions, findPlugin, loadNetwork, type ConfList, type PluginConf } from './cni-config.js';
import { execPlugin } from './cni-exec.js';
import type { NetworkStatus, PodIps, PodNetwork } from './status.js';

export interface CniOptions {
  confDir: string;
  binDirs: string[];
  /** `<root>`: the ADD results are cached at `<root>/cni/results/<sandbox id>`. */
  root: string;
  /** `<state>`: the pod CIDRs are kept at `<state>/pod-cidrs.json`. */
  state: string;
  log: Logger;
  /** Per plugin invocation. */
  timeoutMs?: number;
}

export const IFNAME = 'eth0';
/** Where servers before the move to `<root>` cached the ADD result, under `<state>/sandboxes/<id>`. */
const LEGACY_CACHE_FILE = 'cni-result.json';
/** The capability under which containerd passes the pod's annotations. */
export const POD_ANNOTATIONS_CAPABILITY = 'io.kubernetes.cri.pod-annotations';
/** statfs f_type of a mounted network namespace (a pin the pod still holds). */
const NSFS_MAGIC = 0x6e736673;

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
 * CNI pod networking (spec 0.1.0 to 1.1.0): runs the plugins of the first
 * network config of the conf dir as child processes. They enter the pod's
 * pinned network namespace themselves through CNI_NETNS.
 */
export class CniNetwork implements PodNetwork {
  private podCidrs: string[];
  private readonly timeoutMs: number;

  constructor(private readonly opts: CniOptions) {
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    // The kubelet sends the pod CIDR only when it changes: a restarted server must still have it.
    try {
      this.podCidrs = JSON.parse(readFileSync(this.podCidrsPath(), 'utf8')) as string[];
    } catch {
      this.podCidrs = [];
    }
  }

  /** Re-reads the conf dir every time: a config written later is picked up without a restart. */
  status(): NetworkStatus {
    const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
    if (!loaded.ok) return { ready: false, message: loaded.message };
    return { ready: true, message: `CNI network "${loaded.list.name}" from ${loaded.list.file}` };
  }

  /**
   * As containerd through libcni: a 1.1.0 config's plugins are asked STATUS
   * (a CNI agent that is not ready yet says so there), each in turn; the
   * first that fails makes the network not ready.
   */
  async probe(): Promise<NetworkStatus> {
    const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
    if (!loaded.ok) return { ready: false, message: loaded.message };
    const { list } = loaded;
    if (list.cniVersion === '1.1.0') {
      for (const plugin of list.plugins) {
        try {
          await execPlugin({
            path: findPlugin(plugin.type, this.opts.binDirs)!,
            cniEnv: { CNI_COMMAND: 'STATUS', CNI_PATH: this.opts.binDirs.join(':') },
            stdin: JSON.stringify(pluginStdin(list, plugin, null, {})),
            timeoutMs: this.timeoutMs,
          });
        } catch (err) {
          return { ready: false, message: `CNI network "${list.name}" is not ready: ${(err as Error).message}` };
        }
      }
    }
    return this.status();
  }

  setPodCidr(cidrs: string[]): void {
    writeJsonAtomic(this.podCidrsPath(), cidrs);
    this.podCidrs = cidrs;
  }

  info(): Record<string, unknown> {
    const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
    return {
      mode: 'cni',
      confDir: this.opts.confDir,
      binDirs: this.opts.binDirs,
      podCidr: this.podCidrs.join(','),
      network: loaded.ok ? { name: loaded.list.name, file: loaded.list.file, cniVersion: loaded.list.cniVersion } : null,
      message: loaded.ok ? '' : loaded.message,
    };
  }

  /**
   * At start-up, with the ids of the sandboxes on record: moves the caches
   * an older server kept in the state dir to the root, then runs DEL in the
   * background for every cached ADD whose sandbox is gone, as after a reboot
   * (the state dir is a tmpfs): else host-local's addresses and whatever
   * else the plugins hold would never be released. A DEL that fails keeps
   * its entry for the next start.
   */
  async recover(sandboxIds: ReadonlySet<string>): Promise<void> {
    const dir = this.resultsDir();
    mkdirSync(dir, { recursive: true });
    await removeAtomicLeftovers(dir);
    for (const id of sandboxIds) {
      const legacy = join(this.opts.state, 'sandboxes', id, LEGACY_CACHE_FILE);
      if (!existsSync(legacy)) continue;
      if (!existsSync(this.cachePath(id))) writeFileAtomic(this.cachePath(id), readFileSync(legacy));
      rmSync(legacy);
    }
    const orphans = readdirSync(dir).filter((id) => !id.startsWith('.') && !sandboxIds.has(id));
    if (orphans.length === 0) return;
    void (async () => {
      for (const id of orphans) {
        const entry = this.readCache(id);
        if (!entry) {
          this.opts.log.warn('unreadable CNI cache entry of a sandbox gone since the last start kept', { id, file: this.cachePath(id) });
          continue;
        }
        try {
          // Its namespace is gone with the boot.
          await this.del(id, entry, '');
          this.opts.log.info('pod network of a sandbox gone since the last start torn down', { id, network: entry.list.name });
        } catch (err) {
          this.opts.log.warn('pod network teardown of a sandbox gone since the last start failed; tried again at the next start', { id, err });
        }
      }
    })();
  }

  private podCidrsPath(): string {
    return join(this.opts.state, 'pod-cidrs.json');
  }

  private resultsDir(): string {
    return join(this.opts.root, 'cni', 'results');
  }

  private cachePath(id: string): string {
    return join(this.resultsDir(), id);
  }

  private readCache(id: string): CacheEntry | undefined {
    try {
      return JSON.parse(readFileSync(this.cachePath(id), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
  }

  /**
   * On the root's disk: it is what releases the pod's addresses after a
   * reboot. Not synced, as libcni writes its cache: a pod start waits for
   * no disk flush.
   */
  private writeCache(id: string, entry: CacheEntry): void {
    mkdirSync(this.resultsDir(), { recursive: true });
    writeJsonAtomic(this.cachePath(id), entry);
  }

  /**
   * ADD: every plugin in order, each getting the previous one's result. On
   * failure the caller runs tearDown (DEL), as the spec asks of runtimes;
   * `signal` kills the plugin running when the caller gives up, as go-cni's
   * context does.
   */
  async setUp(sb: Sandbox, signal?: AbortSignal): Promise<PodIps> {
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
      capabilityArgs: capabilityArgs(sb, this.podCidrs),
      result: null,
    };
    this.writeCache(sb.id, entry);
    const { list } = loaded;
    let prev: Record<string, unknown> | null = null;
    for (const [i, plugin] of list.plugins.entries()) {
      const out = await execPlugin({
        path: loaded.binaries[i]!,
        cniEnv: this.env('ADD', sb.id, netns, entry),
        stdin: JSON.stringify(pluginStdin(list, plugin, prev, entry.capabilityArgs)),
        timeoutMs: this.timeoutMs,
        signal,
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
    this.writeCache(sb.id, entry);
    // As containerd: a pod without an address on its interface has no network (the caller's DEL undoes the ADD).
    let ips: PodIps | undefined;
    try {
      ips = podIps(prev, IFNAME);
    } catch (err) {
      throw internal(`network "${list.name}": ${(err as Error).message}`, err);
    }
    if (!ips) throw internal(`failed to find network info for sandbox ${sb.id}: network "${list.name}" gave ${IFNAME} no IP address`);
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
    let entry = this.readCache(sb.id);
    if (!entry) {
      const loaded = loadNetwork(this.opts.confDir, this.opts.binDirs);
      if (!loaded.ok) {
        this.opts.log.warn('pod network teardown skipped: no CNI config and no cached ADD', { id: sb.id, why: loaded.message });
        return;
      }
      entry = {
        list: loaded.list,
        netns: sb.namespaces.net ?? '',
        ifName: IFNAME,
        cniArgs: cniArgs(sb),
        capabilityArgs: capabilityArgs(sb, this.podCidrs),
        result: null,
      };
    }
    await this.del(sb.id, entry, pinnedNetns(sb.namespaces.net));
    this.opts.log.info('pod network torn down', { id: sb.id, network: entry.list.name });
  }

  /** Runs the DEL of `entry` and drops its cache once every plugin succeeded. */
  private async del(id: string, entry: CacheEntry, netns: string): Promise<void> {
    const { list } = entry;
    // As libcni: DEL gets the cached result from 0.4.0 on.
    const prev = entry.result && compareVersions(list.cniVersion, '0.4.0') >= 0 ? entry.result : null;
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
          cniEnv: this.env('DEL', id, netns, entry),
          stdin: JSON.stringify(pluginStdin(list, plugin, prev, entry.capabilityArgs)),
          timeoutMs: this.timeoutMs,
        });
      } catch (err) {
        const msg = (err as Error).message;
        // As go-cni: a plugin saying what it would delete is not there has nothing left to do.
        if (!msg.includes('not found') && !(netns === '' && msg.includes('no such file or directory'))) errors.push(msg);
      }
    }
    // The cache stays for a retry (the next stop, remove or server start).
    if (errors.length > 0) throw internal(`network "${list.name}" teardown of sandbox ${id}: ${errors.join('; ')}`);
    rmSync(this.cachePath(id), { force: true });
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

/**
 * The netns pin while it still holds a namespace (an nsfs mount), else "",
 * as containerd passes a closed one: a plain file left where the pin was
 * makes plugins fail ("unknown FS magic"), and DEL would fail forever.
 */
function pinnedNetns(path: string | undefined): string {
  if (!path) return '';
  try {
    return statfsSync(path).type === NSFS_MAGIC ? path : '';
  } catch {
    return '';
  }
}

/**
 * UpdateRuntimeConfig's pod CIDR, as the kubelet sends it (dual-stack ones
 * joined with ","): one CIDR each, each checked as Go's net.ParseCIDR would.
 */
export function parsePodCidrs(value: string): string[] {
  const cidrs = value.split(',').map((c) => c.trim());
  for (const cidr of cidrs) {
    const m = /^([^/%]+)\/(\d{1,3})$/.exec(cidr);
    const family = m ? isIP(m[1]!) : 0;
    if (!m || family === 0 || Number(m[2]) > (family === 4 ? 32 : 128)) throw invalidArgument(`pod CIDR "${cidr}" is not a valid CIDR`);
  }
  return cidrs;
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
export function capabilityArgs(sb: Sandbox, podCidrs: string[]): Record<string, unknown> {
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
  // Present, even empty, as containerd hands it over.
  if (dns) {
    args.dns = { servers: dns.servers, searches: dns.searches, options: dns.options };
  }
  // One range set per CIDR (per IP family), as host-local takes them.
  if (podCidrs.length > 0) args.ipRanges = podCidrs.map((subnet) => [{ subnet }]);
  const bandwidth = podBandwidth(sb.spec.annotations);
  if (bandwidth) args.bandwidth = bandwidth;
  // The kubelet's cgroup_parent as given, as containerd passes it (for plugins that account traffic to the pod).
  if (sb.spec.cgroupParent) args.cgroupPath = sb.spec.cgroupParent;
  // containerd hands plugins that ask (Multus, Calico…) the pod's annotations.
  args[POD_ANNOTATIONS_CAPABILITY] = { ...sb.spec.annotations };
  return args;
}

/**
 * libcni's buildOneConfig: the plugin entry plus name, cniVersion, prevResult
 * and, for the capabilities it declares, their values as its runtimeConfig
 * (one the file gives is kept when there are none).
 */
export function pluginStdin(
  list: Pick<ConfList, 'name' | 'cniVersion'>,
  plugin: PluginConf,
  prevResult: Record<string, unknown> | null,
  capabilityArgs: Record<string, unknown>,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf.prevResult;
  if (prevResult) conf.prevResult = prevResult;
  const caps = plugin.capabilities;
  const injected: Record<string, unknown> = {};
  if (caps && typeof caps === 'object') {
    for (const [cap, on] of Object.entries(caps as Record<string, unknown>)) {
      if (on === true && capabilityArgs[cap] !== undefined) injected[cap] = capabilityArgs[cap];
    }
  }
  // As libcni's InjectConf: injected values replace the whole key.
  if (Object.keys(injected).length > 0) conf.runtimeConfig = injected;
  return conf;
}

/**
 * The pod's IPs from a result, as containerd takes them: those on ifName
 * (an IP naming no interface is on it, as go-cni counts), the first IPv4
 * one first, the rest in the result's order; prefix lengths dropped.
 * Undefined when ifName has none. An IP naming an interface the result
 * does not list makes the result invalid. A 0.1.0/0.2.0 result's `ip4` and
 * `ip6` are read as libcni converts them: IPs naming no interface.
 */
export function podIps(result: Record<string, unknown>, ifName: string): PodIps | undefined {
  const interfaces = Array.isArray(result.interfaces) ? (result.interfaces as Array<Record<string, unknown>>) : [];
  const ips = Array.isArray(result.ips) ? (result.ips as Array<Record<string, unknown>>) : legacyIps(result);
  const addrs: string[] = [];
  for (const ip of ips) {
    if (typeof ip.address !== 'string') continue;
    if (ip.interface !== undefined && ip.interface !== null) {
      const iface = typeof ip.interface === 'number' ? interfaces[ip.interface] : undefined;
      if (!iface) throw new Error(`invalid result: IP ${ip.address} names interface ${JSON.stringify(ip.interface)} of ${interfaces.length}`);
      if (iface.name !== ifName) continue;
    }
    addrs.push(ip.address.split('/')[0]!);
  }
  const first = addrs.findIndex((a) => !a.includes(':'));
  if (first > 0) addrs.unshift(...addrs.splice(first, 1));
  return addrs.length > 0 ? { ip: addrs[0]!, additionalIps: addrs.slice(1) } : undefined;
}

/** The `ip4` then `ip6` of a result before 0.3.0, as `ips` entries. */
function legacyIps(result: Record<string, unknown>): Array<Record<string, unknown>> {
  return [result.ip4, result.ip6]
    .filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null && typeof (c as Record<string, unknown>).ip === 'string')
    .map((c) => ({ address: c.ip }));
}
