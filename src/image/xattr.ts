// Extended attributes for unpacked layers.
//
// Node has no setxattr(2). Until src/ffi offers one, we use the `setfattr` CLI
// (Debian package "attr") when it is installed; otherwise xattrs from layers are
// recorded as unapplied in the layer metadata and a warning is logged. Callers can
// inject a real implementation (ImageService.open({ setxattr })).
//
// tar-stream decodes PAX records as UTF-8, which corrupts binary values such as
// `security.capability`. We wrap its (CommonJS) decodePax so each decoded record
// set also carries the raw bytes under RAW_PAX (an enumerable symbol property,
// so it survives the Object.assign tar-stream does when merging global headers).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

export type SetXattr = (file: string, name: string, value: Buffer) => void;

export const RAW_PAX: unique symbol = Symbol.for('peapod.image.rawPax');

let patched: boolean | undefined;

/** Installs the raw-bytes wrapper around tar-stream's decodePax (once). */
export function patchTarStreamPax(): boolean {
  if (patched !== undefined) return patched;
  try {
    const require = createRequire(import.meta.url);
    const main = require.resolve('tar-stream');
    const headers = require(path.join(path.dirname(main), 'headers.js')) as {
      decodePax: (buf: Buffer) => Record<string | symbol, unknown>;
    };
    const orig = headers.decodePax;
    if ((orig as { __peapod?: boolean }).__peapod) return (patched = true);
    const wrapped = (buf: Buffer): Record<string | symbol, unknown> => {
      const result = orig(buf);
      result[RAW_PAX] = decodePaxRaw(buf);
      return result;
    };
    (wrapped as { __peapod?: boolean }).__peapod = true;
    headers.decodePax = wrapped;
    patched = true;
  } catch {
    patched = false;
  }
  return patched;
}

/** Decodes PAX records keeping values as raw bytes. */
export function decodePaxRaw(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  while (b.length > 0) {
    const sp = b.indexOf(0x20);
    if (sp <= 0) break;
    const len = parseInt(b.subarray(0, sp).toString('latin1'), 10);
    if (!(len > sp) || len > b.length) break;
    const rec = b.subarray(sp + 1, len - 1); // without trailing '\n'
    const eq = rec.indexOf(0x3d);
    if (eq === -1) break;
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    b = b.subarray(len);
  }
  return out;
}

/** xattrs carried by a tar header's PAX records (SCHILY.xattr.NAME). */
export function xattrsFromPax(pax: unknown): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!pax || typeof pax !== 'object') return out;
  const raw = (pax as Record<symbol, unknown>)[RAW_PAX] as Map<string, Buffer> | undefined;
  for (const [k, v] of Object.entries(pax as Record<string, unknown>)) {
    if (!k.startsWith('SCHILY.xattr.')) continue;
    const name = k.slice('SCHILY.xattr.'.length);
    const bytes = raw?.get(k) ?? Buffer.from(String(v), 'utf8');
    out.set(name, bytes);
  }
  return out;
}

function findInPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** setxattr through the `setfattr` CLI if installed (no-dereference), else undefined. */
export function cliSetXattr(): SetXattr | undefined {
  const bin = findInPath('setfattr');
  if (!bin) return undefined;
  return (file, name, value) => {
    execFileSync(bin, ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, '--', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  };
}
