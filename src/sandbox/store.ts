import { mkdirSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { mountsUnder, unmount } from '../linux/mount.js';
import { removeAtomicLeftovers, writeJsonAtomic } from '../util/fs.js';
import type { Sandbox } from './types.js';

/**
 * Sandbox records on disk: <root>/sandboxes/<id>/sandbox.json, written
 * atomically, and runtime files (pinned namespaces) under <state>/sandboxes/<id>.
 */
export class SandboxStore {
  constructor(
    private readonly root: string,
    private readonly state: string,
  ) {}

  recordDir(id: string): string {
    return join(this.root, 'sandboxes', id);
  }

  runtimeDir(id: string): string {
    return join(this.state, 'sandboxes', id);
  }

  /**
   * Not fsync'd: a record only matters within one boot (after a reboot every
   * pause is gone and the pins lived in the state dir), and a torn record is
   * dropped at load like one never written.
   */
  save(sb: Sandbox): void {
    mkdirSync(this.recordDir(sb.id), { recursive: true });
    writeJsonAtomic(join(this.recordDir(sb.id), 'sandbox.json'), sb);
  }

  async loadAll(log: Logger): Promise<Sandbox[]> {
    const dir = join(this.root, 'sandboxes');
    await fsp.mkdir(dir, { recursive: true });
    const out: Sandbox[] = [];
    for (const id of await fsp.readdir(dir)) {
      await removeAtomicLeftovers(this.recordDir(id));
      try {
        const raw = JSON.parse(await fsp.readFile(join(this.recordDir(id), 'sandbox.json'), 'utf8'));
        out.push({ ...raw, createdAt: BigInt(raw.createdAt) });
      } catch (err) {
        // No readable record: a RunPodSandbox died before it wrote one, so it
        // started nothing either.
        log.warn('dropping sandbox directory without a record', { id, err });
        await this.removeFiles(id);
      }
    }
    return out;
  }

  /** Removes both directories, unmounting whatever is still mounted below them first. */
  async removeFiles(id: string): Promise<void> {
    for (const mp of mountsUnder(this.runtimeDir(id)).reverse()) unmount(mp);
    await fsp.rm(this.runtimeDir(id), { recursive: true, force: true });
    await fsp.rm(this.recordDir(id), { recursive: true, force: true });
  }
}
