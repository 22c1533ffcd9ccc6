import { readFileSync } from 'node:fs';
import { isAlive, type ProcessIdentity } from './proc.js';

/** One interface's counters; 64-bit, so decimal strings. */
export interface InterfaceCounters {
  name: string;
  rxBytes: string;
  rxPackets: string;
  rxErrors: string;
  rxDropped: string;
  txBytes: string;
  txPackets: string;
  txErrors: string;
  txDropped: string;
}

/**
 * /proc/net/dev: after two header lines, `NAME: ` and 16 counters, receive
 * (bytes packets errs …) then transmit (bytes packets errs …). A name has
 * no ':' (the kernel refuses one) and may be followed by no space.
 */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (f.length < 16 || !f.every((n) => /^\d+$/.test(n))) continue;
    const [rxBytes, rxPackets, rxErrors, rxDropped] = f;
    const [txBytes, txPackets, txErrors, txDropped] = f.slice(8);
    out.push({ name: line.slice(0, colon).trim(), rxBytes: rxBytes!, rxPackets: rxPackets!, rxErrors: rxErrors!, rxDropped: rxDropped!, txBytes: txBytes!, txPackets: txPackets!, txErrors: txErrors!, txDropped: txDropped! });
  }
  return out;
}

/**
 * The interfaces of the network namespace `proc` is in: /proc/PID/net shows
 * its namespace, so no thread enters it. Undefined once the process is gone
 * (checked after the read: the pid may name another process by then).
 */
export function interfacesOf(proc: ProcessIdentity): InterfaceCounters[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${proc.pid}/net/dev`, 'latin1');
  } catch {
    return undefined;
  }
  return isAlive(proc) ? parseNetDev(text) : undefined;
}
