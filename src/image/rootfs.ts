// Container root filesystems from the layer cache.
//
// Normal case: an overlay mount spec, mounted later by the native launcher inside
// the container's mount namespace:
//   mount -t overlay overlay -o lowerdir=<top>:…:<bottom>,upperdir=<u>,workdir=<w> <target>
// Fallback where overlayfs is unavailable: a full copy of the merged layers.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { LayerCache } from './layers.js';
import { isWhiteoutStat } from './unpack.js';
import { BoundedCache } from '../util/cache.js';

const execFileP = promisify(execFile);

export interface OverlaySpec {
  type: 'overlay';
  /** Layer dirs, top (last) layer first — overlayfs' lowerdir order. */
  lowerdir: string[];
  upperdir: string;
  workdir: string;
}

export interface CopySpec {
  type: 'copy';
  /** A plain directory holding the merged layers (no overlayfs on this host). */
  rootfs: string;
}

export type RootfsSpec = OverlaySpec | CopySpec;

let overlayCached: boolean | undefined;

/** Whether the kernel offers overlayfs (per /proc/filesystems). */
export function overlayAvailable(): boolean {
  if (overlayCached === undefined) {
    try {
      overlayCached = /\boverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'));
    } catch {
      overlayCached = false;
    }
  }
  return overlayCached;
}

/** The mount(8) option string for a spec. */
export function overlayMountOptions(spec: OverlaySpec): string {
  return `lowerdir=${spec.lowerdir.join(':')},upperdir=${spec.upperdir},workdir=${spec.workdir}`;
}

/**
 * Overlay spec for a stack of chain IDs (bottom first). Creates
 * <containerDir>/upper and <containerDir>/work (same filesystem, as overlayfs wants).
 */
export async function overlaySpec(cache: LayerCache, chainIds: string[], containerDir: string): Promise<OverlaySpec> {
  const lowerdir = chainIds.length ? [...chainIds].reverse().map((c) => cache.fsPath(c)) : [await cache.emptyLayer()];
  for (const l of lowerdir) if (l.includes(':') || l.includes(',')) throw new Error(`layer path ${l} contains ':' or ','`);
  const upperdir = path.join(containerDir, 'upper');
  const workdir = path.join(containerDir, 'work');
  // Synchronous: two mkdirs cost less than two trips through the thread pool.
  fs.mkdirSync(upperdir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(workdir, { recursive: true, mode: 0o700 });
  return { type: 'overlay', lowerdir, upperdir, workdir };
}

/**
 * Makes the upper dir hold exactly the files that bind mounts will cover (the
 * pod's /etc/hosts, …) where the image has none: a plain create there, where
 * the launcher would otherwise make overlayfs copy /etc up and create them
 * through it, several inodes and xattrs each. Only for files straight under a
 * directory that is a plain directory in the image's top layer having it (the
 * upper one gets its mode and owner), and only when no layer has the file at
 * all (else the launcher deals with it, inside the mounted root). `premade`
 * are targets a spare layer already holds (SpareLayers): those not wanted go.
 */
export function precreateMountTargets(spec: OverlaySpec, targets: string[], premade: string[] = []): void {
  const byDir = new Map<string, Set<string>>();
  const wanted = new Set(targets);
  for (const t of [...targets, ...premade]) {
    const dir = path.posix.dirname(t).slice(1);
    if (!dir || dir.includes('/')) continue;
    if (!byDir.has(dir)) byDir.set(dir, new Set());
    if (wanted.has(t)) byDir.get(dir)!.add(path.posix.basename(t));
  }
  for (const [dir, names] of byDir) {
    const st = topEntry(spec.lowerdir, dir);
    const upper = path.join(spec.upperdir, dir);
    // A symlink, a whiteout, a file in the image: not ours to shadow with a directory.
    const missing = st && !st.isDirectory() ? [] : [...names].filter((n) => topEntry(spec.lowerdir, path.join(dir, n)) === undefined);
    if (missing.length === 0) {
      fs.rmSync(upper, { recursive: true, force: true });
      continue;
    }
    fs.mkdirSync(upper, { recursive: true });
    fs.chmodSync(upper, st ? st.mode & 0o7777 : 0o755); // whatever the umask
    fs.chownSync(upper, st?.uid ?? 0, st?.gid ?? 0);
    for (const n of fs.readdirSync(upper)) if (!missing.includes(n)) fs.rmSync(path.join(upper, n), { recursive: true, force: true });
    for (const n of missing) fs.closeSync(fs.openSync(path.join(upper, n), fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o644));
  }
}

/** topEntry's answers: unpacked layers never change, and every create of an image asks the same. */
const topEntries = new BoundedCache<fs.Stats | undefined>(256);

/** What the topmost layer having `rel` has there (undefined: no layer has it). */
function topEntry(layersTopFirst: string[], rel: string): fs.Stats | undefined {
  return topEntries.get(layersTopFirst.join(':') + '\0' + rel, () => {
    for (const l of layersTopFirst) {
      const st = fs.lstatSync(path.join(l, rel), { throwIfNoEntry: false });
      if (st) return st;
    }
    return undefined;
  });
}

/**
 * Copies the merged layers into `dest` (which must be empty or absent), applying
 * whiteouts and opaque directories as overlayfs would. Uses `cp -a`, which keeps
 * owners, modes, times, hardlinks within a layer, devices and xattrs.
 */
export async function copyRootfs(cache: LayerCache, chainIds: string[], dest: string): Promise<void> {
  await fsp.mkdir(dest, { recursive: true, mode: 0o755 });
  for (const chainId of chainIds) {
    const src = cache.fsPath(chainId);
    const opaque = new Set(cache.meta(chainId)?.opaqueDirs ?? []);
    const whiteouts: string[] = [];
    // 1. apply this layer's whiteouts and opaque dirs to what is below.
    const walk = async (rel: string): Promise<void> => {
      const abs = path.join(src, rel);
      if (opaque.has(rel)) {
        const target = path.join(dest, rel);
        for (const n of await fsp.readdir(target).catch(() => [] as string[])) await fsp.rm(path.join(target, n), { recursive: true, force: true });
      }
      for (const d of await fsp.readdir(abs, { withFileTypes: true })) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        const st = await fsp.lstat(path.join(src, r));
        if (isWhiteoutStat(st)) {
          whiteouts.push(r);
          await fsp.rm(path.join(dest, r), { recursive: true, force: true });
        } else if (st.isDirectory()) {
          // a non-directory below is replaced by this directory
          const below = await fsp.lstat(path.join(dest, r)).catch(() => undefined);
          if (below && !below.isDirectory()) await fsp.rm(path.join(dest, r), { force: true });
          await walk(r);
        } else {
          // remove whatever is below (cp would write through a symlink there)
          await fsp.rm(path.join(dest, r), { recursive: true, force: true });
        }
      }
    };
    await walk('');
    // 2. copy the layer over it, 3. drop the whiteout devices that came along.
    await execFileP('cp', ['-a', '--no-dereference', `${src}/.`, `${dest}/`]);
    for (const w of whiteouts) await fsp.rm(path.join(dest, w), { force: true });
  }
}
