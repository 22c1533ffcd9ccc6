/**
 * Nanoseconds since the epoch (CRI timestamps), from the real-time clock the
 * native monitor also uses, truncated to the millisecond: a time taken here
 * never lies after one the monitor records later.
 */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
