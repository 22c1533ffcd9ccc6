import { readdirSync, readFileSync } from 'node:fs';
import { libc } from '../ffi/index.js';
import { P_ALL, PR_SET_CHILD_SUBREAPER, SIGKILL, WEXITED, WNOHANG, WNOWAIT } from '../ffi/constants.js';
import { type Libc, SyscallError } from '../ffi/types.js';
import { isAlive, readProcStat, type ProcessIdentity } from './proc.js';
import { sleep } from '../util/time.js';

/**
 * The server is a child subreaper: pause processes (whose launcher exits at
 * once) are re-parented to it rather than to PID 1, which on some hosts never
 * reaps. It reaps only the pids it was told about, so the JavaScript runtime's
 * own child bookkeeping is never disturbed.
 */
export class Reaper {
  /** Watched pids, with the helper key each reports under (if any). */
  private readonly pids = new Map<number, string | undefined>();
  private readonly byKey = new Map<string, number>();
  /** Told once a watched pid is collected (see watch). */
  private readonly onExit = new Map<number, () => void>();
  /** Watched processes that are not our children (see watchProcess): looked at each sweep. */
  private readonly foreign = new Map<number, { id: ProcessIdentity; exited: () => void }>();
  private timer: ReturnType<typeof setInterval> | undefined;

  /** `sys`: the waits go through it (a test counts them). */
  constructor(private readonly sys: () => Pick<Libc, 'waitpid' | 'waitid'> = libc) {}

  start(): void {
    libc().prctl(PR_SET_CHILD_SUBREAPER, 1);
    this.timer = setInterval(() => this.reap(), 1000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * `key`: the helper key it reports under, so that its last word can reap
   * just it (collectKey). `exited`: called once it is collected, whoever
   * collects it (the sweep within a second of its death, or a kill).
   */
  watch(pid: number, key?: string, exited?: () => void): void {
    if (key === undefined) key = this.pids.get(pid); // watched again: keeps its key
    this.pids.set(pid, key);
    if (key !== undefined) this.byKey.set(key, pid);
    if (exited) this.onExit.set(pid, exited);
  }

  /**
   * Calls `exited` once the process `id` is gone, whoever its parent is: a
   * child of ours is watched (and reaped) as above; any other (a pause an
   * earlier server started) cannot be waited for, so each sweep looks at it.
   */
  watchProcess(id: ProcessIdentity, exited: () => void): void {
    const st = readProcStat(id.pid);
    if (st?.startTime === id.startTime && st.ppid === process.pid) this.watch(id.pid, undefined, exited);
    else this.foreign.set(id.pid, { id, exited });
  }

  /**
   * Watches a process that was re-parented to this server (a container init
   * whose monitor died: the server is the nearest subreaper), so its zombie
   * is reaped; else the pod's PID 1 could never finish exiting. Only the very
   * process (pid and start time) and only while it is our child.
   */
  adopt(id: ProcessIdentity): void {
    const st = readProcStat(id.pid);
    if (st && st.startTime === id.startTime && st.ppid === process.pid) this.watch(id.pid);
  }

  /**
   * Collects every watched pid that has exited (the periodic sweep). A peek
   * at any exited child (waitid with WNOWAIT) finds them one by one, so a
   * second without an exit costs one call, not a wait per watched pid (2000
   * of those for 1000 pods held the thread 6-14 ms). A pod's orphan (see
   * reapPodOrphans) found so is reaped too. Only an exited child that is not
   * ours to reap (the runtime's own, before it collects it) hides the rest:
   * then every watched pid is tried.
   */
  reap(): void {
    this.reapChildren();
    for (const [pid, { id, exited }] of this.foreign) {
      if (isAlive(id)) continue;
      this.foreign.delete(pid);
      exited();
    }
  }

  private reapChildren(): void {
    for (;;) {
      const pid = this.exitedChild();
      if (pid === 0) return;
      if (this.pids.has(pid)) this.collect(pid);
      // A pod's orphan goes at once, not with its pod; only the runtime's own child hides the rest.
      else if (!reapPodOrphan(pid)) break;
    }
    for (const pid of this.pids.keys()) this.collect(pid);
  }

  /** Collects `pid` if it is watched and has exited; forgets it if it is not our child. */
  collect(pid: number): void {
    if (!this.pids.has(pid)) return;
    try {
      if (this.sys().waitpid(pid, WNOHANG).pid !== pid) return;
    } catch (err) {
      if (!(err instanceof SyscallError && err.code === 'ECHILD')) throw err;
    }
    const key = this.pids.get(pid);
    this.pids.delete(pid);
    if (key !== undefined && this.byKey.get(key) === pid) this.byKey.delete(key);
    const exited = this.onExit.get(pid);
    this.onExit.delete(pid);
    exited?.();
  }

  /** The pid of an exited child left waitable, or 0 (none, or no child at all). */
  private exitedChild(): number {
    try {
      return this.sys().waitid(P_ALL, 0, WEXITED | WNOHANG | WNOWAIT);
    } catch (err) {
      if (err instanceof SyscallError && err.code === 'ECHILD') return 0;
      throw err;
    }
  }

  /** Collects the helper that reports under `key` (see watch), if it has exited. */
  collectKey(key: string): void {
    const pid = this.byKey.get(key);
    if (pid !== undefined) this.collect(pid);
  }

  /** SIGKILLs the process (through a pidfd, immune to pid reuse) and waits until it is gone. */
  async kill(id: ProcessIdentity, timeoutMs = 10_000): Promise<void> {
    if (!isAlive(id)) return this.collect(id.pid);
    const c = libc();
    let pidfd: number;
    try {
      pidfd = c.pidfdOpen(id.pid);
    } catch (err) {
      if (err instanceof SyscallError && err.code === 'ESRCH') return this.collect(id.pid);
      throw err;
    }
    try {
      // Re-check after opening: the pidfd now names exactly this process.
      if (isAlive(id)) c.pidfdSendSignal(pidfd, SIGKILL);
    } finally {
      c.close(pidfd);
    }
    await this.waitGone(id, timeoutMs);
  }

  async waitGone(id: ProcessIdentity, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      this.collect(id.pid);
      // A dying pause waits for every process of its PID namespace to be reaped.
      if (delay >= 8) reapPodOrphans();
      // A child of ours is gone once reaped, not merely dead: else a zombie stays.
      if (!this.pids.has(id.pid) && !isAlive(id)) return;
      if (Date.now() > deadline) throw new Error(`process ${id.pid} did not exit within ${timeoutMs} ms`);
      await sleep(delay);
    }
  }
}

/**
 * Reaps this server's zombie children that lived in a PID namespace below
 * its own: processes of a pod whose parent died before them and that the
 * kernel gave to the server (the nearest subreaper), such as a container
 * init whose monitor was killed before it reported the init's pid. The
 * runtime's own children all live in the server's PID namespace, so its
 * bookkeeping is untouched.
 */
function reapPodOrphans(): void {
  for (const child of ownChildren()) reapPodOrphan(child);
}

/** Reaps the child `pid` if it is such an orphan, a zombie; whether it did. */
function reapPodOrphan(pid: number): boolean {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return false; // gone
  }
  const nspids = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
  if (!/^State:\s*Z/m.test(status) || nspids.length < 2) return false;
  try {
    return libc().waitpid(pid, WNOHANG).pid === pid;
  } catch {
    return false; // reaped meanwhile
  }
}

/** The pids of this process's children, from every thread's /proc children list. */
function ownChildren(): number[] {
  const out: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.push(...readFileSync(`/proc/self/task/${tid}/children`, 'latin1').split(' ').filter(Boolean).map(Number));
    } catch {
      // thread gone
    }
  }
  return out;
}
