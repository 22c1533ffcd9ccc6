// Streaming, hardened layer unpacker.
//
// Reads a (gzip or plain) tar stream with tar-stream and materialises it under
// `dest`, the way overlayfs wants a lower layer:
//   - OCI whiteout `.wh.NAME`       → character device 0/0 at NAME
//   - opaque marker `.wh..wh..opq`  → xattr trusted.overlay.opaque=y on the dir
//     (when no setxattr is available: explicit whiteouts for every name the lower
//     layers show in that dir — equivalent, since the cache key (chain ID) fixes
//     the lower layers — and the dir is listed as opaque in the metadata)
//
// Security: every path component is resolved with lstat below `dest`; a parent
// that is a symlink or not a directory is refused, `..` and absolute names are
// refused, hardlink targets are resolved the same way (and must exist, and not be
// directories), device nodes are only created as root. Nothing is ever opened
// through a symlink: files are created with O_EXCL after removing what was there.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import * as tar from 'tar-stream';
import { invalidArgument, isNoSpace, PeapodError, resourceExhausted } from '../errors.js';
import { drained } from '../util/drain.js';
import { patchTarStreamPax, type SetXattr, xattrsFromPax } from './xattr.js';

const execFileP = promisify(execFile);

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export type Compression = 'gzip' | 'zstd' | 'none';

export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

type ZlibWithZstd = typeof zlib & { createZstdDecompress?: () => NodeJS.ReadWriteStream };

/**
 * Peeks at the first bytes of `src`, and returns the decompressed byte stream.
 * gzip → node:zlib; zstd → node:zlib's zstd when this runtime has it (Node ≥ 22.15),
 * otherwise a clear InvalidArgument.
 */
export async function decompressed(
  src: AsyncIterable<Uint8Array>,
  label: string,
): Promise<{ compression: Compression; stream: AsyncIterable<Uint8Array> }> {
  const it = src[Symbol.asyncIterator]();
  const headChunks: Uint8Array[] = [];
  let headLen = 0;
  let done = false;
  while (headLen < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    headChunks.push(r.value);
    headLen += r.value.byteLength;
  }
  const head = Buffer.concat(headChunks);
  const rest = (async function* () {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  const compression = detectCompression(head);
  if (compression === 'none') return { compression, stream: rest };
  let dec: NodeJS.ReadWriteStream;
  if (compression === 'gzip') dec = zlib.createGunzip();
  else {
    const z = zlib as ZlibWithZstd;
    if (typeof z.createZstdDecompress !== 'function') {
      await it.return?.();
      throw invalidArgument(
        `${label}: zstd-compressed layers are not supported by this runtime (node:zlib has no zstd decompressor; Node >= 22.15 has one)`,
      );
    }
    dec = z.createZstdDecompress();
  }
  const out = pipeline(Readable.from(rest, { objectMode: false }), dec as unknown as NodeJS.WritableStream & NodeJS.ReadableStream, () => {});
  return {
    compression,
    stream: (async function* () {
      try {
        for await (const c of out as AsyncIterable<Uint8Array>) yield c;
      } catch (e) {
        throw invalidArgument(`${label}: corrupt or truncated ${compression} stream: ${(e as Error).message}`);
      }
    })(),
  };
}

/** One layer below the one being unpacked (for the opaque-dir fallback). */
export interface LowerLayer {
  fs: string;
  /** Relative dirs recorded as opaque in that layer's metadata. */
  opaque: ReadonlySet<string>;
}

export interface UnpackOptions {
  /** Used in error messages: "layer sha256:…". */
  label?: string;
  /** Whether device nodes may be created (default: running as root). */
  isRoot?: boolean;
  /** setxattr implementation; undefined → xattrs recorded as unapplied. */
  setxattr?: SetXattr | undefined;
  /** Lower layers, top first (for opaque dirs when setxattr is unavailable). */
  lowers?: LowerLayer[];
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  compression: Compression;
  /** Uncompressed tar size. */
  tarSize: number;
  entries: number;
  /** Relative paths of opaque directories. */
  opaqueDirs: string[];
  /** Whether opaque dirs carry trusted.overlay.opaque (else explicit whiteouts). */
  opaqueXattr: boolean;
  /** xattrs that could not be applied (no setxattr available). */
  unappliedXattrs: Array<{ path: string; name: string; value: string /* base64 */ }>;
  /** Device nodes skipped because we are not root. */
  skippedDevices: string[];
}

interface DeferredDir {
  abs: string;
  mode: number;
  mtime: Date;
}

class Unpacker {
  private readonly label: string;
  private readonly isRoot: boolean;
  /** Relative dir paths verified to be real directories (not symlinks). */
  private readonly safeDirs = new Set<string>(['']);
  private readonly dirs = new Map<string, DeferredDir>();
  readonly opaque = new Set<string>();
  readonly unapplied: UnpackResult['unappliedXattrs'] = [];
  readonly skippedDevices: string[] = [];
  /** Whiteouts to create (relative paths), see flushWhiteouts. */
  private readonly pendingWhiteouts = new Set<string>();
  entries = 0;

  constructor(
    private readonly root: string,
    private readonly opts: UnpackOptions,
  ) {
    this.label = opts.label ?? 'layer';
    this.isRoot = opts.isRoot ?? process.getuid?.() === 0;
  }

  private fail(entry: string, reason: string): PeapodError {
    return invalidArgument(`${this.label}: entry "${entry}": ${reason}`);
  }

  /** Splits and validates an archive path into components (no '.', no '..', not absolute). */
  private components(name: string, entry: string): string[] {
    if (name.startsWith('/')) throw this.fail(entry, 'absolute path names are not allowed');
    if (name.includes('\0')) throw this.fail(entry, 'NUL byte in name');
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw this.fail(entry, '".." path components are not allowed');
    return parts;
  }

  /**
   * Resolves the directory `parts` below root without following symlinks.
   * Missing components are created (0755, root-owned) when `create`; a component
   * that is a symlink or not a directory is refused.
   */
  private async dir(parts: string[], entry: string, create: boolean): Promise<string> {
    let rel = '';
    for (const p of parts) {
      const next = rel === '' ? p : `${rel}/${p}`;
      if (!this.safeDirs.has(next)) {
        const abs = path.join(this.root, next);
        const st = fs.lstatSync(abs, { throwIfNoEntry: false });
        if (st === undefined) {
          if (!create) throw this.fail(entry, `path component "${next}" does not exist`);
          this.implicitDir(abs, next);
        } else if (st.isSymbolicLink()) {
          throw this.fail(entry, `path component "${next}" is a symlink; refusing to write through it`);
        } else if (!st.isDirectory()) {
          throw this.fail(entry, `path component "${next}" is not a directory`);
        }
        this.safeDirs.add(next);
      }
      rel = next;
    }
    return path.join(this.root, rel);
  }

  /**
   * Creates a parent directory the archive has no entry for. Its attributes come
   * from the lower layers' directory of that path if there is one (as an overlay
   * copy-up would keep them), else 0755 root:root.
   */
  private implicitDir(abs: string, rel: string): void {
    fs.mkdirSync(abs, { mode: 0o700 });
    let mode = 0o755;
    let uid = 0;
    let gid = 0;
    let mtime: Date | undefined;
    for (const lower of this.opts.lowers ?? []) {
      const st = lstatBelow(lower.fs, rel);
      if (st === undefined) continue;
      if (st.isDirectory()) {
        mode = st.mode & 0o7777;
        uid = st.uid;
        gid = st.gid;
        mtime = st.mtime;
      }
      break;
    }
    if (this.isRoot) fs.lchownSync(abs, uid, gid);
    // mode and mtime are applied with the other directories, after their content
    this.dirs.set(abs, { abs, mode, mtime: mtime ?? new Date() });
  }

  /** Removes whatever is at abs (if anything). Returns the previous lstat. */
  private async clear(abs: string, keepDir: boolean): Promise<fs.Stats | undefined> {
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (st === undefined) return undefined;
    if (st.isDirectory()) {
      if (keepDir) return st;
      fs.rmSync(abs, { recursive: true, force: true });
      // Anything cached below it is gone, opaque markers included: a dir made
      // again at that path is a new one, and the path may become a symlink.
      this.safeDirs.clear();
      this.safeDirs.add('');
      for (const k of [...this.dirs.keys()]) if (k === abs || k.startsWith(abs + '/')) this.dirs.delete(k);
      const rel = path.relative(this.root, abs);
      for (const d of [...this.opaque]) if (d === rel || d.startsWith(rel + '/')) this.opaque.delete(d);
    } else {
      fs.unlinkSync(abs);
    }
    return st;
  }

  private async applyXattrs(abs: string, rel: string, hdr: tar.Header): Promise<void> {
    const xs = xattrsFromPax(hdr.pax);
    for (const [name, value] of xs) {
      if (this.opts.setxattr) {
        try {
          this.opts.setxattr(abs, name, value);
          continue;
        } catch (e) {
          this.opts.log?.('warn', 'setxattr failed', { path: rel, name, error: (e as Error).message });
        }
      }
      this.unapplied.push({ path: rel, name, value: value.toString('base64') });
    }
  }

  private async own(abs: string, hdr: tar.Header): Promise<void> {
    if (this.isRoot) fs.lchownSync(abs, hdr.uid ?? 0, hdr.gid ?? 0);
  }

  /**
   * PAX uid/gid records override the ustar fields (tar-stream applies only
   * path, linkpath and size): Go's archive/tar writes IDs above 2097151 only
   * there. Like Go's reader, an invalid one is an error; so is 2^32-1, which
   * chown(2) takes as "leave unchanged" (the file would stay root's).
   */
  private paxOwner(hdr: tar.Header, entry: string): void {
    for (const key of ['uid', 'gid'] as const) {
      const v = (hdr.pax as Record<string, string> | undefined)?.[key];
      if (v === undefined) continue;
      if (!/^[0-9]{1,10}$/.test(v) || Number(v) >= 0xffffffff) throw this.fail(entry, `invalid PAX ${key} record "${v}"`);
      hdr[key] = Number(v);
    }
  }

  async entry(hdr: tar.Header, body: AsyncIterable<Uint8Array>): Promise<void> {
    this.entries++;
    const entry = hdr.name;
    const parts = this.components(hdr.name, entry);
    this.paxOwner(hdr, entry);
    const mode = (hdr.mode ?? 0o644) & 0o7777;
    const mtime = hdr.mtime ?? new Date(0);
    if (parts.length === 0) {
      // "./": the layer root itself.
      if (hdr.type === 'directory') {
        await this.own(this.root, hdr);
        this.dirs.set(this.root, { abs: this.root, mode, mtime });
        return;
      }
      throw this.fail(entry, `a ${hdr.type} cannot replace the layer root`);
    }
    const base = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);
    const rel = parts.join('/');

    // Whiteouts.
    if (base.startsWith(WHITEOUT_PREFIX)) {
      await drain(body);
      const parent = await this.dir(parentParts, entry, true);
      if (base === WHITEOUT_OPAQUE) {
        const dirRel = parentParts.join('/');
        this.opaque.add(dirRel);
        return;
      }
      if (base.startsWith(WHITEOUT_META_PREFIX)) return; // aufs internals (.wh..wh.plnk …)
      const victim = base.slice(WHITEOUT_PREFIX.length);
      if (victim === '' || victim === '.' || victim === '..') throw this.fail(entry, 'invalid whiteout name');
      void parent;
      // Created in one batch at the end (a process per mknod is slow); skipped then
      // if this layer itself has the name (a whiteout only hides lower content).
      this.pendingWhiteouts.add([...parentParts, victim].join('/'));
      return;
    }

    const parent = await this.dir(parentParts, entry, true);
    const abs = path.join(parent, base);

    switch (hdr.type) {
      case 'directory': {
        const prev = await this.clear(abs, true);
        if (!prev?.isDirectory()) fs.mkdirSync(abs, { mode: 0o700 });
        this.safeDirs.add(rel);
        await this.own(abs, hdr);
        await this.applyXattrs(abs, rel, hdr);
        this.dirs.set(abs, { abs, mode, mtime });
        await drain(body);
        return;
      }
      case 'file':
      case 'contiguous-file': {
        await this.clear(abs, false);
        const fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
        try {
          for await (const c of body) writeAll(fd, c);
        } finally {
          fs.closeSync(fd);
        }
        await this.own(abs, hdr);
        fs.chmodSync(abs, mode); // after chown: chown clears setuid/setgid
        await this.applyXattrs(abs, rel, hdr);
        fs.utimesSync(abs, mtime, mtime);
        return;
      }
      case 'symlink': {
        await drain(body);
        if (!hdr.linkname) throw this.fail(entry, 'symlink without target');
        await this.clear(abs, false);
        fs.symlinkSync(hdr.linkname, abs);
        await this.own(abs, hdr);
        await this.applyXattrs(abs, rel, hdr);
        fs.lutimesSync(abs, mtime, mtime);
        return;
      }
      case 'link': {
        await drain(body);
        if (!hdr.linkname) throw this.fail(entry, 'hardlink without target');
        // Hardlink targets are archive paths, resolved like names (no "..", not
        // absolute, no symlinked parent, must already exist in this layer).
        const tparts = this.components(hdr.linkname, entry);
        if (tparts.length === 0) throw this.fail(entry, 'hardlink to the layer root');
        const tparent = await this.dir(tparts.slice(0, -1), entry, false);
        const target = path.join(tparent, tparts[tparts.length - 1]!);
        const tst = fs.lstatSync(target, { throwIfNoEntry: false });
        if (!tst) throw this.fail(entry, `hardlink target "${hdr.linkname}" does not exist in this layer`);
        if (tst.isDirectory()) throw this.fail(entry, `hardlink target "${hdr.linkname}" is a directory`);
        if (target === abs) return;
        await this.clear(abs, false);
        fs.linkSync(target, abs); // link(2) does not follow a symlink target
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await drain(body);
        if (hdr.type !== 'fifo' && !this.isRoot) {
          this.skippedDevices.push(rel);
          this.opts.log?.('warn', 'not root: skipping device node in layer', { layer: this.label, path: rel });
          return;
        }
        await this.clear(abs, false);
        const args =
          hdr.type === 'fifo'
            ? [abs, 'p']
            : [abs, hdr.type === 'character-device' ? 'c' : 'b', String(hdr.devmajor ?? 0), String(hdr.devminor ?? 0)];
        await execFileP('mknod', ['-m', '0600', ...args]);
        await this.own(abs, hdr);
        fs.chmodSync(abs, mode);
        await this.applyXattrs(abs, rel, hdr);
        fs.utimesSync(abs, mtime, mtime);
        return;
      }
      default:
        await drain(body);
        this.opts.log?.('warn', 'skipping unsupported tar entry type', { layer: this.label, path: rel, type: hdr.type });
    }
  }

  /** Opaque dirs: xattr if possible, else explicit whiteouts of lower names. */
  async finishOpaque(): Promise<boolean> {
    // The setter does not follow a symlink in the last component, but does in
    // the others: only ever mark a real directory below the root.
    for (const d of [...this.opaque]) if (!realDirBelow(this.root, d === '' ? [] : d.split('/'))) this.opaque.delete(d);
    if (this.opaque.size === 0) return true;
    if (this.opts.setxattr) {
      try {
        for (const d of this.opaque) this.opts.setxattr(path.join(this.root, d), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
        return true;
      } catch (e) {
        this.opts.log?.('warn', 'setxattr trusted.overlay.opaque failed; using explicit whiteouts', { error: (e as Error).message });
      }
    }
    for (const d of [...this.opaque].sort()) await this.whiteoutLowers(d);
    return false;
  }

  private async whiteoutLowers(dirRel: string): Promise<void> {
    const lowerEntries = await mergedListing(this.opts.lowers ?? [], dirRel);
    for (const [name, isDir] of lowerEntries) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      const st = fs.lstatSync(path.join(this.root, rel), { throwIfNoEntry: false });
      if (!st) this.pendingWhiteouts.add(rel);
      else if (st.isDirectory() && isDir) await this.whiteoutLowers(rel);
    }
  }

  /**
   * Creates the pending whiteouts (0/0 character devices) whose name this layer
   * does not itself provide, below parents that are still real directories — in
   * one GNU tar process rather than a mknod process each.
   */
  async flushWhiteouts(): Promise<void> {
    const todo: string[] = [];
    for (const rel of [...this.pendingWhiteouts].sort()) {
      const parts = rel.split('/');
      if (!realDirBelow(this.root, parts.slice(0, -1))) continue;
      if (fs.lstatSync(path.join(this.root, rel), { throwIfNoEntry: false })) continue;
      todo.push(rel);
    }
    this.pendingWhiteouts.clear();
    if (todo.length === 0) return;
    if (todo.length <= 2) {
      for (const rel of todo) await mknodWhiteout(path.join(this.root, rel));
      return;
    }
    await extractWhiteouts(this.root, todo);
  }

  /** Directory modes and mtimes, after all their content was written. */
  async finishDirs(): Promise<void> {
    const all = [...this.dirs.values()].sort((a, b) => b.abs.length - a.abs.length);
    for (const d of all) {
      fs.chmodSync(d.abs, d.mode);
      fs.utimesSync(d.abs, d.mtime, d.mtime);
    }
  }
}

/** lstat of base/rel, or undefined if it or a parent is missing or a parent is not a real directory. */
function lstatBelow(base: string, rel: string): fs.Stats | undefined {
  const parts = rel.split('/');
  let cur = base;
  for (let i = 0; i < parts.length; i++) {
    cur = path.join(cur, parts[i]!);
    const st = fs.lstatSync(cur, { throwIfNoEntry: false });
    if (st === undefined || i === parts.length - 1) return st;
    if (!st.isDirectory()) return undefined;
  }
  return undefined;
}

function writeAll(fd: number, c: Uint8Array): void {
  let off = 0;
  while (off < c.byteLength) off += fs.writeSync(fd, c, off, c.byteLength - off);
}

export function isWhiteoutStat(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** True if every component of parts below root is a directory (not a symlink). */
function realDirBelow(root: string, parts: string[]): boolean {
  let cur = root;
  for (const p of parts) {
    cur = path.join(cur, p);
    const st = fs.lstatSync(cur, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) return false;
  }
  return true;
}

/** Creates many whiteout devices with one `tar -x` (paths verified by the caller). */
async function extractWhiteouts(root: string, rels: string[]): Promise<void> {
  const pack = tar.pack();
  for (const name of rels) {
    pack.entry({ name, type: 'character-device', mode: 0, uid: 0, gid: 0, devmajor: 0, devminor: 0, mtime: new Date(0) });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  await new Promise<void>((resolve, reject) => {
    const child = execFile('tar', ['-x', '-f', '-', '-C', root], (err, _o, stderr) =>
      err ? reject(new Error(`creating whiteouts with tar failed: ${String(stderr).trim() || err.message}`)) : resolve(),
    );
    child.stdin!.end(Buffer.concat(chunks));
  });
}

async function mknodWhiteout(abs: string): Promise<void> {
  await execFileP('mknod', ['-m', '0000', abs, 'c', '0', '0']);
}

/**
 * What the merged view of `lowers` (top first) shows in directory `rel`:
 * name → is a directory. Honours whiteouts and opaque dirs of the lowers.
 */
export async function mergedListing(lowers: LowerLayer[], rel: string): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  const hidden = new Set<string>();
  const parts = rel === '' ? [] : rel.split('/');
  for (const lower of lowers) {
    // Is rel reachable as a directory in this layer? Check ancestors.
    let cur = lower.fs;
    let blocked = false;
    let ancestorOpaque = false;
    let missing = false;
    for (let i = 0; i < parts.length; i++) {
      cur = path.join(cur, parts[i]!);
      let st: fs.Stats;
      try {
        st = await fsp.lstat(cur);
      } catch {
        missing = true;
        break;
      }
      if (!st.isDirectory()) {
        blocked = true; // whiteout or file: hides everything below
        break;
      }
      if (i < parts.length - 1 && (lower.opaque.has(parts.slice(0, i + 1).join('/')) || (await hasOpaqueXattr(cur)))) {
        ancestorOpaque = true;
      }
    }
    if (blocked) break;
    if (!missing) {
      for (const d of await fsp.readdir(cur, { withFileTypes: true })) {
        if (hidden.has(d.name) || out.has(d.name)) continue;
        const st = await fsp.lstat(path.join(cur, d.name));
        if (isWhiteoutStat(st)) hidden.add(d.name);
        else out.set(d.name, st.isDirectory());
      }
      if (lower.opaque.has(rel) || (await hasOpaqueXattr(cur))) break;
    }
    if (ancestorOpaque) break;
  }
  return out;
}

async function hasOpaqueXattr(_p: string): Promise<boolean> {
  // Without getxattr we cannot tell; the layer metadata's opaque list is used instead.
  return false;
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of body) {
    /* discard */
  }
}

/**
 * Unpacks the layer stream `src` into the existing, empty directory `dest`.
 * On error the caller must discard `dest` (the layer cache unpacks into a temp dir).
 */
export async function unpackLayer(src: AsyncIterable<Uint8Array>, dest: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  patchTarStreamPax();
  const label = opts.label ?? 'layer';
  const { compression, stream } = await decompressed(src, label);
  const hash = createHash('sha256');
  let tarSize = 0;
  const extract = tar.extract();
  const feeder = (async () => {
    try {
      for await (const chunk of stream) {
        hash.update(chunk);
        tarSize += chunk.byteLength;
        // A destroyed extract (the consumer gave up) never drains nor closes again: stop at once.
        if (extract.destroyed) return; // returning closes the source
        if (!extract.write(chunk) && !extract.destroyed) await drained(extract as unknown as EventEmitter);
        if (extract.destroyed) return;
      }
      (extract as unknown as NodeJS.WritableStream).end();
    } catch (e) {
      extract.destroy(e as Error);
      throw e;
    }
  })();
  feeder.catch(() => {}); // surfaced through the extract iterator / awaited below
  const u = new Unpacker(dest, opts);
  try {
    for await (const entry of extract) {
      await u.entry(entry.header as unknown as tar.Header, entry as unknown as AsyncIterable<Uint8Array>);
    }
  } catch (e) {
    extract.destroy(new Error('unpack aborted'));
    // A decompression error surfaces here as "stream destroyed": prefer the cause.
    const fe = await feeder.then(
      () => undefined,
      (x: unknown) => x,
    );
    if (e instanceof PeapodError) throw e;
    if (fe instanceof PeapodError) throw fe;
    const msg = (e as Error).message;
    if (isNoSpace(e)) throw resourceExhausted(`${label}: ${msg}`);
    throw invalidArgument(`${label}: corrupt or truncated tar stream: ${msg}`);
  }
  await feeder.catch((e: unknown) => {
    if (e instanceof PeapodError) throw e;
    throw invalidArgument(`${label}: ${(e as Error).message}`);
  });
  const opaqueXattr = await u.finishOpaque();
  await u.flushWhiteouts();
  await u.finishDirs();
  if (u.unapplied.length) {
    opts.log?.('warn', 'xattrs in layer not applied: no setxattr available (install "attr" for setfattr, or provide setxattr)', {
      layer: label,
      count: u.unapplied.length,
      names: [...new Set(u.unapplied.map((x) => x.name))],
    });
  }
  return {
    diffId: `sha256:${hash.digest('hex')}`,
    compression,
    tarSize,
    entries: u.entries,
    opaqueDirs: [...u.opaque].sort(),
    opaqueXattr,
    unappliedXattrs: u.unapplied,
    skippedDevices: u.skippedDevices,
  };
}
