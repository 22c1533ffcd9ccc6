import { existsSync } from 'node:fs';
import { invalidArgument } from '../errors.js';
import type { RootfsSpec } from '../image/rootfs.js';
import type { PodFiles } from '../sandbox/podfiles.js';
import type { NativeSpec } from './spec.js';
import type { ContainerSpec, Propagation } from './types.js';

/** What containerd masks and makes read-only when the client leaves the lists empty. */
export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** Where a container's optional init lives (as docker-init does). */
export const INIT_PATH = '/dev/init';
/** The annotation that asks for it, like `docker run --init`. */
export const INIT_ANNOTATION = 'peapod.io/init';

const propagationFlag: Record<Propagation, string> = {
  PRIVATE: 'rprivate',
  HOST_TO_CONTAINER: 'rslave',
  BIDIRECTIONAL: 'rshared',
};

/** A container path must be absolute and clean: the launcher resolves it inside the rootfs. */
export function checkContainerPath(field: string, path: string): void {
  if (!path.startsWith('/')) throw invalidArgument(`${field} "${path}" must be an absolute path`);
  if (path.split('/').includes('..')) throw invalidArgument(`${field} "${path}" must not contain ".."`);
  if (/[\0\n]/.test(path)) throw invalidArgument(`${field} contains a NUL or newline`);
}

/** Checks the CRI mounts before anything is made: a missing host path is the client's error. */
export function validateMounts(spec: ContainerSpec): void {
  for (const m of spec.mounts) {
    checkContainerPath('mount container_path', m.containerPath);
    if (!m.hostPath.startsWith('/')) throw invalidArgument(`mount host_path "${m.hostPath}" must be an absolute path`);
    if (!existsSync(m.hostPath)) throw invalidArgument(`mount host_path "${m.hostPath}" does not exist`);
  }
  for (const p of [...(spec.security.maskedPaths ?? []), ...(spec.security.readonlyPaths ?? [])]) {
    checkContainerPath('masked/readonly path', p);
  }
}

/** The pod's files bound into a container, [host file, container path], but those a CRI mount replaces. */
export function podFileMounts(c: ContainerSpec, pod: PodFiles): Array<[string, string]> {
  const clientPaths = new Set(c.mounts.map((m) => m.containerPath));
  const all: Array<[string, string]> = [
    [pod.hosts, '/etc/hosts'],
    [pod.resolvConf, '/etc/resolv.conf'],
    [pod.hostname, '/etc/hostname'],
  ];
  return all.filter(([, target]) => !clientPaths.has(target));
}

/**
 * The file-system part of a container's spec, in the order the launcher
 * applies it: the image rootfs, the kernel file systems, the pod's files,
 * the client's mounts, then masks and read-only paths.
 */
export function addFilesystem(
  spec: NativeSpec,
  c: ContainerSpec,
  rootfsDir: string,
  rootfs: RootfsSpec,
  pod: PodFiles,
  /** peapod-init, bind-mounted at INIT_PATH for containers that ask for an init. */
  initBinary?: string,
): void {
  const sec = c.security;
  spec.add('rootfs', rootfsDir);
  if (rootfs.type === 'overlay') spec.add('overlay', rootfs.lowerdir.join(':'), rootfs.upperdir, rootfs.workdir);
  spec.add('mount', 'proc', 'proc', '/proc', 'nosuid,noexec,nodev', '-');
  spec.add('mount', 'tmpfs', 'tmpfs', '/dev', 'nosuid,strictatime', 'mode=755,size=65536k');
  for (const d of DEVICES) spec.add('mount', 'device', `/dev/${d}`, `/dev/${d}`, '-', '-');
  // In the /dev tmpfs, so the image's own file system never sees it.
  if (initBinary) spec.add('mount', 'bind', initBinary, INIT_PATH, 'bind,ro', '-');
  spec.add('mount', 'devpts', 'devpts', '/dev/pts', 'nosuid,noexec', 'newinstance,ptmxmode=0666,mode=0620,gid=5');
  spec.add('symlink', 'pts/ptmx', '/dev/ptmx');
  spec.add('symlink', '/proc/self/fd', '/dev/fd');
  spec.add('symlink', '/proc/self/fd/0', '/dev/stdin');
  spec.add('symlink', '/proc/self/fd/1', '/dev/stdout');
  spec.add('symlink', '/proc/self/fd/2', '/dev/stderr');
  spec.add('mount', 'mqueue', 'mqueue', '/dev/mqueue', 'nosuid,noexec,nodev', '-');
  spec.add('mount', 'bind', pod.shm, '/dev/shm', 'rbind,rprivate', '-');
  spec.add('mount', 'sysfs', 'sysfs', '/sys', sec.privileged ? 'nosuid,noexec,nodev' : 'ro,nosuid,noexec,nodev', '-');
  for (const [file, target] of podFileMounts(c, pod)) spec.add('mount', 'bind', file, target, 'bind,rprivate', '-');
  for (const m of c.mounts) {
    const flags = ['rbind', propagationFlag[m.propagation], ...(m.flags ?? [])];
    if (m.readonly) flags.push('ro');
    spec.add('mount', 'bind', m.hostPath, m.containerPath, flags.join(','), '-');
  }
  if (!sec.privileged) {
    for (const p of sec.maskedPaths ?? DEFAULT_MASKED_PATHS) spec.add('mask', p);
    for (const p of sec.readonlyPaths ?? DEFAULT_READONLY_PATHS) spec.add('readonly', p);
  }
  if (sec.readonlyRootfs) spec.add('readonly-rootfs');
}
