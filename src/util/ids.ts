import { randomBytes } from 'node:crypto';
import { invalidArgument, notFound } from '../errors.js';

/** A new 64-hex-character identifier, the form CRI clients expect. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Resolves a full id or a unique prefix of one among `ids`.
 * Returns undefined when nothing matches; an ambiguous prefix is an error.
 */
export function matchIdPrefix(ids: Iterable<string>, prefix: string): string | undefined {
  if (prefix === '') return undefined;
  let found: string | undefined;
  for (const id of ids) {
    if (id === prefix) return id;
    if (id.startsWith(prefix)) {
      if (found !== undefined) throw invalidArgument(`id prefix "${prefix}" is ambiguous`);
      found = id;
    }
  }
  return found;
}

/** Like matchIdPrefix, but a missing id is NotFound. */
export function resolveId(ids: Iterable<string>, prefix: string, what: string): string {
  if (prefix === '') throw invalidArgument(`${what} id is required`);
  const id = matchIdPrefix(ids, prefix);
  if (id === undefined) throw notFound(`${what} "${prefix}" not found`);
  return id;
}
