import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isSyscallError, libc, O_CLOEXEC, O_NONBLOCK, O_WRONLY, S_IFIFO, SIGKILL, WNOHANG } from '../ffi/index.js';
import type { Helpers, SpawnedHelper } from '../linux/helpers.js';
import { identify, type ProcessIdentity } from '../linux/proc.js';
import type { Reaper } from '../linux/reaper.js';
import type { Logger } from '../log.js';
import { sleep } from '../util/time.js';

interface Spare {
  /** Read at spawn, off the create's path: a child's /proc entry stays until it is reaped. */
  identity: ProcessIdentity;
  fifo: string;
}

/** A spare let out of open(): it waits for its container in read(). */
export interface TakenSpare {
  identity: ProcessIdentity;
  fd: number;
}

/**
 * Container monitors started ahead (`peapod-monitor --wait FIFO`): each
 * sleeps in open() on its FIFO until a create writes it the container's key,
 * spec and dir. A create then costs a write instead of a posix_spawn and an
 * exec while the client waits, and records the spare as its monitor before
 * handing it the container (so a server that dies in between knows whom to
 * kill). The monitor joins the pod's namespaces itself (from the spec), so
 * nothing about a spare depends on the pod. Refilled by the caller at a
 * moment of its choosing (fill), off the create's path.
 */
export class SpareMonitors {
  private readonly ready: Spare[] = [];
  private seq = 0;

  constructor(
    /** <state>/spare-monitors: the FIFOs and the spares' own log. */
    private readonly dir: string,
    private readonly binary: string,
    private readonly helpers: Helpers,
    private readonly reaper: Reaper,
    private readonly log: Logger,
    private readonly want = 2,
  ) {}

  /** Dismisses the spares an earlier server left, then starts new ones. */
  load(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.dir)) if (name.endsWith('.fifo')) dismiss(join(this.dir, name));
    this.fill();
  }

  /** Starts spares until `want` wait. */
  fill(): void {
    while (this.ready.length < this.want) {
      const fifo = join(this.dir, `${process.pid}-${++this.seq}.fifo`);
      try {
        libc().mknod(fifo, S_IFIFO | 0o600, 0);
        const pid = this.helpers.start(this.binary, ['--wait', fifo], { stderr: join(this.dir, 'spares.log') });
        this.ready.push({ identity: identify(pid)!, fifo });
      } catch (err) {
        rmSync(fifo, { force: true });
        this.log.warn('could not start a spare container monitor', { err });
        return;
      }
    }
  }

  /**
   * A spare that is waiting, with its FIFO open for writing (which lets it
   * out of open() into read()); undefined when none is waiting yet. Then
   * hand() it a container, or release() it.
   */
  take(): TakenSpare | undefined {
    for (let tries = this.ready.length; tries > 0; tries--) {
      const spare = this.ready.shift()!;
      let fd: number;
      try {
        // Succeeds only while the spare sits in open() for reading.
        fd = libc().open(spare.fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      } catch (err) {
        if (exited(spare.identity.pid)) {
          rmSync(spare.fifo, { force: true });
        } else if (isSyscallError(err, 'ENXIO')) {
          this.ready.push(spare); // still starting: a later create may have it
        } else {
          // Its FIFO gone (removed by hand, say): it would wait for ever.
          this.log.warn('a spare container monitor could not be reached; killed', { pid: spare.identity.pid, err });
          libc().kill(spare.identity.pid, SIGKILL);
          this.reaper.watch(spare.identity.pid);
          rmSync(spare.fifo, { force: true });
        }
        continue;
      }
      // The open succeeded, so the spare holds the other end: alive, and still our unreaped child.
      rmSync(spare.fifo, { force: true });
      return { identity: spare.identity, fd };
    }
    return undefined;
  }

  /** Gives the spare its container: its report comes as from a monitor spawned for it. */
  hand(spare: TakenSpare, key: string, specPath: string, dir: string, stderr: string): SpawnedHelper {
    // One write into the empty pipe (64 KiB): all of it or an error.
    const claim = Buffer.from(`${key}\0${specPath}\0${dir}\0`);
    let written = -1;
    try {
      written = libc().write(spare.fd, claim);
    } finally {
      libc().close(spare.fd);
      spare.fd = -1;
      // Cut short, the spare refuses the claim and exits: reap it.
      if (written !== claim.length) this.reaper.watch(spare.identity.pid);
    }
    if (written !== claim.length) throw new Error(`short write to spare monitor ${spare.identity.pid}`);
    return this.helpers.expect(spare.identity.pid, key, { name: 'peapod-monitor', stderr });
  }

  /** Lets a taken spare go unused (it reads nothing and exits); nothing once it was handed a container. */
  release(spare: TakenSpare): void {
    if (spare.fd < 0) return;
    libc().close(spare.fd);
    spare.fd = -1;
    this.reaper.watch(spare.identity.pid);
  }

  /** Dismisses every spare (each exits on its empty claim) and reaps them. */
  async close(): Promise<void> {
    for (const spare of this.ready.splice(0)) {
      dismiss(spare.fifo);
      // A spare still in its exec has not opened the FIFO (gone now): it exits on ENOENT.
      for (let i = 0; i < 200 && !exited(spare.identity.pid); i++) await sleep(5);
    }
  }
}

/** Opens and closes a spare's FIFO unwritten (the spare reads nothing and exits 0) and removes it. */
function dismiss(fifo: string): void {
  try {
    libc().close(libc().open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  } catch (err) {
    if (!isSyscallError(err, 'ENXIO') && !isSyscallError(err, 'ENOENT')) throw err;
  }
  rmSync(fifo, { force: true });
}

/** Reaps the spare if it has exited. */
function exited(pid: number): boolean {
  try {
    return libc().waitpid(pid, WNOHANG).pid === pid;
  } catch (err) {
    if (isSyscallError(err, 'ECHILD')) return true;
    throw err;
  }
}
