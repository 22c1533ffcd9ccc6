// `peapod image …`: load archives through peapod.v1.Peapod/LoadImages, and
// list, remove and pull through CRI ImageService (as crictl does).

import * as grpc from '@grpc/grpc-js';
import { createReadStream, promises as fsp } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../config.js';
import { criClient } from '../cri/client.js';
import type { LoadImagesChunk } from '../cri/generated/peapod/v1/LoadImagesChunk.js';
import type { LoadedImage__Output } from '../cri/generated/peapod/v1/LoadedImage.js';
import type { LoadImagesResponse__Output } from '../cri/generated/peapod/v1/LoadImagesResponse.js';
import type { PeapodClient } from '../cri/generated/peapod/v1/Peapod.js';
import { peapodProto } from '../cri/proto.js';
import { imageUsage, UsageError } from './usage.js';

const CHUNK = 64 * 1024;

// ----------------------------------------------------------------- helpers

/** 3 significant digits, decimal units, as crictl prints sizes ("1.15MB"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(3))}${units[i]}`;
}

/** An Error whose message says what failed and why, from a gRPC status. */
function rpcError(err: unknown, socket: string, what: string): Error {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code !== 'number') return err instanceof Error ? err : new Error(String(err));
  if (e.code === grpc.status.UNAVAILABLE) {
    const details = (e.details ?? '').replace(/\.?\s*Resolution note:\s*$/, '');
    return new Error(`cannot reach the peapod server at ${socket} (is "peapod serve" running?): ${details}`);
  }
  return new Error(`${what}: ${e.details || 'failed'} (${grpc.status[e.code]})`);
}

function parse(argv: string[], options: { name?: boolean } = {}) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string', short: 's' },
      ...(options.name ? { name: { type: 'string' as const } } : {}),
    },
    allowPositionals: true,
    strict: true,
  });
  return { socket: values.socket ?? defaultConfig.socket, name: (values as { name?: string }).name, args: positionals };
}

/** Re-slices a byte stream into pieces of at most `size` bytes. */
async function* rechunk(src: AsyncIterable<Uint8Array | string>, size: number): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    const buf = typeof c === 'string' ? Buffer.from(c) : c;
    for (let off = 0; off < buf.length; off += size) yield buf.subarray(off, Math.min(off + size, buf.length));
  }
}

/** A one-line progress bar on stderr, redrawn at most 10 times a second; a no-op unless stderr is a TTY. */
class Progress {
  private sent = 0;
  private last = 0;
  private readonly on = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
  ) {}

  add(n: number): void {
    this.sent += n;
    const now = Date.now();
    if (now - this.last >= 100) {
      this.last = now;
      this.draw();
    }
  }

  private draw(): void {
    if (!this.on) return;
    let line: string;
    if (this.total !== undefined && this.total > 0) {
      const frac = Math.min(1, this.sent / this.total);
      const width = 30;
      const full = Math.floor(frac * width);
      const bar = '='.repeat(Math.max(0, full - 1)) + (full > 0 ? (full === width ? '=' : '>') : '') + ' '.repeat(width - full);
      line = `${this.label} [${bar}] ${humanSize(this.sent)} / ${humanSize(this.total)}`;
    } else {
      line = `${this.label} ${humanSize(this.sent)} sent`;
    }
    process.stderr.write(`\r${line}\x1b[K`);
  }

  /** Draws the final state, then clears the line. */
  done(): void {
    if (!this.on) return;
    this.draw();
    process.stderr.write('\r\x1b[K');
  }
}

// ------------------------------------------------------------------- load

/**
 * Streams one archive over LoadImages: 64 KiB chunks, waiting for 'drain'
 * whenever grpc-js buffers (the server reads as it imports), stopping at once
 * if the server answers early (an error on a corrupt archive).
 */
async function loadOne(
  client: PeapodClient,
  source: AsyncIterable<Uint8Array | string>,
  name: string | undefined,
  progress: Progress,
): Promise<LoadedImage__Output[]> {
  let settled = false;
  let call!: grpc.ClientWritableStream<LoadImagesChunk>;
  const done = new Promise<LoadImagesResponse__Output>((resolve, reject) => {
    call = client.LoadImages((err, res) => {
      settled = true;
      if (err) reject(err);
      else resolve(res!);
    });
  });
  const settledAny = done.then(
    () => {},
    () => {},
  );
  let first = true;
  try {
    for await (const data of rechunk(source, CHUNK)) {
      if (settled) break;
      const msg: LoadImagesChunk = first && name !== undefined ? { name, data } : { data };
      first = false;
      if (!call.write(msg)) {
        let onDrain!: () => void;
        await Promise.race([new Promise<void>((r) => call.once('drain', (onDrain = r))), settledAny]);
        call.off('drain', onDrain);
      }
      progress.add(data.length);
    }
  } catch (err) {
    // Reading the file failed: abandon the call, the server drops what it got.
    call.cancel();
    await settledAny;
    throw err;
  }
  if (!settled) call.end();
  return (await done).images;
}

async function load(argv: string[]): Promise<number> {
  const { socket, name, args } = parse(argv, { name: true });
  if (args.length === 0) throw new UsageError('image load: give at least one archive FILE ("-" reads stdin)');
  if (args.filter((a) => a === '-').length > 1) throw new UsageError('image load: stdin ("-") can be given only once');
  if (name !== undefined && args.length > 1) throw new UsageError('image load: --name names one archive; give a single FILE');
  if (name !== undefined && name.trim() === '') throw new UsageError('image load: --name must not be empty');

  // Every file must be readable before anything is sent, so a typo does not half-load a list.
  const sizes = new Map<string, number>();
  for (const f of args) {
    if (f === '-') continue;
    let st;
    try {
      st = await fsp.stat(f);
    } catch (err) {
      throw new Error(`image load: ${f}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    if (!st.isFile()) throw new Error(`image load: ${f}: not a regular file`);
    sizes.set(f, st.size);
  }

  const Peapod = peapodProto().peapod.v1.Peapod;
  const client = new Peapod(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    for (const f of args) {
      const label = f === '-' ? 'stdin' : basename(f);
      const progress = new Progress(label, sizes.get(f));
      const source = f === '-' ? (process.stdin as AsyncIterable<Uint8Array | string>) : createReadStream(f, { highWaterMark: CHUNK });
      let images: LoadedImage__Output[];
      try {
        images = await loadOne(client, source, name, progress);
      } catch (err) {
        throw rpcError(err, socket, `image load: ${f === '-' ? 'stdin' : f}`);
      } finally {
        progress.done();
      }
      for (const img of images) {
        if (img.repoTags.length === 0) process.stdout.write(`Loaded image ID: ${img.id}\n`);
        for (const tag of img.repoTags) process.stdout.write(`Loaded image: ${tag} (${img.id})\n`);
      }
    }
  } finally {
    client.close();
  }
  return 0;
}

// ------------------------------------------------------- ls, rm and pull

/** "repo:tag" → [repo, tag]; a ':' before the last '/' belongs to a registry port. */
function splitTag(ref: string): [string, string] {
  const i = ref.lastIndexOf(':');
  return i > ref.lastIndexOf('/') ? [ref.slice(0, i), ref.slice(i + 1)] : [ref, '<none>'];
}

/** Columns as Go's tabwriter(minwidth 20, padding 3) lays them out for crictl. */
function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 20, c.length + 3)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('') + '\n').join('');
}

async function ls(argv: string[]): Promise<number> {
  const { socket, args } = parse(argv);
  if (args.length > 0) throw new UsageError(`image ls: unexpected argument "${args[0]}"`);
  const cri = criClient(socket);
  try {
    let images;
    try {
      ({ images } = await cri.image.ListImages({}));
    } catch (err) {
      throw rpcError(err, socket, 'image ls');
    }
    const rows: string[][] = [];
    for (const img of images) {
      const id = img.id.replace(/^sha256:/, '').slice(0, 13);
      const size = humanSize(Number(img.size));
      if (img.repoTags.length > 0) {
        for (const t of img.repoTags) rows.push([...splitTag(t), id, size]);
      } else {
        const repos = [...new Set(img.repoDigests.map((d) => d.split('@')[0]!))];
        for (const r of repos.length ? repos : ['<none>']) rows.push([r, '<none>', id, size]);
      }
    }
    rows.sort((a, b) => (a[0]! + ':' + a[1]!).localeCompare(b[0]! + ':' + b[1]!));
    process.stdout.write(table([['IMAGE', 'TAG', 'IMAGE ID', 'SIZE'], ...rows]));
  } finally {
    cri.close();
  }
  return 0;
}

async function rm(argv: string[]): Promise<number> {
  const { socket, args } = parse(argv);
  if (args.length === 0) throw new UsageError('image rm: give the image REF (tag, digest reference or id) to remove');
  const cri = criClient(socket);
  // As crictl: a ref that fails is reported and the others are still removed; the exit code says one failed.
  let failed = false;
  try {
    for (const ref of args) {
      try {
        const { image } = await cri.image.ImageStatus({ image: { image: ref } });
        if (!image) throw new Error(`image rm: no such image "${ref}"`);
        await cri.image.RemoveImage({ image: { image: image.id } });
        for (const tag of image.repoTags) process.stdout.write(`Deleted: ${tag}\n`);
        process.stdout.write(`Deleted: ${image.id}\n`);
      } catch (err) {
        process.stderr.write(`peapod: ${rpcError(err, socket, `image rm ${ref}`).message}\n`);
        failed = true;
      }
    }
  } finally {
    cri.close();
  }
  return failed ? 1 : 0;
}

async function pull(argv: string[]): Promise<number> {
  const { socket, args } = parse(argv);
  if (args.length !== 1) throw new UsageError('image pull: give exactly one image REF');
  const ref = args[0]!;
  const cri = criClient(socket);
  try {
    const { imageRef } = await cri.image.PullImage({ image: { image: ref } });
    process.stdout.write(`Image is up to date for ${imageRef}\n`);
  } catch (err) {
    throw rpcError(err, socket, `image pull ${ref}`);
  } finally {
    cri.close();
  }
  return 0;
}

/** `peapod image SUBCOMMAND …`; usage mistakes throw UsageError (exit 2), failures Error (exit 1). */
export async function imageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'load':
    case 'import':
      return load(rest);
    case 'ls':
    case 'list':
      return ls(rest);
    case 'rm':
    case 'remove':
      return rm(rest);
    case 'pull':
      return pull(rest);
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`Usage:\n${imageUsage}\n`);
      return 0;
    case undefined:
      throw new UsageError('image: give a subcommand: load, ls, rm or pull');
    default:
      throw new UsageError(`image: unknown subcommand "${sub}"`);
  }
}
