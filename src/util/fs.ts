import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmdirSync, rmSync, unlinkSync, writeSync, promises as fsp, type Dirent } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { isMountPoint } from '../linux/mount.js';

let tempSeq = 0;

/**
 * Writes a small file so that readers see the old or the new content, never
 * a mix: temp file in the same directory, rename over the old one. `durable`
 * adds the fsyncs that make it survive a machine crash too (a process crash
 * needs none). Synchronous on purpose: records are a few KiB, and a sync write
 * costs microseconds where a thread-pool round trip per step costs more.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number; durable?: boolean } = {}): void {
  const { mode = 0o600, durable = false } = opts;
  // Unique among writers: another process has another pid, this one counts.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${++tempSeq}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      // A full disk makes a write short first and fails the next one: never rename a part.
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  if (durable) {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}

export function writeJsonAtomic(path: string, value: unknown, durable = false): void {
  writeFileAtomic(path, JSON.stringify(value, bigintReplacer, 2) + '\n', { durable });
}

/** bigint values (nanosecond times) are stored as decimal strings. */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** Removes temp files left by an interrupted writeFileAtomic in `dir`. */
export async function removeAtomicLeftovers(dir: string): Promise<void> {
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith('.') && name.endsWith('.tmp')) await fsp.rm(join(dir, name), { force: true });
  }
}

/**
 * Removes `dir` when it holds only files and empty directories; true once it
 * is gone. It never descends, and unlink and rmdir refuse a mount point, so
 * nothing below a mount is touched; a dir that is itself mounted over (what
 * it lists is the mounted file system's) is left whole. On anything else it
 * stops (part of dir removed) and returns false.
 */
export function removeFlat(dir: string): boolean {
  let entries: Dirent[];
  try {
    if (isMountPoint(dir)) return false;
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    return (err as { code?: string }).code === 'ENOENT';
  }
  try {
    for (const e of entries) (e.isDirectory() ? rmdirSync : unlinkSync)(join(dir, e.name));
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}
