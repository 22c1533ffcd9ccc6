// RecordStore.removeFiles on real mounts: a plain directory goes without a
// scan of the mount table; a mount anywhere below (a directory or file bound
// from elsewhere, a tmpfs, the directory itself mounted over by a tmpfs or a
// bound directory) is unmounted first, and nothing of what was mounted there
// is deleted. On a full disk a record write fails whole; a record that
// cannot be read for another reason than its absence is not dropped.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { libc, loadLibc } from '../../src/ffi/index.js';
import { MS_BIND } from '../../src/ffi/constants.js';
import { bindFile, mountsUnder, unmount } from '../../src/linux/mount.js';
import { RecordStore } from '../../src/util/records.js';
import { removeFlat, writeJsonAtomic } from '../../src/util/fs.js';
import { quietLog } from '../support/stream-fakes.js';
import { unmountAndRemove } from '../support/mounts.js';

const isRoot = process.getuid?.() === 0;
let base: string;

beforeAll(async () => {
  await loadLibc();
});

afterEach(() => unmountAndRemove(base));

/** A store over <base>/state and the files of record `id` in it, plus a directory outside it. */
function setUp(id: string) {
  base = mkdtempSync(join(tmpdir(), 'peapod-records-'));
  const store = new RecordStore<{ id: string }>(join(base, 'state'), join(base, 'state'), 'things', (r) => r);
  store.save({ id });
  const dir = store.runtimeDir(id);
  writeFileSync(join(dir, 'spec'), 'x');
  mkdirSync(join(dir, 'rootfs'));
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'keep'), 'precious');
  return { store, dir, outside };
}

describe.skipIf(!isRoot)('RecordStore.removeFiles', () => {
  it('removes a directory of plain files and empty directories', async () => {
    const { store, dir } = setUp('plain');
    await store.removeFiles('plain');
    expect(existsSync(dir)).toBe(false);
  });

  it('unmounts what is mounted below (bound directory, bound file, tmpfs, nested) and deletes nothing of it', async () => {
    const { store, dir, outside } = setUp('mounted');
    mkdirSync(join(dir, 'ns'));
    bindFile(join(outside, 'keep'), join(dir, 'ns', 'net'));
    libc().mount(outside, join(dir, 'rootfs'), null, MS_BIND, null);
    mkdirSync(join(dir, 'shm'));
    execFileSync('mount', ['-t', 'tmpfs', 'shm', join(dir, 'shm')]);
    mkdirSync(join(dir, 'shm', 'deeper'));
    libc().mount(outside, join(dir, 'shm', 'deeper'), null, MS_BIND, null);
    expect(mountsUnder(dir).length).toBe(4);
    await store.removeFiles('mounted');
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('precious');
  });

  it('unmounts a tmpfs mounted over the directory itself', async () => {
    const { store, dir } = setUp('over');
    execFileSync('mount', ['-t', 'tmpfs', 'over', dir]);
    writeFileSync(join(dir, 'inside'), 'y');
    await store.removeFiles('over');
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('a directory bound from elsewhere over the record directory itself is unmounted, and nothing of its source is deleted', async () => {
    const { store, dir, outside } = setUp('bound-over');
    libc().mount(outside, dir, null, MS_BIND, null);
    expect(removeFlat(dir)).toBe(false);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('precious');
    await store.removeFiles('bound-over');
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('precious');
  });

  it('removeFlat stops at a mount point or a directory with contents, and touches nothing below them', () => {
    const { dir, outside } = setUp('flat');
    libc().mount(outside, join(dir, 'rootfs'), null, MS_BIND, null);
    expect(removeFlat(dir)).toBe(false);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('precious');
    unmount(join(dir, 'rootfs'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'f'), 'z');
    expect(removeFlat(dir)).toBe(false);
    expect(readFileSync(join(dir, 'sub', 'f'), 'utf8')).toBe('z');
    expect(removeFlat(join(dir, 'sub'))).toBe(true);
    expect(removeFlat(dir)).toBe(true);
    expect(existsSync(dir)).toBe(false);
    expect(removeFlat(dir)).toBe(true); // already gone
  });
});

describe.skipIf(!isRoot)('records on a full disk', () => {
  it('a write that does not fit fails and leaves the old record whole, with no temp file', () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-records-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'full', base]);
    const path = join(base, 'record.json');
    writeJsonAtomic(path, { id: 'old' });
    // Fill all but a page: a 6 KB write is cut short at 4 KiB, then fails.
    writeFileSync(join(base, 'fill'), Buffer.alloc(8192));
    expect(() => writeJsonAtomic(path, { id: 'new', pad: 'y'.repeat(6000) })).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ id: 'old' });
    expect(readdirSync(base).sort()).toEqual(['fill', 'record.json']);
  });

  it('loading keeps a record it cannot read for another reason than its absence', async () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-records-'));
    const store = new RecordStore<{ id: string }>(join(base, 'state'), join(base, 'state'), 'things', (r) => r);
    store.save({ id: 'kept' });
    // A directory where the file should be: EISDIR, as an EIO would be.
    rmSync(join(store.recordDir('kept'), 'record.json'));
    mkdirSync(join(store.recordDir('kept'), 'record.json'));
    await expect(store.loadAll(quietLog)).rejects.toMatchObject({ code: 'EISDIR' });
    expect(existsSync(store.recordDir('kept'))).toBe(true);
    // A missing record is a create that died first: dropped.
    rmSync(join(store.recordDir('kept'), 'record.json'), { recursive: true });
    expect(await store.loadAll(quietLog)).toEqual([]);
    expect(existsSync(store.recordDir('kept'))).toBe(false);
  });
});

describe.skipIf(!isRoot)('mountsUnder', () => {
  it('finds the mounts below a path reached through a symlink (the table holds resolved paths)', () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-records-'));
    mkdirSync(join(base, 'real', 'v'), { recursive: true });
    symlinkSync(join(base, 'real'), join(base, 'link'));
    execFileSync('mount', ['-t', 'tmpfs', 'v', join(base, 'real', 'v')]);
    expect(mountsUnder(join(base, 'link'))).toEqual([join(base, 'real', 'v')]);
    expect(mountsUnder(join(base, 'link', 'v'))).toEqual([join(base, 'real', 'v')]);
  });
});
