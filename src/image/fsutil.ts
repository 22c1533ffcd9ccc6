// Small filesystem helpers shared by the image subsystem.

import { randomBytes } from 'node:crypto';
import * as path from 'node:path';

/** A unique temp name next to `dest` (same filesystem, so rename is atomic). */
export function tempName(dir: string, prefix = '.tmp-'): string {
  return path.join(dir, `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`);
}

export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/** Converts what callers may hand us into an async iterable of byte chunks. */
export function asAsyncIterable(
  s: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
): AsyncIterable<Uint8Array> {
  if (Symbol.asyncIterator in s) return s as AsyncIterable<Uint8Array>;
  throw new TypeError('stream is not async iterable');
}
