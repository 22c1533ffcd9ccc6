import { join } from 'node:path';
import { internal } from '../errors.js';
import type { Helpers, SpawnedHelper } from '../linux/helpers.js';
import { identify, type ProcessIdentity } from '../linux/proc.js';

export interface PauseOptions {
  nativeDir: string;
  helpers: Helpers;
  /** The sandbox id: the key its launcher reports under. */
  id: string;
  /** The sandbox's runtime dir: the launcher's log goes there, and pause's argv names it. */
  dir: string;
  /** Make pause PID 1 of a new PID namespace (pid mode POD or CONTAINER). */
  newPidNamespace: boolean;
  user?: string;
}

/**
 * Spawns the native launcher, which enters a new PID namespace if asked and
 * execs pause. Synchronous: call it inside the namespace window, so the
 * launcher (and pause after it) inherit the pod's net/IPC/UTS namespaces.
 */
export function spawnPauseLauncher(opts: PauseOptions): SpawnedHelper {
  const args: string[] = [];
  if (opts.newPidNamespace) args.push('--new-pidns');
  if (opts.user) args.push('--user', opts.user);
  args.push('--', ...pauseArgv(opts.nativeDir, opts.dir));
  return opts.helpers.spawn(join(opts.nativeDir, 'peapod-sandbox'), args, opts.id, { stderr: join(opts.dir, 'launcher.log') });
}

/** pause's argv names its sandbox's runtime dir, so a pause whose pid never got recorded can still be found. */
export function pauseArgv(nativeDir: string, sandboxDir: string): string[] {
  return [join(nativeDir, 'pause'), '--sandbox', sandboxDir];
}

/** Waits for the launcher to report pause's host pid (it exits right after). */
export async function awaitPause(launcher: SpawnedHelper): Promise<ProcessIdentity> {
  let m;
  try {
    m = await launcher.report;
  } catch (err) {
    throw internal(`pause launcher failed: ${(err as Error).message}`, err);
  }
  const pid = Number(m.text);
  if (m.word !== 'ok' || !Number.isInteger(pid) || pid <= 0) throw internal(`pause launcher failed: ${m.text}`);
  const id = identify(pid);
  if (!id) throw internal(`pause (pid ${pid}) exited at once`);
  return id;
}
