import { expect } from 'vitest';
import { PeapodError } from '../../src/errors.js';

/** The PeapodError `p` rejects with (fails the test if it resolves or rejects with anything else). */
export async function failure(p: Promise<unknown>): Promise<PeapodError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PeapodError);
  return e as PeapodError;
}
