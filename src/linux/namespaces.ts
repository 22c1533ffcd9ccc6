import { statSync } from 'node:fs';
import { libc } from '../ffi/index.js';
import {
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWPID,
  CLONE_NEWUTS,
  O_CLOEXEC,
  O_RDONLY,
} from '../ffi/constants.js';

/** The namespaces a pod shares through its pause process. */
export type PodNamespace = 'net' | 'ipc' | 'uts' | 'pid';

export const cloneFlag: Record<PodNamespace, number> = {
  net: CLONE_NEWNET,
  ipc: CLONE_NEWIPC,
  uts: CLONE_NEWUTS,
  pid: CLONE_NEWPID,
};

/** Namespaces the server's main thread may switch: never pid or mnt. */
export type SwitchableNamespace = 'net' | 'ipc' | 'uts';
const switchable: readonly SwitchableNamespace[] = ['net', 'ipc', 'uts'];

/** Inode of a namespace file (/proc/<pid>/ns/<x> or a pinned bind mount). */
export function nsInode(path: string): number {
  return statSync(path).ino;
}

/**
 * The server thread's own net/ipc/uts namespaces, held open for the life of
 * the process so it can always switch back after working inside a pod.
 */
export class HostNamespaces {
  private constructor(private readonly fds: Record<SwitchableNamespace, number>) {}

  static open(): HostNamespaces {
    const c = libc();
    const fds = {} as Record<SwitchableNamespace, number>;
    for (const ns of switchable) fds[ns] = c.open(`/proc/thread-self/ns/${ns}`, O_RDONLY | O_CLOEXEC);
    return new HostNamespaces(fds);
  }

  /**
   * Runs `fn` with the calling thread in fresh namespaces of the given kinds.
   * Synchronous on purpose: no await, so no other callback can run while the
   * thread sits in the pod's namespaces, and it always switches back.
   */
  inNew<T>(kinds: readonly SwitchableNamespace[], fn: () => T): T {
    if (kinds.length === 0) return fn();
    const c = libc();
    const flags = kinds.reduce((f, k) => f | cloneFlag[k], 0);
    c.unshare(flags);
    try {
      return fn();
    } finally {
      this.restore(kinds);
    }
  }

  /** Runs `fn` with the calling thread inside existing (pinned) namespaces. */
  inExisting<T>(paths: Partial<Record<SwitchableNamespace, string>>, fn: () => T): T {
    const c = libc();
    const entered: SwitchableNamespace[] = [];
    const fds: number[] = [];
    try {
      for (const ns of switchable) {
        const path = paths[ns];
        if (!path) continue;
        const fd = c.open(path, O_RDONLY | O_CLOEXEC);
        fds.push(fd);
        c.setns(fd, cloneFlag[ns]);
        entered.push(ns);
      }
      return fn();
    } finally {
      this.restore(entered);
      for (const fd of fds) c.close(fd);
    }
  }

  private restore(kinds: readonly SwitchableNamespace[]): void {
    const c = libc();
    for (const ns of kinds) {
      try {
        c.setns(this.fds[ns], cloneFlag[ns]);
      } catch (err) {
        // A server thread stuck in a pod's namespace would leak every later
        // operation into that pod: die rather than carry on.
        process.stderr.write(`peapod: FATAL: cannot return to host ${ns} namespace: ${String(err)}\n`);
        process.exit(70);
      }
    }
  }
}
