// awaitPause against real processes: pause's pid is reported by its launcher
// just before the launcher exits, and only after that exit is pause a child of
// the server (a child subreaper), which the reaper and a kill rely on.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libc, loadLibc } from '../../src/ffi/index.js';
import { PR_SET_CHILD_SUBREAPER, SIGKILL } from '../../src/ffi/constants.js';
import { readProcStat } from '../../src/linux/proc.js';
import { awaitPause } from '../../src/sandbox/pause.js';

describe('awaitPause', () => {
  // This test process stands in for the server: orphans of its children come to it.
  beforeAll(async () => {
    await loadLibc();
    libc().prctl(PR_SET_CHILD_SUBREAPER, 1);
  });
  afterAll(() => void libc().prctl(PR_SET_CHILD_SUBREAPER, 0));

  it('returns once the launcher has exited and pause is the caller’s child', async () => {
    // A launcher that reports its child's pid, then takes 300 ms to exit.
    const launcher = spawn('/bin/sh', ['-c', 'sleep 30 & echo $!; sleep 0.3'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => createInterface({ input: launcher.stdout! }).once('line', resolve));
    const started = Date.now();
    const id = await awaitPause({ pid: launcher.pid!, report: Promise.resolve({ word: 'ok', text: line }) });
    try {
      expect(id.pid).toBe(Number(line));
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      expect(readProcStat(id.pid)?.ppid).toBe(process.pid);
    } finally {
      process.kill(id.pid, SIGKILL);
      // Ours to reap when it is our child (Node's child_process knows only the launcher), else the launcher reaps it.
      if (readProcStat(id.pid)?.ppid === process.pid) libc().waitpid(id.pid, 0);
    }
  });
});
