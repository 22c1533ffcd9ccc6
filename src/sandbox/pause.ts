import { join } from 'node:path';
import { internal } from '../errors.js';
import type { Helpers, SpawnedHelper } from '../linux/helpers.js';
import { identify, readProcStat, type ProcessIdentity } from '../linux/proc.js';
import { sleep } from '../util/time.js';

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
  await adopted(id);
  return id;
}

/** How long the launcher may take to exit after its report (it exits at once). */
const ADOPTION_WAIT_MS = 5_000;

/**
 * Until the launcher has exited, pause is its child, not the server's (the
 * subreaper it is re-parented to). A kill then would leave pause's zombie to
 * the launcher and then to the server, and the reaper, seeing pause not yet
 * its child, would stop watching it: the zombie would stay for the server's life.
 */
async function adopted(id: ProcessIdentity): Promise<void> {
  // Past the wait the caller goes on all the same: failing here would leave pause running, unrecorded.
  const deadline = Date.now() + ADOPTION_WAIT_MS;
  for (let delay = 0; Date.now() < deadline; delay = Math.min(delay + 1, 10)) {
    const st = readProcStat(id.pid);
    // Gone, or the pid reused: nothing to wait for (the caller finds pause dead).
    if (st?.startTime !== id.startTime || st.ppid === process.pid) return;
    await sleep(delay);
  }
}
