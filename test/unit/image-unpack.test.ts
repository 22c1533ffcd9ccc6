import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unpackLayer, type LowerLayer } from '../../src/image/unpack.js';
import { PeapodError } from '../../src/errors.js';
import { chunks, gzip, makeTar, MTIME, tmpDir, type TarEntry } from '../support/image-tar.js';

const isRoot = process.getuid?.() === 0;
let work: string;
let dest: string;
let outside: string;

beforeEach(() => {
  work = tmpDir();
  dest = path.join(work, 'layer');
  outside = path.join(work, 'outside');
  fs.mkdirSync(dest);
  fs.mkdirSync(outside);
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

async function unpack(entries: TarEntry[], opts: Parameters<typeof unpackLayer>[2] = {}) {
  const t = await makeTar(entries);
  return unpackLayer(chunks(t), dest, { label: 'layer test', ...opts });
}

async function expectBad(entries: TarEntry[], re: RegExp) {
  const before = fs.readdirSync(work).sort();
  let err: unknown;
  try {
    await unpack(entries);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PeapodError);
  expect((err as PeapodError).kind).toBe('InvalidArgument');
  expect((err as Error).message).toMatch(re);
  // Nothing was created outside the layer dir.
  expect(fs.readdirSync(outside)).toEqual([]);
  expect(fs.readdirSync(work).sort()).toEqual(before);
}

describe('unpackLayer: contents and metadata', () => {
  it('files, dirs, symlinks, hardlinks, modes, owners, mtimes; diffId = sha256 of the tar', async () => {
    const entries: TarEntry[] = [
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/tool', content: 'TOOL', mode: 0o4755, uid: 0, gid: 0 },
      { name: 'bin/sg', content: 'SG', mode: 0o2711, uid: 1000, gid: 50 },
      { name: 'bin/link', type: 'link', linkname: 'bin/tool' },
      { name: 'bin/sym', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
      { name: 'home/u/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 },
      { name: 'home/u/f', content: 'x', mode: 0o600, uid: 1000, gid: 1000 },
      { name: './ro/', type: 'directory', mode: 0o555 },
      { name: 'ro/f', content: 'in a read-only dir', mode: 0o444 },
    ];
    const t = await makeTar(entries);
    const r = await unpackLayer(chunks(gzip(t)), dest, {});
    expect(r.diffId).toBe(`sha256:${createHash('sha256').update(t).digest('hex')}`);
    expect(r.compression).toBe('gzip');
    const st = (p: string) => fs.lstatSync(path.join(dest, p));
    expect(fs.readFileSync(path.join(dest, 'bin/tool'), 'utf8')).toBe('TOOL');
    expect(st('bin/tool').mode & 0o7777).toBe(0o4755);
    expect(st('bin/link').ino).toBe(st('bin/tool').ino);
    expect(fs.readlinkSync(path.join(dest, 'bin/sym'))).toBe('/etc/passwd');
    expect(st('tmp').mode & 0o7777).toBe(0o1777);
    expect(st('ro').mode & 0o7777).toBe(0o555);
    expect(st('ro/f').mode & 0o7777).toBe(0o444);
    expect(st('home/u').mode & 0o7777).toBe(0o700);
    expect(st('bin/tool').mtimeMs).toBe(MTIME.getTime());
    expect(st('bin').mtimeMs).toBe(MTIME.getTime()); // dir mtime fixed after content
    expect(st('bin/sym').mtimeMs).toBe(MTIME.getTime());
    if (isRoot) {
      expect(st('bin/sg').mode & 0o7777).toBe(0o2711); // setgid kept after chown
      expect([st('bin/sg').uid, st('bin/sg').gid]).toEqual([1000, 50]);
      expect([st('home/u/f').uid, st('home/u/f').gid]).toEqual([1000, 1000]);
    }
  });

  it('PAX uid/gid records override the ustar fields (Go writes IDs > 2097151 only there)', async () => {
    if (!isRoot) return;
    await unpack([
      { name: 'd/', type: 'directory', pax: { uid: '3000002', gid: '3000003' } },
      { name: 'd/f', content: 'x', uid: 0, gid: 0, mode: 0o4755, pax: { uid: '3000000', gid: '3000001' } },
      { name: 'd/s', type: 'symlink', linkname: 'f', uid: 5, gid: 6, pax: { uid: '4294967294' } },
    ]);
    const st = (p: string) => fs.lstatSync(path.join(dest, p));
    expect([st('d/f').uid, st('d/f').gid]).toEqual([3000000, 3000001]);
    expect(st('d/f').mode & 0o7777).toBe(0o4755);
    expect([st('d').uid, st('d').gid]).toEqual([3000002, 3000003]);
    expect([st('d/s').uid, st('d/s').gid]).toEqual([4294967294, 6]);
  });

  it('refuses malformed PAX uid/gid records (like Go\'s archive/tar)', async () => {
    // 4294967295 is (uid_t)-1: chown would leave the owner unchanged (root).
    for (const bad of ['-1', 'abc', '', '4294967295', '99999999999', '1e3', '0x10']) {
      await expectBad([{ name: 'f', content: 'x', pax: { uid: bad } }], /entry "f": invalid PAX uid/);
    }
    await expectBad([{ name: 'f', content: 'x', pax: { gid: '12 ' } }], /entry "f": invalid PAX gid/);
  });

  it('device nodes and fifos (as root); skipped with a record when not root', async () => {
    const entries: TarEntry[] = [
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/fifo', type: 'fifo', mode: 0o640 },
    ];
    if (isRoot) {
      const r = await unpack(entries);
      const st = fs.lstatSync(path.join(dest, 'dev/null'));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(0x103);
      expect(st.mode & 0o7777).toBe(0o666);
      expect(fs.lstatSync(path.join(dest, 'dev/fifo')).isFIFO()).toBe(true);
      expect(r.skippedDevices).toEqual([]);
    }
    fs.rmSync(dest, { recursive: true });
    fs.mkdirSync(dest);
    const r2 = await unpack(entries, { isRoot: false });
    expect(r2.skippedDevices).toEqual(['dev/null']);
    expect(fs.existsSync(path.join(dest, 'dev/null'))).toBe(false);
  });

  it('records security.capability from PAX SCHILY.xattr (binary-safe) when no setxattr', async () => {
    // VFS_CAP_REVISION_2, CAP_NET_BIND_SERVICE (bit 10) permitted+effective
    const cap = Buffer.from('0100000200040000000000000000000000000000', 'hex');
    const r = await unpack([{ name: 'bin/ping', content: 'p', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': cap.toString('latin1') } }]);
    expect(r.unappliedXattrs).toHaveLength(1);
    expect(r.unappliedXattrs[0]!.path).toBe('bin/ping');
    expect(r.unappliedXattrs[0]!.name).toBe('security.capability');
    expect(Buffer.from(r.unappliedXattrs[0]!.value, 'base64').equals(cap)).toBe(true);
  });

  it('keeps non-UTF-8 xattr bytes intact (tar-stream decodes PAX as UTF-8; we keep the raw bytes)', async () => {
    // CAP_SETUID (bit 7) + CAP_NET_BIND_SERVICE (bit 10): byte 0x80 is not valid UTF-8 alone.
    const cap = Buffer.from('0100000280040000800400000000000000000000', 'hex');
    const placeholder = 'Q'.repeat(cap.length);
    const t = await makeTar([{ name: 'bin/su', content: 's', mode: 0o4755, pax: { 'SCHILY.xattr.security.capability': placeholder } }]);
    const at = t.indexOf(Buffer.from(placeholder));
    expect(at).toBeGreaterThan(0);
    cap.copy(t, at);
    const r = await unpackLayer(chunks(t), dest, {});
    expect(r.unappliedXattrs.map((x) => [x.path, x.name])).toEqual([['bin/su', 'security.capability']]);
    expect(Buffer.from(r.unappliedXattrs[0]!.value, 'base64').toString('hex')).toBe(cap.toString('hex'));
  });

  it('applies xattrs through an injected setxattr', async () => {
    const calls: Array<[string, string, string]> = [];
    await unpack([{ name: 'f', content: 'x', pax: { 'SCHILY.xattr.user.k': 'v' } }], {
      setxattr: (f, n, v) => calls.push([path.relative(dest, f), n, v.toString()]),
    });
    expect(calls).toEqual([['f', 'user.k', 'v']]);
  });
});

describe('unpackLayer: whiteouts', () => {
  it('.wh.NAME becomes a 0/0 char device; opaque dir gets explicit whiteouts of lower names without setxattr', async () => {
    if (!isRoot) return;
    const lower = path.join(work, 'lower');
    fs.mkdirSync(path.join(lower, 'etc/sub'), { recursive: true });
    fs.writeFileSync(path.join(lower, 'etc/a'), 'a');
    fs.writeFileSync(path.join(lower, 'etc/b'), 'b');
    fs.writeFileSync(path.join(lower, 'etc/sub/c'), 'c');
    fs.writeFileSync(path.join(lower, 'gone'), 'g');
    const lowers: LowerLayer[] = [{ fs: lower, opaque: new Set() }];
    const r = await unpack(
      [
        { name: '.wh.gone', content: '' },
        { name: 'etc/', type: 'directory' },
        { name: 'etc/.wh..wh..opq', content: '' },
        { name: 'etc/b', content: 'new b' },
        { name: 'etc/sub/', type: 'directory' },
        { name: 'etc/sub/d', content: 'd' },
      ],
      { lowers },
    );
    const isWh = (p: string) => {
      const st = fs.lstatSync(path.join(dest, p));
      return st.isCharacterDevice() && st.rdev === 0;
    };
    expect(isWh('gone')).toBe(true);
    expect(r.opaqueDirs).toEqual(['etc']);
    expect(r.opaqueXattr).toBe(false);
    expect(isWh('etc/a')).toBe(true); // hidden lower file
    expect(fs.readFileSync(path.join(dest, 'etc/b'), 'utf8')).toBe('new b');
    expect(isWh('etc/sub/c')).toBe(true); // recursion into a dir present on both sides
    expect(fs.existsSync(path.join(dest, 'etc/.wh..wh..opq'))).toBe(false);
  });

  it('implicit parent dirs take their attributes from the lower layers (like a copy-up)', async () => {
    const lower = path.join(work, 'lower');
    fs.mkdirSync(path.join(lower, 'srv/data'), { recursive: true });
    fs.chmodSync(path.join(lower, 'srv/data'), 0o710);
    if (isRoot) fs.chownSync(path.join(lower, 'srv/data'), 33, 33);
    fs.utimesSync(path.join(lower, 'srv/data'), MTIME, MTIME);
    process.umask(0o077);
    try {
      await unpack([{ name: 'srv/data/.wh.old', content: '' }, { name: 'new/dir/f', content: 'x' }], {
        lowers: [{ fs: lower, opaque: new Set() }],
      });
    } finally {
      process.umask(0o022);
    }
    const st = fs.statSync(path.join(dest, 'srv/data'));
    expect(st.mode & 0o7777).toBe(0o710);
    expect(st.mtimeMs).toBe(MTIME.getTime());
    if (isRoot) expect([st.uid, st.gid]).toEqual([33, 33]);
    expect(fs.statSync(path.join(dest, 'new/dir')).mode & 0o7777).toBe(0o755); // not the umask's 0700
  });

  it('many whiteouts (batched); none is created through a parent replaced by a symlink later', async () => {
    if (!isRoot) return;
    const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
    const r = await unpack([
      { name: 'etc/', type: 'directory' },
      ...names.map((n) => ({ name: `etc/.wh.${n}`, content: '' })),
      { name: 'etc/.wh.kept', content: '' },
      { name: 'etc/kept', content: 'this layer has it' },
      { name: 'a/', type: 'directory' },
      { name: 'a/.wh.x', content: '' },
      { name: 'a', type: 'symlink', linkname: outside },
    ]);
    expect(r.entries).toBe(26);
    for (const n of names) {
      const st = fs.lstatSync(path.join(dest, 'etc', n));
      expect(st.isCharacterDevice() && st.rdev === 0, n).toBe(true);
    }
    expect(fs.readFileSync(path.join(dest, 'etc/kept'), 'utf8')).toBe('this layer has it');
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.lstatSync(path.join(dest, 'a')).isSymbolicLink()).toBe(true);
  });

  it('opaque dir with setxattr sets trusted.overlay.opaque=y', async () => {
    const calls: string[] = [];
    await unpack([{ name: 'd/', type: 'directory' }, { name: 'd/.wh..wh..opq', content: '' }], {
      setxattr: (f, n, v) => calls.push(`${path.relative(dest, f)} ${n}=${v.toString()}`),
    });
    expect(calls).toEqual(['d trusted.overlay.opaque=y']);
  });

  it('never marks a path opaque through a dir the layer later replaced by a symlink', async () => {
    fs.mkdirSync(path.join(outside, 'etc'));
    fs.mkdirSync(path.join(work, 'lower/x/etc'), { recursive: true });
    fs.writeFileSync(path.join(work, 'lower/x/etc/f'), 'f');
    const entries: TarEntry[] = [
      { name: 'x/', type: 'directory' },
      { name: 'x/etc/', type: 'directory' },
      { name: 'x/etc/.wh..wh..opq', content: '' },
      { name: 'x', type: 'symlink', linkname: outside },
    ];
    const calls: string[] = [];
    const r = await unpack(entries, { setxattr: (f, n) => calls.push(`${fs.realpathSync(f)} ${n}`) });
    expect(calls).toEqual([]);
    expect(r.opaqueDirs).toEqual([]);
    // Without setxattr (explicit whiteouts of the lowers' names): nothing outside either.
    fs.rmSync(dest, { recursive: true });
    fs.mkdirSync(dest);
    const r2 = await unpack(entries, { lowers: [{ fs: path.join(work, 'lower'), opaque: new Set() }] });
    expect(r2.opaqueDirs).toEqual([]);
    expect(fs.readdirSync(path.join(outside, 'etc'))).toEqual([]);
    expect(fs.lstatSync(path.join(dest, 'x')).isSymbolicLink()).toBe(true);
  });

  it('a dir removed and created again in the same layer loses its opaque marker', async () => {
    const calls: string[] = [];
    const r = await unpack(
      [
        { name: 'd/', type: 'directory' },
        { name: 'd/.wh..wh..opq', content: '' },
        { name: 'e/', type: 'directory' },
        { name: 'e/.wh..wh..opq', content: '' },
        { name: 'd', content: 'now a file' },
        { name: 'd/', type: 'directory' },
      ],
      { setxattr: (f, n) => calls.push(`${path.relative(dest, f)} ${n}`) },
    );
    expect(calls).toEqual(['e trusted.overlay.opaque']);
    expect(r.opaqueDirs).toEqual(['e']);
  });
});

describe('unpackLayer: security (crafted tarballs)', () => {
  it('refuses ".." components', async () => {
    await expectBad([{ name: '../outside/evil', content: 'x' }], /entry "\.\.\/outside\/evil".*"\.\."/);
    await expectBad([{ name: 'a/../../outside/evil', content: 'x' }], /"\.\."/);
  });

  it('refuses absolute names', async () => {
    await expectBad([{ name: path.join(outside, 'evil'), content: 'x' }], /absolute/);
  });

  it('refuses writing through a symlink planted earlier in the same layer', async () => {
    await expectBad(
      [
        { name: 'evil', type: 'symlink', linkname: outside },
        { name: 'evil/pwned', content: 'x' },
      ],
      /entry "evil\/pwned".*"evil" is a symlink/,
    );
    await expectBad(
      [
        { name: 'd/', type: 'directory' },
        { name: 'd/up', type: 'symlink', linkname: '../..' },
        { name: 'd/up/outside/pwned', content: 'x' },
      ],
      /symlink/,
    );
  });

  it('replaces (does not follow) a symlink at the final component', async () => {
    fs.writeFileSync(path.join(outside, 'victim'), 'original');
    fs.rmSync(path.join(outside, 'victim'));
    await unpack([
      { name: 'f', type: 'symlink', linkname: path.join(outside, 'victim') },
      { name: 'f', content: 'mine' },
    ]);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.lstatSync(path.join(dest, 'f')).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(dest, 'f'), 'utf8')).toBe('mine');
  });

  it('refuses hardlinks to targets outside or through a symlink', async () => {
    fs.writeFileSync(path.join(work, 'secret'), 'secret');
    await expectBad([{ name: 'h', type: 'link', linkname: '../secret' }], /"\.\."/);
    await expectBad([{ name: 'h', type: 'link', linkname: path.join(work, 'secret') }], /absolute/);
    await expectBad(
      [
        { name: 's', type: 'symlink', linkname: work },
        { name: 'h', type: 'link', linkname: 's/secret' },
      ],
      /entry "h".*"s" is a symlink/,
    );
    await expectBad([{ name: 'h', type: 'link', linkname: 'nope' }], /does not exist/);
  });

  it('a hardlink to a symlink links the symlink itself', async () => {
    await unpack([
      { name: 's', type: 'symlink', linkname: path.join(work, 'secret') },
      { name: 'h', type: 'link', linkname: 's' },
    ]);
    expect(fs.lstatSync(path.join(dest, 'h')).isSymbolicLink()).toBe(true);
  });

  it('refuses a file as a parent component', async () => {
    await expectBad(
      [
        { name: 'f', content: 'x' },
        { name: 'f/g', content: 'y' },
      ],
      /"f" is not a directory/,
    );
  });

  it('truncated gzip and truncated tar give clear errors', async () => {
    const t = await makeTar([{ name: 'big', content: Buffer.alloc(100_000, 7) }]);
    const gz = gzip(t);
    await expect(unpackLayer(chunks(gz.subarray(0, gz.length - 100)), dest, { label: 'layer L' })).rejects.toThrow(
      /layer L: corrupt or truncated gzip stream/,
    );
    fs.rmSync(dest, { recursive: true });
    fs.mkdirSync(dest);
    await expect(unpackLayer(chunks(t.subarray(0, 50_000)), dest, { label: 'layer L' })).rejects.toThrow(
      /layer L: corrupt or truncated tar stream/,
    );
  });

  it('zstd layers are rejected clearly (node:zlib on this runtime has no zstd)', async () => {
    const z = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    const zlib = await import('node:zlib');
    if ('createZstdDecompress' in zlib) return;
    await expect(unpackLayer(chunks(z), dest, { label: 'layer Z' })).rejects.toThrow(/layer Z: zstd-compressed layers are not supported/);
  });
});
