// /proc lookups the server uses to find processes it has no record of.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { identify, isAlive, processesWithArgv } from '../../src/linux/proc.js';

describe('processesWithArgv', () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  it('finds a process by its whole argv or by its last arguments, whole arguments only', async () => {
    // Not ASCII: /proc holds the UTF-8 bytes of the argv.
    const dir = `/tmp/peapod-proc-tëst-${randomBytes(6).toString('hex')}`;
    const argv = ['/bin/sh', '-c', 'sleep 30', 'sh', '--dir', dir];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
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
});
