// /proc lookups the server uses to find processes it has no record of.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { identify, isAlive, processesWithArgv } from '../../src/linux/proc.js';

describe('processesWithArgv', () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterEach(() => {
    // Each runs in its own process group: its sleeps go with it.
    for (const c of children.splice(0)) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('finds a process by its whole argv or by its last arguments, whole arguments only', async () => {
    // Not ASCII: /proc holds the UTF-8 bytes of the argv.
    const dir = `/tmp/peapod-proc-tëst-${randomBytes(6).toString('hex')}`;
    const argv = ['/bin/sh', '-c', 'sleep 30', 'sh', '--dir', dir];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: true });
    children.push(child);
    await new Promise((r) => child.once('spawn', r));
    const me = identify(child.pid!)!;
    expect(isAlive(me)).toBe(true);
    expect(processesWithArgv(argv)).toEqual([me]);
    expect(processesWithArgv(['--dir', dir], 'suffix')).toEqual([me]);
    // Not a suffix of whole arguments, or not the end.
    expect(processesWithArgv(['-dir', dir], 'suffix')).toEqual([]);
    expect(processesWithArgv(['sh', '--dir'], 'suffix')).toEqual([]);
    expect(processesWithArgv(['--dir', dir])).toEqual([]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(processesWithArgv(argv)).toEqual([]);
    expect(isAlive(me)).toBe(false);
  });

  it("leaves out a fork that has not exec'd, which shows its parent's argv", async () => {
    const dir = `/tmp/peapod-proc-fork-${randomBytes(6).toString('hex')}`;
    // The subshell is a fork of sh that never execs: it runs sleep as a child
    // and waits, with sh's argv all the while.
    const argv = ['/bin/sh', '-c', '(sleep 30; :) & wait', 'sh', '--dir', dir];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: true });
    children.push(child);
    await new Promise((r) => child.once('spawn', r));
    const me = identify(child.pid!)!;
    const subshell = async () => {
      for (let i = 0; i < 100; i++) {
        const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
        if (kids) return Number(kids.split(' ')[0]);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('sh forked no subshell');
    };
    const fork = await subshell();
    expect(readFileSync(`/proc/${fork}/cmdline`, 'utf8')).toBe(argv.join('\0') + '\0');
    expect(processesWithArgv(argv)).toEqual([me]);
    expect(processesWithArgv(['--dir', dir], 'suffix')).toEqual([me]);
  });
});
