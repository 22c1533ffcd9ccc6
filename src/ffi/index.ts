// Entry point of the FFI layer: one Libc interface, three backends chosen at
// run time. koffi is only imported on Node, bun:ffi only on Bun and
// Deno.dlopen only used on Deno (each backend is a separate, dynamically
// imported module).
//
//   await loadLibc();          // once, at start-up
//   libc().unshare(CLONE_NEWNET);  // synchronous afterwards

import type { Backend, Libc } from './types.js';
import { type RawLibc, wrapLibc } from './wrap.js';

export type { Backend, Libc, SpawnOptions } from './types.js';
export { isSyscallError, SyscallError } from './types.js';
export { ERRNO, errnoDescription, errnoName } from './errno.js';
export * from './constants.js';

/** Which backend this runtime uses: 'bun' on Bun, 'deno' on Deno, 'koffi' otherwise (Node). */
export function detectBackend(): Backend {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return 'bun';
  if (g.Deno !== undefined) return 'deno';
  return 'koffi';
}

let loading: Promise<Libc> | undefined;
let loaded: Libc | undefined;

async function importBackend(backend: Backend): Promise<RawLibc> {
  switch (backend) {
    case 'bun':
      return (await import('./bun.js')).createRawLibc();
    case 'deno':
      return (await import('./deno.js')).createRawLibc();
    case 'koffi':
      return (await import('./koffi.js')).createRawLibc();
  }
}

/** Loads libc.so.6 through this runtime's FFI. Memoised: every call returns the same instance. */
export function loadLibc(): Promise<Libc> {
  loading ??= importBackend(detectBackend()).then(
    (raw) => (loaded = wrapLibc(raw)),
    (err: unknown) => {
      loading = undefined; // allow a retry
      throw new Error(`cannot load libc through ${detectBackend()} FFI: ${String(err)}`, { cause: err });
    },
  );
  return loading;
}

/**
 * The loaded Libc, synchronously (for code in a namespace-switching window
 * that must not yield to the event loop). Throws unless loadLibc() has
 * already resolved.
 */
export function libc(): Libc {
  if (loaded === undefined) throw new Error('libc() called before `await loadLibc()` completed');
  return loaded;
}
