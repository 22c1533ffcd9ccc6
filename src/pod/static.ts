// Static pods: a manifest directory polled every second, as the kubelet's
// --pod-manifest-path. A file added starts its pods, a changed file recreates
// them, a removed file deletes them. Unreadable or invalid files are logged and
// leave the pods they made before untouched.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { isKind } from '../errors.js';
import type { Logger } from '../log.js';
import type { PodRunner } from './runner.js';

export class StaticPods {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /**
   * file → the last content that was rejected (logged once). Invalid content
   * is not tried again until the file changes; other rejections (a name
   * taken by another pod) are retried at every scan.
   */
  private readonly bad = new Map<string, { hash: string; retry: boolean }>();

  constructor(
    private readonly dir: string,
    private readonly pods: PodRunner,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {
    this.dir = resolve(dir);
  }

  start(): void {
    const run = async () => {
      try {
        await this.scan();
      } catch (err) {
        this.log.warn('static pod scan failed', { dir: this.dir, err });
      }
      if (!this.stopped) this.timer = setTimeout(run, this.intervalMs);
    };
    void run();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  async scan(): Promise<void> {
    // A missing directory holds no manifests; any other error says nothing about them (the scan fails, no pod goes).
    const names = await fsp.readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const present = new Map<string, { text: string; hash: string }>();
    for (const n of names.sort()) {
      // As the kubelet's file source: every regular file whose name does not start with a dot, whatever its extension.
      if (n.startsWith('.')) continue;
      const path = join(this.dir, n);
      try {
        const st = await fsp.stat(path);
        if (!st.isFile()) continue;
        const text = await fsp.readFile(path, 'utf8');
        present.set(path, { text, hash: createHash('sha256').update(text).digest('hex') });
      } catch {
        // gone between readdir and read: handled as removed next time
      }
    }
    // Removed files.
    for (const source of this.pods.sources()) {
      if (!source.startsWith('file:')) continue;
      const path = source.slice(5);
      if (!path.startsWith(this.dir + '/') || present.has(path)) continue;
      await this.deleteFrom(source, 'removed');
    }
    for (const [path, { text, hash }] of present) {
      const source = `file:${path}`;
      const mine = this.pods.bySource(source);
      if (mine.length > 0 && mine.every((p) => p.hash === hash)) continue;
      const rejected = this.bad.get(path);
      if (rejected?.hash === hash && !rejected.retry) continue;
      if (mine.length > 0) {
        await this.deleteFrom(source, 'changed');
        // That took a grace period: a file removed or changed meanwhile is the next scan's.
        if ((await fsp.readFile(path, 'utf8').catch(() => undefined)) !== text) continue;
      }
      try {
        const recs = await this.pods.apply(text, source);
        this.bad.delete(path);
        this.log.info('static pods started', { file: path, pods: recs.map((r) => `${r.spec.namespace}/${r.spec.name}`) });
      } catch (err) {
        if (rejected?.hash !== hash) this.log.warn('static pod manifest rejected', { file: path, err: (err as Error).message });
        this.bad.set(path, { hash, retry: !isKind(err, 'InvalidArgument') });
      }
    }
  }

  private async deleteFrom(source: string, why: string): Promise<void> {
    for (const p of this.pods.bySource(source)) {
      this.log.info(`static pod manifest ${why}: deleting its pod`, { file: source.slice(5), pod: `${p.namespace}/${p.name}` });
      await this.pods.delete(p.namespace, p.name, -1, false).catch((err) => this.log.warn('deleting a static pod failed', { err }));
    }
  }
}
