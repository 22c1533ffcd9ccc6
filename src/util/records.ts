import { mkdirSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { mountsUnder, unmount } from '../linux/mount.js';
import { removeAtomicLeftovers, removeFlat, writeJsonAtomic } from './fs.js';

/**
 * Records of one kind of object (sandboxes, containers): the record at
 * <root>/<kind>/<id>/record.json, written atomically, and the object's
 * runtime files (pins, sockets, exit status) under <state>/<kind>/<id>.
 */
export class RecordStore<T extends { id: string }> {
  constructor(
    private readonly root: string,
    private readonly state: string,
    private readonly kind: string,
    /** Rebuilds what JSON flattened (bigint times are stored as strings). */
    private readonly revive: (raw: any) => T,
  ) {}

  recordDir(id: string): string {
    return join(this.root, this.kind, id);
  }

  runtimeDir(id: string): string {
    return join(this.state, this.kind, id);
  }

  /**
   * Not fsync'd: a record matters within one boot (after a reboot every
   * process is gone and the runtime dir with it), and a torn record is
   * dropped at load like one never written.
   */
  save(rec: T): void {
    mkdirSync(this.recordDir(rec.id), { recursive: true });
    writeJsonAtomic(join(this.recordDir(rec.id), 'record.json'), rec);
  }

  async loadAll(log: Logger): Promise<T[]> {
    await fsp.mkdir(join(this.root, this.kind), { recursive: true });
    await fsp.mkdir(join(this.state, this.kind), { recursive: true });
    const out: T[] = [];
    for (const id of await fsp.readdir(join(this.root, this.kind))) {
      await removeAtomicLeftovers(this.recordDir(id));
      try {
        out.push(this.revive(JSON.parse(await fsp.readFile(join(this.recordDir(id), 'record.json'), 'utf8'))));
      } catch (err) {
        // Another read error (EIO, EMFILE...) says nothing about the record: keep the pod's files.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== undefined && code !== 'ENOENT') throw err;
        // No record: the create died before it wrote one, so it started nothing either.
        log.warn(`dropping ${this.kind} directory without a record`, { id, err });
        await this.removeFiles(id);
      }
    }
    // Runtime dirs with no record at all: nothing references them.
    const known = new Set(out.map((r) => r.id));
    for (const id of await fsp.readdir(join(this.state, this.kind))) {
      if (!known.has(id)) await this.removeFiles(id);
    }
    return out;
  }

  /**
   * Removes both directories, unmounting whatever is still mounted below
   * them first. Plain ones go without a read of the host's mount table
   * (which grows with every pod).
   */
  async removeFiles(id: string): Promise<void> {
    for (const dir of new Set([this.runtimeDir(id), this.recordDir(id)])) {
      if (removeFlat(dir)) continue;
      for (const mp of mountsUnder(dir).reverse()) unmount(mp);
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
}
