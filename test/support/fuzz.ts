// Shared settings of the fuzz tests (test/fuzz): a bounded number of runs in
// CI, PEAPOD_FUZZ_RUNS=100000 (and PEAPOD_FUZZ_SEED to replay) for long runs by hand.
import { PeapodError } from '../../src/errors.js';

export const FUZZ_RUNS = Number(process.env.PEAPOD_FUZZ_RUNS ?? 200);

/** fast-check parameters: the run count, and the seed when one is given to replay a failure. */
export function fuzzParams(runs = FUZZ_RUNS): { numRuns: number; seed?: number; endOnFailure: boolean } {
  const p: { numRuns: number; seed?: number; endOnFailure: boolean } = { numRuns: runs, endOnFailure: true };
  if (process.env.PEAPOD_FUZZ_SEED) p.seed = Number(process.env.PEAPOD_FUZZ_SEED);
  return p;
}

/** A vitest timeout that grows with the run count. */
export const fuzzTimeout = (perRunMs = 50, runs = FUZZ_RUNS) => Math.max(60_000, runs * perRunMs * 2);

/** Rejects when `p` takes longer than `ms`: a case that hangs fails instead of stalling the suite. */
export async function withinMs<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: hung for ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn`; a thrown error must be a PeapodError (typed), anything else is rethrown. */
export async function typedOnly<T>(fn: () => Promise<T> | T): Promise<T | PeapodError> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PeapodError) return err;
    throw err;
  }
}
