import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { libc } from '../ffi/index.js';
import { MS_NODEV, MS_NOEXEC, MS_NOSUID } from '../ffi/constants.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Sandbox } from './types.js';

/** Files every container of a pod bind-mounts, kept in the sandbox's runtime dir. */
export interface PodFiles {
  hostname: string;
  hosts: string;
  resolvConf: string;
  /** The pod's /dev/shm: one tmpfs shared by all its containers (the host's for host IPC). */
  shm: string;
}

export function podFiles(runtimeDir: string, sb: Sandbox): PodFiles {
  return {
    hostname: join(runtimeDir, 'hostname'),
    hosts: join(runtimeDir, 'hosts'),
    resolvConf: join(runtimeDir, 'resolv.conf'),
    shm: sb.spec.namespaceOptions.ipc === 'NODE' ? '/dev/shm' : join(runtimeDir, 'shm'),
  };
}

const SHM_SIZE = 64 * 1024 * 1024;

/**
 * resolv.conf from the pod's DNSConfig when it has one, even empty (a kubelet
 * with `resolvConf: ""` sends one to turn lookups off), else the host's own; as containerd.
 */
function resolvConf(sb: Sandbox): string {
  const dns = sb.spec.dnsConfig;
  if (!dns) {
    try {
      return readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      return '';
    }
  }
  const lines = dns.servers.map((s) => `nameserver ${s}`);
  if (dns.searches.length) lines.push(`search ${dns.searches.join(' ')}`);
  if (dns.options.length) lines.push(`options ${dns.options.join(' ')}`);
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/**
 * On the host's network the host's own file, as containerd copies it and the
 * kubelet gives a host-network pod (the names the node resolves are the
 * pod's); else localhost and the pod's IP under its hostname.
 */
function hostsFile(sb: Sandbox, hostname: string): string {
  if (sb.spec.namespaceOptions.network === 'NODE') {
    try {
      return readFileSync('/etc/hosts', 'utf8');
    } catch {
      // none on the host: the pod's own below
    }
  }
  let text = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n';
  if (sb.network.ip) text += `${sb.network.ip}\t${hostname}\n`;
  return text;
}

/** Writes hostname, hosts and resolv.conf, and mounts the pod's shm tmpfs. */
export function preparePodFiles(runtimeDir: string, sb: Sandbox, hostHostname: string): PodFiles {
  const files = podFiles(runtimeDir, sb);
  // As containerd, on the host's network too: the kubelet sends its node name, which may differ from the host's.
  const hostname = sb.spec.hostname || hostHostname;
  writeFileAtomic(files.hostname, hostname + '\n', { mode: 0o644 });
  writeFileAtomic(files.hosts, hostsFile(sb, hostname), { mode: 0o644 });
  writeFileAtomic(files.resolvConf, resolvConf(sb), { mode: 0o644 });
  if (files.shm !== '/dev/shm') {
    mkdirSync(files.shm, { recursive: true });
    libc().mount('shm', files.shm, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${SHM_SIZE}`);
  }
  return files;
}
