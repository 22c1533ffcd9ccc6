// Pod manifests (apiVersion v1, kind Pod; YAML or JSON, several documents)
// → PodSpec. Every field is checked against what peapod implements: anything
// else is an error naming its path, so a manifest never half-works.

import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { parseAllDocuments } from 'yaml';
import { invalidArgument } from '../errors.js';
import { parseQuantity } from '../util/quantity.js';
import type {
  ContainerSecurity,
  DownwardAPIItem,
  EnvVarSpec,
  Handler,
  PodContainer,
  PodSpec,
  PortSpec,
  Probe,
  PullPolicy,
  ResourceList,
  SeccompSetting,
  VolumeMountSpec,
  VolumeSpec,
} from './types.js';

export interface ParsedPod {
  spec: PodSpec;
  manifest: unknown;
}

type Json = Record<string, unknown>;

/** A mapping being read: remembers the keys taken, so the rest can be rejected. */
class Fields {
  private readonly taken = new Set<string>();
  constructor(
    readonly value: Json,
    readonly path: string,
  ) {}

  static of(value: unknown, path: string): Fields {
    if (value === null || value === undefined) return new Fields({}, path);
    if (typeof value !== 'object' || Array.isArray(value)) throw bad(`${path} must be an object`);
    return new Fields(value as Json, path);
  }

  at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  raw(key: string): unknown {
    this.taken.add(key);
    const v = this.value[key];
    return v === null ? undefined : v;
  }

  /** Keys accepted and ignored (no meaning for a single node). */
  ignore(...keys: string[]): void {
    for (const k of keys) this.taken.add(k);
  }

  str(key: string, def = ''): string {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string') throw bad(`${this.at(key)} must be a string`);
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], def: T): T {
    const v = this.str(key, def);
    if (!(allowed as readonly string[]).includes(v)) {
      throw bad(`${this.at(key)} "${v}" is not supported (use ${allowed.map((a) => `"${a}"`).join(', ')})`);
    }
    return v as T;
  }

  int(key: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`${this.at(key)} must be an integer`);
    if (v < min || v > max) throw bad(`${this.at(key)} must be between ${min} and ${max}`);
    return v;
  }

  optInt(key: string, min = 0): number | null {
    return this.raw(key) === undefined ? null : this.int(key, 0, min);
  }

  bool(key: string, def = false): boolean {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') throw bad(`${this.at(key)} must be true or false`);
    return v;
  }

  strings(key: string): string[] | null {
    const v = this.raw(key);
    if (v === undefined) return null;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`${this.at(key)} must be a list of strings`);
    return v as string[];
  }

  map(key: string): Record<string, string> {
    const v = this.raw(key);
    if (v === undefined) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw bad(`${this.at(key)} must be a map of strings`);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v as Json)) {
      if (typeof x !== 'string') throw bad(`${this.at(key)}.${k} must be a string`);
      out[k] = x;
    }
    return out;
  }

  obj(key: string): Fields | undefined {
    const v = this.raw(key);
    return v === undefined ? undefined : Fields.of(v, this.at(key));
  }

  list(key: string): Fields[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw bad(`${this.at(key)} must be a list`);
    return v.map((x, i) => Fields.of(x, `${this.at(key)}[${i}]`));
  }

  /** Rejects every key not taken. */
  done(): void {
    for (const k of Object.keys(this.value)) {
      if (!this.taken.has(k)) throw bad(`${this.at(k)} is not supported by peapod`);
    }
  }
}

function bad(msg: string) {
  return invalidArgument(msg);
}

// ---------------------------------------------------------------- parsing

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkName(value: string, path: string, re: RegExp, max: number): void {
  if (!value) throw bad(`${path} is required`);
  if (value.length > max || !re.test(value)) {
    throw bad(`${path} "${value}" must be a lowercase RFC 1123 ${re === DNS_LABEL ? 'label' : 'subdomain'} of at most ${max} characters`);
  }
}

/** The uid names the pod's record, runtime and log directories: it must be one path component. */
function checkUid(uid: string): void {
  if (uid.length > 128 || uid === '.' || uid === '..' || /[/\0]/.test(uid)) {
    throw bad(`metadata.uid ${JSON.stringify(uid)} must be at most 128 characters, without "/" or NUL, and not "." or ".."`);
  }
}

function port(f: Fields, key: string): number | string {
  const v = f.raw(key);
  if (typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return port(new Fields({ [key]: Number(v) }, f.path), key);
  if (typeof v === 'string' && /^[a-z0-9-]{1,15}$/.test(v)) return v;
  throw bad(`${f.at(key)} must be a port number (1-65535) or a port name`);
}

function handler(f: Fields, allowed: Array<'exec' | 'httpGet' | 'tcpSocket' | 'grpc' | 'sleep'>, graceSeconds = 0): Handler {
  const h: Handler = {};
  let n = 0;
  const exec = allowed.includes('exec') ? f.obj('exec') : undefined;
  if (exec) {
    const command = exec.strings('command') ?? [];
    if (command.length === 0) throw bad(`${exec.at('command')} is required`);
    exec.done();
    h.exec = { command };
    n++;
  }
  const http = allowed.includes('httpGet') ? f.obj('httpGet') : undefined;
  if (http) {
    const headers = http.list('httpHeaders').map((hf) => {
      const hdr = { name: hf.str('name'), value: hf.str('value') };
      if (!hdr.name) throw bad(`${hf.at('name')} is required`);
      hf.done();
      return hdr;
    });
    h.httpGet = {
      scheme: http.oneOf('scheme', ['HTTP', 'HTTPS'], 'HTTP'),
      host: http.str('host'),
      path: http.str('path', '/') || '/',
      port: port(http, 'port'),
      httpHeaders: headers,
    };
    http.done();
    n++;
  }
  const tcp = allowed.includes('tcpSocket') ? f.obj('tcpSocket') : undefined;
  if (tcp) {
    h.tcpSocket = { host: tcp.str('host'), port: port(tcp, 'port') };
    tcp.done();
    n++;
  }
  const grpc = allowed.includes('grpc') ? f.obj('grpc') : undefined;
  if (grpc) {
    const p = grpc.raw('port');
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw bad(`${grpc.at('port')} must be a port number (1-65535)`);
    h.grpc = { port: p, service: grpc.str('service') };
    grpc.done();
    n++;
  }
  const sleep = allowed.includes('sleep') ? f.obj('sleep') : undefined;
  if (sleep) {
    const seconds = sleep.int('seconds', 0, Number.MIN_SAFE_INTEGER);
    // The API server's rule (PodLifecycleSleepActionAllowZero, on since 1.33).
    if (seconds < 0 || seconds > graceSeconds) throw bad(`${sleep.at('seconds')} must be non-negative and less than terminationGracePeriodSeconds (${graceSeconds})`);
    h.sleep = { seconds };
    sleep.done();
    n++;
  }
  if (n !== 1) throw bad(`${f.path} must have exactly one of ${allowed.join(', ')}`);
  return h;
}

function probe(f: Fields | undefined, kind: 'liveness' | 'readiness' | 'startup'): Probe | undefined {
  if (!f) return undefined;
  const p: Probe = {
    initialDelaySeconds: f.int('initialDelaySeconds', 0),
    periodSeconds: f.int('periodSeconds', 10, 1),
    timeoutSeconds: f.int('timeoutSeconds', 1, 1),
    successThreshold: f.int('successThreshold', 1, 1),
    failureThreshold: f.int('failureThreshold', 3, 1),
    terminationGracePeriodSeconds: kind === 'readiness' ? null : f.optInt('terminationGracePeriodSeconds', 1),
    ...handler(f, ['exec', 'httpGet', 'tcpSocket', 'grpc']),
  };
  if (kind !== 'readiness' && p.successThreshold !== 1) throw bad(`${f.at('successThreshold')} must be 1 for a ${kind} probe`);
  f.done();
  return p;
}

function resourceList(f: Fields | undefined): ResourceList {
  const out: ResourceList = {};
  if (!f) return out;
  if (f.raw('cpu') !== undefined) out.cpu = parseQuantity(f.raw('cpu'), f.at('cpu'));
  if (f.raw('memory') !== undefined) out.memory = Math.ceil(parseQuantity(f.raw('memory'), f.at('memory')));
  f.done();
  return out;
}

const FIELD_PATHS = [
  /^metadata\.(name|namespace|uid)$/,
  /^metadata\.(labels|annotations)\['[^']+'\]$/,
  /^spec\.(nodeName|serviceAccountName)$/,
  /^status\.(podIP|hostIP|podIPs)$/,
];
/** A downwardAPI volume's: the pod's metadata only, labels and annotations also whole. */
const VOLUME_FIELD_PATHS = [/^metadata\.(name|namespace|uid|labels|annotations)$/, /^metadata\.(labels|annotations)\['[^']+'\]$/];
const RESOURCES = ['limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory'];
const POWERS = [1, 2, 3, 4, 5, 6];

/**
 * The API server (validateContainerResourceDivisor) allows the divisors whose
 * canonical form is 1m or 1 for cpu, 1, 1k…1E or 1Ki…1Ei for memory. A
 * quantity keeps its family when made canonical: "1024Ki" is "1Mi" and
 * "1000" is "1k", but a plain "1024" stays "1024" and "1e3" stays "1e3".
 */
function allowedDivisor(raw: string, value: number, cpu: boolean): boolean {
  if (value === 1) return true;
  if (/\d[eE][+-]?\d+$/.test(raw)) return false;
  const binary = /[KMGTPE]i$/.test(raw);
  if (cpu) return !binary && value === 0.001;
  return POWERS.some((k) => value === (binary ? 1024 : 1000) ** k);
}

function fieldRef(fr: Fields, allowed: RegExp[]): { fieldPath: string } {
  fr.ignore('apiVersion');
  const fieldPath = fr.str('fieldPath');
  if (!allowed.some((re) => re.test(fieldPath))) throw bad(`${fr.at('fieldPath')} "${fieldPath}" is not supported`);
  fr.done();
  return { fieldPath };
}

/** A resourceFieldRef; its containerName defaults to `container` (an env var's own), required where that is "" (a volume). */
function resourceFieldRef(rr: Fields, container: string): { containerName: string; resource: string; divisor: string } {
  const resource = rr.str('resource');
  if (!RESOURCES.includes(resource)) throw bad(`${rr.at('resource')} "${resource}" is not supported (use ${RESOURCES.join(', ')})`);
  const d = rr.raw('divisor');
  const value = d === undefined ? 0 : parseQuantity(d, rr.at('divisor'));
  // A divisor of 0 is an unset one: 1.
  const divisor = value === 0 ? '1' : String(d);
  if (value !== 0) {
    const cpu = resource.endsWith('.cpu');
    if (!allowedDivisor(divisor.trim(), value, cpu)) {
      throw bad(
        `${rr.at('divisor')}: only divisor's values ${cpu ? '1m and 1 are supported with the cpu resource' : '1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource'}`,
      );
    }
  }
  const containerName = rr.str('containerName') || container;
  if (!containerName) throw bad(`${rr.at('containerName')} is required`);
  rr.done();
  return { containerName, resource, divisor };
}

function envVar(f: Fields, containerName: string): EnvVarSpec {
  const name = f.str('name');
  if (!name) throw bad(`${f.at('name')} is required`);
  // The API's rule (RelaxedEnvironmentVariableValidation, on by default since 1.32): an "=" would split NAME=value.
  if (!/^[\x20-\x7e]+$/.test(name) || name.includes('=')) {
    throw bad(`${f.at('name')} ${JSON.stringify(name)} must consist only of printable ASCII characters other than "="`);
  }
  const e: EnvVarSpec = { name };
  if (f.raw('value') !== undefined) e.value = f.str('value');
  const from = f.obj('valueFrom');
  if (from) {
    // As the API server: only a non-empty value conflicts; valueFrom is what counts.
    if (e.value) throw bad(`${f.path}: value and valueFrom are mutually exclusive`);
    delete e.value;
    const fr = from.obj('fieldRef');
    const rr = from.obj('resourceFieldRef');
    if (fr) e.fieldRef = fieldRef(fr, FIELD_PATHS);
    if (rr) e.resourceFieldRef = resourceFieldRef(rr, containerName);
    from.done();
    if ((fr ? 1 : 0) + (rr ? 1 : 0) !== 1) throw bad(`${from.path} must have exactly one of fieldRef, resourceFieldRef`);
  }
  f.done();
  return e;
}

function security(f: Fields | undefined, pod: PodSecurityDefaults): ContainerSecurity {
  const s: ContainerSecurity = {
    runAsUser: pod.runAsUser,
    runAsGroup: pod.runAsGroup,
    runAsNonRoot: pod.runAsNonRoot,
    privileged: false,
    readOnlyRootFilesystem: false,
    capAdd: [],
    capDrop: [],
    allowPrivilegeEscalation: null,
    seccomp: pod.seccomp,
    supplementalGroups: pod.supplementalGroups,
  };
  if (!f) return s;
  if (f.raw('runAsUser') !== undefined) s.runAsUser = f.int('runAsUser', 0, 0, 2 ** 31 - 1);
  if (f.raw('runAsGroup') !== undefined) s.runAsGroup = f.int('runAsGroup', 0, 0, 2 ** 31 - 1);
  if (f.raw('runAsNonRoot') !== undefined) s.runAsNonRoot = f.bool('runAsNonRoot');
  s.privileged = f.bool('privileged');
  s.readOnlyRootFilesystem = f.bool('readOnlyRootFilesystem');
  if (f.raw('allowPrivilegeEscalation') !== undefined) s.allowPrivilegeEscalation = f.bool('allowPrivilegeEscalation');
  const caps = f.obj('capabilities');
  if (caps) {
    s.capAdd = caps.strings('add') ?? [];
    s.capDrop = caps.strings('drop') ?? [];
    caps.done();
  }
  const sp = f.obj('seccompProfile');
  if (sp) s.seccomp = seccompProfile(sp);
  f.done();
  if (s.privileged && s.allowPrivilegeEscalation === false) {
    throw bad(`${f.path}: allowPrivilegeEscalation cannot be false for a privileged container`);
  }
  return s;
}

function seccompProfile(f: Fields): SeccompSetting {
  const type = f.str('type');
  const local = f.raw('localhostProfile');
  if (type !== 'Localhost') {
    if (type !== 'RuntimeDefault' && type !== 'Unconfined') throw bad(`${f.at('type')} must be RuntimeDefault, Unconfined or Localhost`);
    if (local !== undefined) throw bad(`${f.at('localhostProfile')} may only be set for type Localhost`);
    f.done();
    return type;
  }
  // As the API server's validation: a path that descends from the profile root.
  const path = f.str('localhostProfile');
  if (!path) throw bad(`${f.at('localhostProfile')} is required for type Localhost`);
  if (path.startsWith('/') || path.split('/').includes('..') || path.includes('\0')) {
    throw bad(`${f.at('localhostProfile')} must be a relative path without ".."`);
  }
  f.done();
  return { localhostProfile: path };
}

interface PodSecurityDefaults {
  runAsUser: number | null;
  runAsGroup: number | null;
  runAsNonRoot: boolean;
  seccomp: SeccompSetting | null;
  supplementalGroups: number[];
}

function podSecurity(f: Fields | undefined): PodSecurityDefaults {
  const d: PodSecurityDefaults = { runAsUser: null, runAsGroup: null, runAsNonRoot: false, seccomp: null, supplementalGroups: [] };
  if (!f) return d;
  d.runAsUser = f.optInt('runAsUser');
  d.runAsGroup = f.optInt('runAsGroup');
  d.runAsNonRoot = f.bool('runAsNonRoot');
  const groups = f.raw('supplementalGroups');
  if (groups !== undefined) {
    if (!Array.isArray(groups) || !groups.every((g) => Number.isInteger(g) && g >= 0)) {
      throw bad(`${f.at('supplementalGroups')} must be a list of group ids`);
    }
    d.supplementalGroups = groups as number[];
  }
  const sp = f.obj('seccompProfile');
  if (sp) d.seccomp = seccompProfile(sp);
  f.done();
  return d;
}

/** Like the API server: Always for ":latest" or an untagged image, else IfNotPresent. */
function defaultPullPolicy(image: string): PullPolicy {
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const tag = last.includes(':') ? last.slice(last.indexOf(':') + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function container(f: Fields, init: boolean, pod: PodSecurityDefaults, graceSeconds: number): PodContainer {
  const name = f.str('name');
  checkName(name, f.at('name'), DNS_LABEL, 63);
  const image = f.str('image');
  if (!image) throw bad(`${f.at('image')} is required`);
  const res = f.obj('resources');
  const resources = { limits: resourceList(res?.obj('limits')), requests: resourceList(res?.obj('requests')) };
  res?.done();
  // As the API server: a request above its limit is refused (named by the quantities as written).
  for (const r of ['cpu', 'memory'] as const) {
    const [request, limit] = [resources.requests[r], resources.limits[r]];
    if (request !== undefined && limit !== undefined && request > limit) {
      const given = (kind: 'requests' | 'limits') => JSON.stringify(String((res!.value[kind] as Json)[r]).trim());
      throw bad(`${res!.at('requests')}.${r} ${given('requests')} must be less than or equal to the ${r} limit of ${given('limits')}`);
    }
  }
  // Requests default to limits, as the API server does.
  if (resources.requests.cpu === undefined && resources.limits.cpu !== undefined) resources.requests.cpu = resources.limits.cpu;
  if (resources.requests.memory === undefined && resources.limits.memory !== undefined) resources.requests.memory = resources.limits.memory;
  const ports: PortSpec[] = f.list('ports').map((p) => {
    const out: PortSpec = {
      name: p.str('name'),
      containerPort: p.int('containerPort', 0, 1, 65535),
      protocol: p.oneOf('protocol', ['TCP', 'UDP', 'SCTP'], 'TCP'),
      hostPort: p.int('hostPort', 0, 0, 65535),
      hostIP: p.str('hostIP'),
    };
    if (!out.containerPort) throw bad(`${p.at('containerPort')} is required`);
    p.done();
    return out;
  });
  const mountPaths = new Set<string>();
  const volumeMounts: VolumeMountSpec[] = f.list('volumeMounts').map((m) => {
    const vm = { name: m.str('name'), mountPath: m.str('mountPath'), readOnly: m.bool('readOnly'), subPath: m.str('subPath') };
    if (!vm.name) throw bad(`${m.at('name')} is required`);
    if (!vm.mountPath.startsWith('/')) throw bad(`${m.at('mountPath')} must be an absolute path`);
    if (mountPaths.has(vm.mountPath)) throw bad(`${m.at('mountPath')} "${vm.mountPath}" must be unique`);
    mountPaths.add(vm.mountPath);
    if (vm.subPath.startsWith('/') || vm.subPath.split('/').includes('..')) {
      throw bad(`${m.at('subPath')} must be a relative path without ".."`);
    }
    m.done();
    return vm;
  });
  const lc = f.obj('lifecycle');
  const lifecycle: PodContainer['lifecycle'] = {};
  if (lc) {
    const ps = lc.obj('postStart');
    if (ps) {
      lifecycle.postStart = handler(ps, ['exec', 'httpGet', 'sleep'], graceSeconds);
      ps.done();
    }
    const pre = lc.obj('preStop');
    if (pre) {
      lifecycle.preStop = handler(pre, ['exec', 'httpGet', 'sleep'], graceSeconds);
      pre.done();
    }
    lc.done();
  }
  const c: PodContainer = {
    name,
    image,
    imagePullPolicy: f.oneOf('imagePullPolicy', ['Always', 'IfNotPresent', 'Never'], defaultPullPolicy(image)),
    command: f.strings('command'),
    args: f.strings('args'),
    workingDir: f.str('workingDir'),
    env: f.list('env').map((e) => envVar(e, name)),
    ports,
    resources,
    volumeMounts,
    security: security(f.obj('securityContext'), pod),
    lifecycle,
  };
  const restartPolicy = f.raw('restartPolicy');
  if (restartPolicy !== undefined) {
    if (!init || restartPolicy !== 'Always') {
      throw bad(`${f.at('restartPolicy')} is only supported as "Always" on an init container (a sidecar)`);
    }
    c.restartPolicy = 'Always';
  }
  const live = probe(f.obj('livenessProbe'), 'liveness');
  const ready = probe(f.obj('readinessProbe'), 'readiness');
  const start = probe(f.obj('startupProbe'), 'startup');
  if (init && !c.restartPolicy && (live || ready || start || lifecycle.postStart || lifecycle.preStop)) {
    throw bad(`${f.path}: probes and lifecycle hooks are only allowed on sidecar init containers (restartPolicy: Always)`);
  }
  if (live) c.livenessProbe = live;
  if (ready) c.readinessProbe = ready;
  if (start) c.startupProbe = start;
  c.terminationMessagePath = f.str('terminationMessagePath', '/dev/termination-log');
  if (!c.terminationMessagePath.startsWith('/')) throw bad(`${f.at('terminationMessagePath')} must be an absolute path`);
  c.terminationMessagePolicy = f.oneOf<'File' | 'FallbackToLogsOnError'>('terminationMessagePolicy', ['File', 'FallbackToLogsOnError'], 'File');
  if (f.bool('stdin') || f.bool('tty') || f.bool('stdinOnce')) throw bad(`${f.path}: stdin and tty are not supported by peapod`);
  f.done();
  return c;
}

function hostAlias(f: Fields): PodSpec['hostAliases'][number] {
  const ip = f.str('ip');
  if (!isIP(ip)) throw bad(`${f.at('ip')} "${ip}" must be a valid IP address`);
  const hostnames = f.strings('hostnames') ?? [];
  hostnames.forEach((h, i) => checkName(h, `${f.at('hostnames')}[${i}]`, DNS_SUBDOMAIN, 253));
  f.done();
  return { ip, hostnames };
}

/** A file mode as the API takes it: 0 to 0777 (YAML's 0644 is octal, JSON gives 420). */
function fileMode(f: Fields, key: string, def: number): number {
  const mode = f.int(key, def);
  if (mode > 0o777) throw bad(`${f.at(key)} must be a number between 0 and 0777 (octal), both inclusive`);
  return mode;
}

function downwardAPI(f: Fields): NonNullable<VolumeSpec['downwardAPI']> {
  const defaultMode = fileMode(f, 'defaultMode', 0o644);
  const paths = new Set<string>();
  const items = f.list('items').map((it) => {
    const path = it.str('path');
    if (!path) throw bad(`${it.at('path')} is required`);
    if (path.startsWith('/') || path.split('/').includes('..')) throw bad(`${it.at('path')} must be a relative path without ".."`);
    if (paths.has(path)) throw bad(`${it.at('path')} "${path}" must be unique`);
    paths.add(path);
    const fr = it.obj('fieldRef');
    const rr = it.obj('resourceFieldRef');
    if ((fr ? 1 : 0) + (rr ? 1 : 0) !== 1) throw bad(`${it.path} must have exactly one of fieldRef, resourceFieldRef`);
    const item: DownwardAPIItem = { path, mode: it.raw('mode') === undefined ? null : fileMode(it, 'mode', 0) };
    if (fr) item.fieldRef = fieldRef(fr, VOLUME_FIELD_PATHS);
    if (rr) item.resourceFieldRef = resourceFieldRef(rr, '');
    it.done();
    return item;
  });
  f.done();
  return { items, defaultMode };
}

function volume(f: Fields): VolumeSpec {
  const name = f.str('name');
  checkName(name, f.at('name'), DNS_LABEL, 63);
  const v: VolumeSpec = { name };
  const ed = f.obj('emptyDir');
  const hp = f.obj('hostPath');
  const da = f.obj('downwardAPI');
  if (ed) {
    const medium = ed.oneOf('medium', ['', 'Memory'], '');
    const sl = ed.raw('sizeLimit');
    const sizeLimit = sl === undefined ? null : { bytes: Math.ceil(parseQuantity(sl, ed.at('sizeLimit'))), quantity: String(sl).trim() };
    // A zero limit is no limit, as for the kubelet (and tmpfs size=0).
    v.emptyDir = { medium, sizeLimit: sizeLimit?.bytes ? sizeLimit : null };
    ed.done();
  }
  if (hp) {
    const path = hp.str('path');
    if (!path.startsWith('/')) throw bad(`${hp.at('path')} must be an absolute path`);
    if (path.split('/').includes('..')) throw bad(`${hp.at('path')} must not contain '..'`);
    const type = hp.oneOf('type', ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice'], '');
    v.hostPath = { path, type };
    hp.done();
  }
  if (da) v.downwardAPI = downwardAPI(da);
  if ((ed ? 1 : 0) + (hp ? 1 : 0) + (da ? 1 : 0) !== 1) {
    const other = Object.keys(f.value).find((k) => !['name', 'emptyDir', 'hostPath', 'downwardAPI'].includes(k));
    if (other) throw bad(`${f.at(other)} is not supported by peapod (volumes: emptyDir, hostPath, downwardAPI)`);
    throw bad(`${f.path} must have exactly one of emptyDir, hostPath, downwardAPI`);
  }
  f.done();
  return v;
}

/** One Pod object → PodSpec; `where` prefixes error paths ("" for a single document). */
export function parsePod(obj: unknown, where = ''): ParsedPod {
  try {
    return { spec: parsePodObject(obj), manifest: obj };
  } catch (err) {
    if (where && err instanceof Error) err.message = `${where}: ${err.message}`;
    throw err;
  }
}

function parsePodObject(obj: unknown): PodSpec {
  const top = Fields.of(obj, '');
  const apiVersion = top.str('apiVersion');
  const kind = top.str('kind');
  if (apiVersion !== 'v1' || kind !== 'Pod') {
    throw bad(`only apiVersion: v1, kind: Pod is supported (got apiVersion: ${apiVersion || '""'}, kind: ${kind || '""'})`);
  }
  top.ignore('status');
  const md = top.obj('metadata') ?? Fields.of({}, 'metadata');
  const name = md.str('name');
  checkName(name, 'metadata.name', DNS_SUBDOMAIN, 253);
  const namespace = md.str('namespace', 'default') || 'default';
  checkName(namespace, 'metadata.namespace', DNS_LABEL, 63);
  const labels = md.map('labels');
  const annotations = md.map('annotations');
  const uid = md.str('uid') || randomUUID();
  checkUid(uid);
  md.ignore('creationTimestamp', 'resourceVersion', 'generation', 'managedFields', 'selfLink');
  md.done();

  const sp = top.obj('spec');
  if (!sp) throw bad('spec is required');
  const podSec = podSecurity(sp.obj('securityContext'));
  const hostname = sp.str('hostname');
  if (hostname) checkName(hostname, 'spec.hostname', DNS_LABEL, 63);
  const subdomain = sp.str('subdomain');
  if (subdomain) checkName(subdomain, 'spec.subdomain', DNS_LABEL, 63);
  const grace = sp.int('terminationGracePeriodSeconds', 30, 0);
  const spec: PodSpec = {
    name,
    namespace,
    uid,
    labels,
    annotations,
    restartPolicy: sp.oneOf('restartPolicy', ['Always', 'OnFailure', 'Never'], 'Always'),
    terminationGracePeriodSeconds: grace,
    activeDeadlineSeconds: sp.optInt('activeDeadlineSeconds', 1),
    hostNetwork: sp.bool('hostNetwork'),
    hostPID: sp.bool('hostPID'),
    hostIPC: sp.bool('hostIPC'),
    shareProcessNamespace: sp.bool('shareProcessNamespace'),
    hostname,
    subdomain,
    hostAliases: sp.list('hostAliases').map(hostAlias),
    nodeName: sp.str('nodeName'),
    // serviceAccount is the deprecated alias; serviceAccountName wins when both are set. Unset stays ""
    // here: the API server's admission defaults it, not the kubelet's (see the controller).
    serviceAccountName: [sp.str('serviceAccountName'), sp.str('serviceAccount')].find((x) => x !== '') ?? '',
    volumes: sp.list('volumes').map(volume),
    initContainers: sp.list('initContainers').map((c) => container(c, true, podSec, grace)),
    containers: sp.list('containers').map((c) => container(c, false, podSec, grace)),
  };
  sp.oneOf('dnsPolicy', ['ClusterFirst', 'Default', 'ClusterFirstWithHostNet'], 'ClusterFirst');
  sp.ignore('enableServiceLinks', 'schedulerName');
  sp.done();
  top.done();

  if (spec.containers.length === 0) throw bad('spec.containers must have at least one container');
  if (spec.hostPID && spec.shareProcessNamespace) throw bad('spec.shareProcessNamespace cannot be used with spec.hostPID');
  const names = new Set<string>();
  const all = [
    ...spec.initContainers.map((c, i) => [`spec.initContainers[${i}]`, c] as const),
    ...spec.containers.map((c, i) => [`spec.containers[${i}]`, c] as const),
  ];
  for (const [path, ctr] of all) {
    if (names.has(ctr.name)) throw bad(`${path}.name "${ctr.name}" is used by another container`);
    names.add(ctr.name);
  }
  const volumes = new Set<string>();
  for (const [i, v] of spec.volumes.entries()) {
    if (volumes.has(v.name)) throw bad(`spec.volumes[${i}].name "${v.name}" is duplicated`);
    volumes.add(v.name);
  }
  for (const [list, cs] of [['initContainers', spec.initContainers], ['containers', spec.containers]] as const) {
    cs.forEach((c, i) =>
      c.volumeMounts.forEach((m, j) => {
        if (!volumes.has(m.name)) throw bad(`spec.${list}[${i}].volumeMounts[${j}].name "${m.name}" is not a volume of the pod`);
      }),
    );
  }
  return spec;
}

/** Every Pod of a YAML or JSON text (documents separated by ---; empty ones skipped; a v1 List of Pods too). */
export function parseManifests(text: string): ParsedPod[] {
  // YAML 1.1, as Kubernetes reads manifests (go-yaml v2): 0644 is octal, yes/no are booleans. go-yaml
  // has no base-60 numbers (1:20 stays a string); an unquoted date stays a string here too.
  const docs = parseAllDocuments(text, {
    version: '1.1',
    customTags: (tags) => tags.filter((t) => typeof t === 'string' || (t.tag !== 'tag:yaml.org,2002:timestamp' && t.format !== 'TIME')),
  });
  const objs: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length > 0) throw bad(`manifest is not valid YAML/JSON: ${doc.errors[0]!.message}`);
    const v = doc.toJS();
    if (v === null || v === undefined) continue;
    if (typeof v === 'object' && !Array.isArray(v) && (v as Json).kind === 'List' && Array.isArray((v as Json).items)) {
      objs.push(...((v as Json).items as unknown[]));
    } else objs.push(v);
  }
  if (objs.length === 0) throw bad('the manifest holds no Pod');
  const pods = objs.map((o, i) => parsePod(o, objs.length > 1 ? `document ${i + 1}` : ''));
  const seen = new Set<string>();
  for (const p of pods) {
    const key = `${p.spec.namespace}/${p.spec.name}`;
    if (seen.has(key)) throw bad(`pod ${key} appears twice in the manifest`);
    seen.add(key);
  }
  return pods;
}
