import { expect } from 'vitest';
import { isKind, PeapodError } from '../../src/errors.js';

/** The PeapodError `p` rejects with (fails the test if it resolves or rejects with anything else). */
export async function failure(p: Promise<unknown>): Promise<PeapodError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PeapodError);
  return e as PeapodError;
}

/** The message of the InvalidArgument `call` throws (fails the test if it returns or throws anything else). */
export function refusal(call: () => unknown): string {
  try {
    call();
  } catch (e) {
    expect(isKind(e, 'InvalidArgument'), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('accepted');
}
