import { promises as fsp, constants as fsc } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes a file so that readers see the old or the new content, never a mix:
 * temp file in the same directory, rename over the old one. `durable` adds the
 * fsyncs that make it survive a machine crash too (a process crash needs none).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: { mode?: number; durable?: boolean } = {},
): Promise<void> {
  const { mode = 0o600, durable = true } = opts;
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  if (!durable) return;
  const dir = await fsp.open(dirname(path), fsc.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function writeJsonAtomic(path: string, value: unknown, durable = true): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, bigintReplacer, 2) + '\n', { durable });
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

export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch {
    return false;
  }
}
