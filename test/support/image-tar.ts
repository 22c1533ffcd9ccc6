// Test helpers: build tarballs in memory with tar-stream's pack.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

export const MTIME = new Date('2024-01-02T03:04:05Z');

export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = e.content === undefined ? undefined : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
    const hdr: tar.Header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? MTIME,
      size: type === 'file' ? (body?.length ?? 0) : 0,
      linkname: e.linkname ?? '',
      uname: '',
      gname: '',
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
    };
    if (e.pax) hdr.pax = e.pax;
    await new Promise<void>((res, rej) => {
      if (type === 'file') pack.entry(hdr, body ?? Buffer.alloc(0), (err) => (err ? rej(err) : res()));
      else pack.entry(hdr, (err) => (err ? rej(err) : res()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function gzip(b: Buffer): Buffer {
  return zlib.gzipSync(b);
}

export async function* chunks(b: Buffer, size = 7919): AsyncIterable<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

export function tmpDir(prefix = 'peapod-image-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A recursive listing: relpath → short description (type, mode, owner, target/content). */
export function describeTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      const own = `${st.uid}:${st.gid}`;
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(r, `dir ${mode} ${own}`);
        walk(r);
      } else if (st.isSymbolicLink()) out.set(r, `symlink -> ${fs.readlinkSync(path.join(root, r))} ${own}`);
      else if (st.isFile()) out.set(r, `file ${mode} ${own} ${fs.readFileSync(path.join(root, r)).toString('hex').slice(0, 64)}`);
      else if (st.isCharacterDevice()) out.set(r, `chr ${mode} ${own} ${st.rdev}`);
      else if (st.isBlockDevice()) out.set(r, `blk ${mode} ${own} ${st.rdev}`);
      else if (st.isFIFO()) out.set(r, `fifo ${mode} ${own}`);
      else out.set(r, 'other');
    }
  };
  walk('');
  return out;
}
