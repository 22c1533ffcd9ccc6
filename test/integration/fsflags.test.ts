// chattr +T through FFI (src/linux/fsflags.ts), checked with lsattr: set on
// an ext4 directory, refused without harm where the flag does not exist.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLibc } from '../../src/ffi/index.js';
import { spreadSubdirectories } from '../../src/linux/fsflags.js';

const EXT4_SUPER_MAGIC = 0xef53;
const TMPFS_MAGIC = 0x01021994;
const dirs: string[] = [];
const newDir = (parent: string) => {
  const d = mkdtempSync(join(parent, 'peapod-fsflags-'));
  dirs.push(d);
  return d;
};
const attrs = (dir: string) => execFileSync('lsattr', ['-d', dir], { encoding: 'utf8' }).split(' ')[0]!;

beforeAll(async () => {
  await loadLibc();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('spreadSubdirectories (chattr +T)', () => {
  it.skipIf(statfsSync('/var/tmp').type !== EXT4_SUPER_MAGIC)('sets the top-directory flag on ext4, keeping the others', () => {
    const d = newDir('/var/tmp');
    expect(attrs(d)).not.toContain('T');
    const before = attrs(d).replace(/-/g, '');
    expect(spreadSubdirectories(d)).toBe(true);
    expect(attrs(d)).toContain('T');
    expect(attrs(d).replace(/[-T]/g, '')).toBe(before);
  });

  it.skipIf(statfsSync('/dev/shm').type !== TMPFS_MAGIC)('returns false on tmpfs, which has no such flag', () => {
    expect(spreadSubdirectories(newDir('/dev/shm'))).toBe(false);
  });
});
