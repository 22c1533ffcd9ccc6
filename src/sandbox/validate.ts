import { invalidArgument } from '../errors.js';
import { normalizeCgroupPath } from '../linux/cgroups.js';
import { podBandwidth } from '../network/cni.js';
import type { SandboxSpec } from './types.js';

const MAX_FIELD = 4096;
const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** IPC sysctls live in the IPC namespace; net.* in the network namespace. */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

function checkText(field: string, value: string, max = MAX_FIELD): void {
  if (value.length > max) throw invalidArgument(`${field} is longer than ${max} characters`);
  if (value.includes('\0')) throw invalidArgument(`${field} contains a NUL byte`);
}

/** Rejects what the kernel or the file system would trip on, before anything is made. */
export function validateSpec(spec: SandboxSpec): void {
  const m = spec.metadata;
  if (!m.name) throw invalidArgument('config.metadata.name is required');
  checkText('config.metadata.name', m.name, 253);
  checkText('config.metadata.namespace', m.namespace, 253);
  checkText('config.metadata.uid', m.uid, 253);
  // The kubelet builds /var/log/pods/<namespace>_<name>_<uid> from these: no separators, no dot names.
  for (const [field, v] of [['name', m.name], ['namespace', m.namespace], ['uid', m.uid]] as const) {
    if (v.includes('/') || v === '.' || v === '..') throw invalidArgument(`config.metadata.${field} "${v}" must not contain "/" or be "." or ".."`);
  }
  if (!Number.isInteger(m.attempt) || m.attempt < 0) throw invalidArgument('config.metadata.attempt must be >= 0');
  if (spec.hostname) {
    if (spec.hostname.length > 64 || !HOSTNAME.test(spec.hostname)) {
      throw invalidArgument(`config.hostname "${spec.hostname.slice(0, 80)}" is not a valid host name (at most 64 characters)`);
    }
  }
  if (spec.logDirectory) {
    checkText('config.log_directory', spec.logDirectory);
    if (!spec.logDirectory.startsWith('/')) throw invalidArgument('config.log_directory must be an absolute path');
    if (spec.logDirectory.split('/').includes('..')) throw invalidArgument('config.log_directory must not contain ".."');
  }
  for (const [k, v] of [...Object.entries(spec.labels), ...Object.entries(spec.annotations)]) {
    checkText(`label/annotation key "${k.slice(0, 40)}"`, k, 317);
    checkText(`label/annotation "${k.slice(0, 40)}"`, v, 256 * 1024);
  }
  for (const [name, value] of Object.entries(spec.sysctls)) {
    checkText(`sysctl ${name}`, value, 1024);
    if (name.includes('/') || name.includes('..')) throw invalidArgument(`sysctl name "${name}" is malformed`);
    if (name.startsWith('net.')) {
      if (spec.namespaceOptions.network === 'NODE') {
        throw invalidArgument(`sysctl ${name} cannot be set in a host-network pod`);
      }
    } else if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) {
      if (spec.namespaceOptions.ipc === 'NODE') throw invalidArgument(`sysctl ${name} cannot be set in a host-IPC pod`);
    } else {
      throw invalidArgument(`sysctl ${name} is not namespaced and cannot be set for a pod`);
    }
  }
  // Checked before anything is made: the pod's CNI ADD (and its DEL) would send them.
  if (spec.namespaceOptions.network !== 'NODE') podBandwidth(spec.annotations);
  if (spec.dnsConfig) {
    const d = spec.dnsConfig;
    for (const [field, list] of [['servers', d.servers], ['searches', d.searches], ['options', d.options]] as const) {
      if (list.length > 64) throw invalidArgument(`config.dns_config.${field} has more than 64 entries`);
      for (const v of list) {
        checkText(`config.dns_config.${field}`, v, 253);
        // One resolv.conf line each: a newline would inject another directive.
        if (/[\s]/.test(v)) throw invalidArgument(`config.dns_config.${field} entry "${v.slice(0, 80)}" contains white space`);
      }
    }
  }
  if (spec.cgroupParent) {
    try {
      normalizeCgroupPath(spec.cgroupParent);
    } catch (err) {
      throw invalidArgument(`config.linux.cgroup_parent: ${(err as Error).message}`);
    }
  }
  for (const p of spec.portMappings) {
    if (!['TCP', 'UDP', 'SCTP'].includes(p.protocol)) throw invalidArgument(`port mapping protocol ${String(p.protocol)} is not valid`);
    checkText('port mapping host_ip', p.hostIp, 64);
    for (const port of [p.containerPort, p.hostPort]) {
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`port ${port} is out of range`);
    }
  }
}
