import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { internal } from '../errors.js';
import { identify, type ProcessIdentity } from '../linux/proc.js';

export interface PauseOptions {
  nativeDir: string;
  /** Make pause PID 1 of a new PID namespace (pid mode POD or CONTAINER). */
  newPidNamespace: boolean;
  user?: string;
}

/**
 * Forks the native launcher, which enters a new PID namespace if asked and
 * execs pause. Synchronous: call it inside the namespace window, so the
 * launcher (and pause after it) inherit the pod's net/IPC/UTS namespaces.
 */
export function spawnPauseLauncher(opts: PauseOptions): ChildProcess {
  const args: string[] = [];
  if (opts.newPidNamespace) args.push('--new-pidns');
  if (opts.user) args.push('--user', opts.user);
  args.push('--', join(opts.nativeDir, 'pause'));
  return spawn(join(opts.nativeDir, 'peapod-sandbox'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Waits for the launcher to report pause's host pid and exit. */
export function awaitPause(child: ChildProcess): Promise<ProcessIdentity> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(internal(`cannot start pause launcher: ${e.message}`, e)));
    child.on('close', (code, signal) => {
      const pid = Number(out.trim());
      if (code !== 0 || !Number.isInteger(pid) || pid <= 0) {
        reject(internal(`pause launcher failed (${signal ?? `exit ${code}`}): ${err.trim() || out.trim()}`));
        return;
      }
      const id = identify(pid);
      if (!id) reject(internal(`pause (pid ${pid}) exited at once`));
      else resolve(id);
    });
  });
}
