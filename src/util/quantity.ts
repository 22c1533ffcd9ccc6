// Kubernetes resource quantities, as the API server parses them: pod
// manifests' resources and volumes, and the bandwidth annotations sent to CNI.

import { invalidArgument } from '../errors.js';

const suffixes: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes resource quantity ("500m", "64Mi", "1.5", "1e3") as a number of base units. */
export function parseQuantity(value: unknown, path: string): number {
  const s = typeof value === 'number' ? String(value) : value;
  if (typeof s !== 'string') throw invalidArgument(`${path} must be a quantity such as "500m" or "64Mi"`);
  // A suffix or an exponent, never both ("1e3Mi" is refused, as the API server refuses it).
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?)$/.exec(s.trim());
  if (!m) throw invalidArgument(`${path} "${s}" is not a valid quantity`);
  const suffix = m[2] ?? '';
  const n = Number(m[1]!.slice(0, m[1]!.length - suffix.length)) * suffixes[suffix]!;
  if (!Number.isFinite(n) || n < 0) throw invalidArgument(`${path} "${s}" is not a valid quantity`);
  return n;
}
