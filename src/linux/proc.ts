import { readdirSync, readFileSync } from 'node:fs';

/** A process named by pid and start time, so a reused pid is never mistaken for it. */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot. */
  startTime: string;
}

export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  startTime: string;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), startTime: rest[19]! };
}

export function identify(pid: number): ProcessIdentity | undefined {
  const stat = readProcStat(pid);
  return stat && { pid, startTime: stat.startTime };
}

/** True while the very process (not a pid reuse) runs; a zombie is not alive. */
export function isAlive(id: ProcessIdentity): boolean {
  const stat = readProcStat(id.pid);
  return stat !== undefined && stat.startTime === id.startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/**
 * Every process whose argv is exactly `argv`, or ends with it (a scan of /proc).
 * A fork not yet exec'd (a shell's child, a monitor's init before its exec)
 * shows its parent's argv: a match whose parent matches too is left out.
 */
export function processesWithArgv(argv: string[], match: 'exact' | 'suffix' = 'exact'): ProcessIdentity[] {
  const want = argv.join('\0') + '\0';
  const matches = (cmdline: string) => (match === 'exact' ? cmdline === want : cmdline.endsWith('\0' + want));
  const found: (ProcessIdentity & { ppid: number })[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // utf8 as the argv it is compared with (a path with "ü" in it).
      if (!matches(readFileSync(`/proc/${name}/cmdline`, 'utf8'))) continue;
    } catch {
      continue; // gone
    }
    const stat = readProcStat(Number(name));
    if (stat) found.push({ pid: Number(name), startTime: stat.startTime, ppid: stat.ppid });
  }
  const pids = new Set(found.map((p) => p.pid));
  return found.filter((p) => !pids.has(p.ppid)).map(({ pid, startTime }) => ({ pid, startTime }));
}
