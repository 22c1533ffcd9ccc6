// Container environment as the kubelet builds it: values, fieldRef,
// resourceFieldRef, and $(VAR) expansion in env values, command and args.

import { invalidArgument } from '../errors.js';
import { parseQuantity } from '../util/quantity.js';
import type { Allocatable } from './allocatable.js';
import type { DownwardAPIItem, PodContainer, PodSpec } from './types.js';

/**
 * Kubernetes' expansion (k8s.io/kubernetes/third_party/forked/golang/expansion):
 * `$(NAME)` becomes the value when NAME is defined and stays as written
 * otherwise; `$$` is an escaped `$`; any other `$` is kept.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      i++;
      continue;
    }
    const next = input[i + 1]!;
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += '$(';
        i += 2;
        continue;
      }
      const name = input.slice(i + 2, close);
      const v = lookup(name);
      out += v !== undefined ? v : `$(${name})`;
      i = close + 1;
    } else {
      out += '$' + next;
      i += 2;
    }
  }
  return out;
}

export interface PodFieldValues {
  /** The primary first. */
  podIPs: string[];
  /** What a container without a limit is limited by. */
  allocatable: Allocatable;
  hostIP: string;
  nodeName: string;
  serviceAccountName: string;
}

/** The pod's metadata fields (metadata.labels['x'] style too); undefined for another path. */
function metadataValue(pod: PodSpec, path: string): string | undefined {
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (m) return (m[1] === 'labels' ? pod.labels : pod.annotations)[m[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.name;
    case 'metadata.namespace':
      return pod.namespace;
    case 'metadata.uid':
      return pod.uid;
  }
  return undefined;
}

function fieldValue(pod: PodSpec, path: string, values: PodFieldValues): string {
  const meta = metadataValue(pod, path);
  if (meta !== undefined) return meta;
  switch (path) {
    case 'spec.nodeName':
      return values.nodeName;
    case 'spec.serviceAccountName':
      return values.serviceAccountName;
    case 'status.podIP':
      return values.podIPs[0] ?? '';
    case 'status.podIPs':
      return values.podIPs.join(',');
    case 'status.hostIP':
      return values.hostIP;
  }
  throw invalidArgument(`fieldRef ${path} is not supported`);
}

/** limits.* unset or 0 are the node's allocatable (the kubelet's MergeContainerResourceLimits), requests.* unset 0 (after defaulting to the limits). */
export function resourceValue(c: PodContainer, resource: string, divisor: string, allocatable: Allocatable): string {
  const [kind, name] = resource.split('.') as ['limits' | 'requests', 'cpu' | 'memory'];
  let v = c.resources[kind][name] ?? 0;
  if (kind === 'limits' && v === 0) v = allocatable[name];
  const d = parseQuantity(divisor, 'divisor');
  // The kubelet rounds up: 250m of cpu with divisor 1 is "1".
  return String(Math.ceil(Number((v / d).toPrecision(15))));
}

/**
 * A downwardAPI volume file's content, as the kubelet's: labels and
 * annotations whole as sorted `key="value"` lines (Go's %q), no newline at
 * the end; a resource as the env var's value.
 */
export function downwardAPIContent(pod: PodSpec, item: DownwardAPIItem, allocatable: Allocatable): string {
  if (item.resourceFieldRef) {
    const r = item.resourceFieldRef;
    const target = [...pod.containers, ...pod.initContainers].find((x) => x.name === r.containerName);
    if (!target) throw invalidArgument(`downwardAPI ${item.path}: resourceFieldRef.containerName "${r.containerName}" is not a container of the pod`);
    return resourceValue(target, r.resource, r.divisor, allocatable);
  }
  const path = item.fieldRef!.fieldPath;
  if (path === 'metadata.labels' || path === 'metadata.annotations') {
    const map = path === 'metadata.labels' ? pod.labels : pod.annotations;
    return Object.keys(map)
      .sort()
      .map((k) => `${k}=${JSON.stringify(map[k])}`)
      .join('\n');
  }
  const meta = metadataValue(pod, path);
  if (meta === undefined) throw invalidArgument(`downwardAPI ${item.path}: fieldRef ${path} is not supported in a volume`);
  return meta;
}

/** The container's environment, in order, each value expanded against the ones before it. */
export function containerEnv(pod: PodSpec, c: PodContainer, values: PodFieldValues): Array<{ key: string; value: string }> {
  const env = new Map<string, string>();
  for (const e of c.env) {
    let value: string;
    if (e.fieldRef) value = fieldValue(pod, e.fieldRef.fieldPath, values);
    else if (e.resourceFieldRef) {
      const target = [...pod.containers, ...pod.initContainers].find((x) => x.name === e.resourceFieldRef!.containerName);
      if (!target) throw invalidArgument(`env ${e.name}: resourceFieldRef.containerName "${e.resourceFieldRef.containerName}" is not a container of the pod`);
      value = resourceValue(target, e.resourceFieldRef.resource, e.resourceFieldRef.divisor, values.allocatable);
    } else value = expand(e.value ?? '', (n) => env.get(n));
    env.set(e.name, value);
  }
  return [...env].map(([key, value]) => ({ key, value }));
}

/** command and args with $(VAR) expanded against the container's environment. */
export function expandArgs(list: string[] | null, env: Array<{ key: string; value: string }>): string[] {
  if (!list) return [];
  const m = new Map(env.map((e) => [e.key, e.value]));
  return list.map((a) => expand(a, (n) => m.get(n)));
}
