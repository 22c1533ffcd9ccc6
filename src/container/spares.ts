import { renameSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spreadSubdirectories } from '../linux/fsflags.js';
import type { Logger } from '../log.js';
import { newId } from '../util/ids.js';

/** What a spare writable layer holds: the overlay's dirs and the usual pod-file targets. */
export const SPARE_TARGETS = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

/**
 * Writable layers made ahead of time, image-agnostic: `upper` (with empty
 * pod-file targets under `upper/etc`, see precreateMountTargets) and `work`,
 * in `<root>/spare-layers/<n>`. A create takes one with a rename instead of
 * making six inodes while the client waits (on ext4 without a journal each
 * costs a scan of the recently deleted ones, ~0.3 ms here), and a new one is
 * made in the thread pool, off the main thread. Spares left by an earlier
 * server are thrown away at load: no record says how far they got.
 */
export class SpareLayers {
  private readonly dir: string;
  private readonly ready: string[] = [];
  private filling = false;

  constructor(
    root: string,
    private readonly log: Logger,
    private readonly want = 2,
  ) {
    this.dir = join(root, 'spare-layers');
  }

  async load(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
    spreadSubdirectories(this.dir);
    this.fill();
  }

  /** Moves a spare to `dest` (which must not exist); false when none is ready (or it vanished). */
  take(dest: string): boolean {
    const spare = this.ready.pop();
    let taken = false;
    if (spare !== undefined) {
      try {
        renameSync(spare, dest);
        taken = true;
      } catch (err) {
        // Gone under us (removed by hand, say): the others likely too; make new ones.
        this.log.warn('a spare writable layer could not be taken', { spare, err });
        this.ready.length = 0;
      }
    }
    this.fill();
    return taken;
  }

  private fill(): void {
    if (this.filling || this.ready.length >= this.want) return;
    this.filling = true;
    void (async () => {
      while (this.ready.length < this.want) {
        const d = join(this.dir, newId().slice(0, 16));
        await mkdir(join(d, 'work'), { recursive: true, mode: 0o700 });
        await mkdir(join(d, 'upper', 'etc'), { recursive: true, mode: 0o755 });
        await Promise.all(SPARE_TARGETS.map((t) => writeFile(join(d, 'upper', t), '', { flag: 'wx', mode: 0o644 })));
        this.ready.push(d);
      }
    })()
      .catch((err) => this.log.warn('could not make a spare writable layer', { err }))
      .finally(() => {
        this.filling = false;
      });
  }
}
