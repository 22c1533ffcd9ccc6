// The helper spawner (src/linux/helpers.ts) with fake helpers
// (support/fake-helper.ts) started through posix_spawn: they report, crash
// without a word, or report after a delay so that their exit is seen first.
// Under Node here; test/unit/helpers-runtimes.test.ts runs the main cases
// under Bun and Deno.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { control } from '../../src/container/monitor.js';
import { libc, loadLibc, O_RDONLY, O_WRONLY, SIGKILL } from '../../src/ffi/index.js';
import { Helpers } from '../../src/linux/helpers.js';
import { identify, readProcStat } from '../../src/linux/proc.js';
import { Reaper } from '../../src/linux/reaper.js';
import { fakeHelper } from '../support/fake-helper.js';
import { until } from '../support/wait.js';

let dir: string;
let helpers: Helpers;
const reaper = new Reaper();

const fake = (name: string, body: string) => fakeHelper(dir, name, body);

beforeAll(async () => {
  await loadLibc();
  // As the server does: a helper not yet gone when its last report arrives is reaped within a second.
  reaper.start();
  dir = mkdtempSync(join(tmpdir(), 'peapod-helpers-'));
  helpers = new Helpers(join(dir, 'helpers.sock'), reaper);
  await helpers.listen();
});

afterAll(async () => {
  reaper.stop();
  await helpers.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Helpers: posix_spawn and reports on the socket', () => {
  it('resolves with the first report and hears later ones through subscribe; the helper is reaped', async () => {
    const later: string[] = [];
    helpers.subscribe('k-ok', (m) => later.push(`${m.word} ${m.text}`));
    const h = helpers.spawn(fake('ok', `await report('created', '42'); await new Promise((r) => setTimeout(r, 200)); await report('exited', '0');`), ['extra'], 'k-ok', { stderr: join(dir, 'ok.log') });
    expect(await h.report).toEqual({ word: 'created', text: '42' });
    await until('the later report', () => later.length === 1);
    expect(later).toEqual(['exited 0']);
    // Reaped, not just dead: a zombie would still have its /proc entry.
    await until('the helper reaped', () => !existsSync(`/proc/${h.pid}`), 5000);
    helpers.unsubscribe('k-ok');
  });

  it('the connection of a "created" report takes commands until released; a lost one fails its command', async () => {
    // As native/monitor.c does: the "created" line, then one reply line per command on the same connection.
    const h = helpers.spawn(
      fake('chan', `const c = net.connect(sock, () => c.write(key + ' created 42\\n')); let b = ''; c.setEncoding('utf8'); c.on('data', (d) => { b += d; let i; while ((i = b.indexOf('\\n')) >= 0) { const l = b.slice(0, i); b = b.slice(i + 1); if (l === 'hang up') c.destroy(); else c.write('ok got-' + l + '\\n'); } }); c.on('close', () => process.exit(0));`),
      [],
      'k-chan',
      { stderr: join(dir, 'chan.log') },
    );
    expect(await h.report).toEqual({ word: 'created', text: '42' });
    expect(await helpers.command('k-chan', 'ping', 5000)).toBe('ok got-ping');
    const [a, b] = await Promise.all([helpers.command('k-chan', 'one', 5000), helpers.command('k-chan', 'two', 5000)]);
    expect([a, b]).toEqual(['ok got-one', 'ok got-two']);
    expect(helpers.command('other-key', 'ping', 5000)).toBeUndefined();
    helpers.release('k-chan');
    expect(helpers.command('k-chan', 'ping', 5000)).toBeUndefined();
    await until('the helper to see the end and exit', () => !existsSync(`/proc/${h.pid}`), 5000);

    const lost = helpers.spawn(fake('chan2', `const c = net.connect(sock, () => c.write(key + ' created 43\\n')); c.on('data', () => c.destroy()); c.on('close', () => process.exit(0));`), [], 'k-chan2', { stderr: join(dir, 'chan2.log') });
    await lost.report;
    await expect(helpers.command('k-chan2', 'hang up', 5000)).rejects.toThrow(/closed the connection/);
    expect(helpers.command('k-chan2', 'ping', 5000)).toBeUndefined();
  });

  it('a helper that dies without a report fails with its status and the last line of its stderr', async () => {
    const h = helpers.spawn(fake('crash', `console.error('boom: no config'); process.exit(3);`), [], 'k-crash', { stderr: join(dir, 'crash.log') });
    await expect(h.report).rejects.toThrow(/^crash exited with status 3: boom: no config$/);
  });

  it('exit 0 seen before the report: the report is still awaited and delivered', async () => {
    // The fake exits 0 at once; a child it leaves behind reports 300 ms later,
    // long after the server's exit poll (10 ms) has seen the exit. That child
    // reports its pid: it is this process's child by then (a subreaper), to be reaped.
    const h = helpers.spawn(
      fake('late', `require('node:child_process').spawn(process.execPath, ['-e', \`setTimeout(() => { const c = require('node:net').connect(\${JSON.stringify(sock)}, () => c.end(\${JSON.stringify(key)} + ' ok ' + process.pid + '\\\\n')); }, 300)\`], { detached: true, stdio: 'ignore' }).unref(); process.exit(0);`),
      [],
      'k-late',
      { stderr: join(dir, 'late.log') },
    );
    const { word, text } = await h.report;
    expect(word).toBe('ok');
    const orphan = Number(text);
    // It exits once the report's connection is closed (not blocking meanwhile: that is this thread's job).
    await until('the orphan exited', () => readProcStat(orphan)?.state === 'Z', 5000);
    expect(libc().waitpid(orphan, 0).pid).toBe(orphan);
  });

  it('with exitReports the exit is the report when it comes first (ExecSync): 128+N for a signal', async () => {
    const h = helpers.spawn(fake('killed', `process.kill(process.pid, 'SIGKILL');`), [], 'k-exit', { stderr: join(dir, 'killed.log'), exitReports: true });
    expect(await h.report).toEqual({ word: 'exited', text: '137' });
  });

  it('stdout goes to the file asked for, and a key cannot start twice at once', async () => {
    const out = join(dir, 'out.txt');
    const h = helpers.spawn(fake('out', `process.stdout.write('hello'); await report('exited', '0');`), [], 'k-out', { stdout: out, stderr: join(dir, 'out.log'), exitReports: true });
    expect(() => helpers.spawn('/bin/true', [], 'k-out', { stderr: join(dir, 'x.log') })).toThrow(/already starting/);
    await h.report;
    await until('the output', () => readFileSync(out, 'utf8') === 'hello');
  });
});

describe('control(): a command whose connection is lost is asked again on the control socket', () => {
  // As native/monitor.c: the kept connection of the "created" report, and control.sock in the container's dir.
  // This one hangs up on the first command (it may or may not have acted on it) and answers `reply` on control.sock.
  async function lostThenAsk(name: string, command: string, reply: string): Promise<{ result: Promise<string>; heard: () => string[] }> {
    const cdir = join(dir, `${name}.d`);
    mkdirSync(cdir);
    const heard = join(cdir, 'heard');
    const h = helpers.spawn(
      fake(
        name,
        `const fs = require('node:fs');
         const cs = net.createServer((s) => { s.setEncoding('utf8'); s.on('data', (d) => { fs.appendFileSync(${JSON.stringify(heard)}, 'control ' + d); s.end(${JSON.stringify(reply)} + '\\n'); }); });
         cs.listen(${JSON.stringify(join(cdir, 'control.sock'))}, () => {
           const c = net.connect(sock, () => c.write(key + ' created 44\\n'));
           c.setEncoding('utf8');
           c.on('data', (d) => { fs.appendFileSync(${JSON.stringify(heard)}, 'kept ' + d); c.destroy(); });
         });
         setTimeout(() => process.exit(0), 10000);`,
      ),
      [],
      `k-${name}`,
      { stderr: join(dir, `${name}.log`) },
    );
    expect(await h.report).toEqual({ word: 'created', text: '44' });
    return { result: control(helpers, `k-${name}`, cdir, command, 5000), heard: () => readFileSync(heard, 'utf8').trim().split('\n') };
  }

  it('the reply comes from the control socket; the monitor heard the command on both', async () => {
    const { result, heard } = await lostThenAsk('starting', 'start', 'ok 1763884800123456789');
    expect(await result).toBe('1763884800123456789');
    expect(heard()).toEqual(['kept start', 'control start']);
  });

  it('an error on the control socket is the caller\'s FAILED_PRECONDITION (a start that was done: the caller reads monitor.json)', async () => {
    await expect((await lostThenAsk('started', 'start', 'error container already started')).result).rejects.toMatchObject({ kind: 'FailedPrecondition', message: 'container already started' });
  });
});

describe('Reaper: a wait for one process reaps that one only', () => {
  /** A child started as the server starts its helpers (posix_spawn: the runtime does not know it). */
  const child = (script: string) =>
    libc().spawn('/bin/sh', ['sh', '-c', script], {
      env: [],
      files: [
        { fd: 0, path: '/dev/null', flags: O_RDONLY },
        { fd: 1, path: '/dev/null', flags: O_WRONLY },
        { fd: 2, path: '/dev/null', flags: O_WRONLY },
      ],
    });
  const zombie = (pid: number) => readProcStat(pid)?.state === 'Z';

  it('collectKey and waitGone reap their own process and leave the other watched ones to the sweep', async () => {
    const own = new Reaper();
    const [a, b, c] = [child('exit 0'), child('exit 0'), child('sleep 30')];
    own.watch(a, 'key-a');
    own.watch(b, 'key-b');
    own.watch(c);
    await until('both exited', () => zombie(a) && zombie(b));
    own.collectKey('key-a');
    expect(existsSync(`/proc/${a}`)).toBe(false);
    expect(zombie(b)).toBe(true);
    own.collectKey('key-a'); // already collected: nothing to do
    const cid = identify(c)!;
    libc().kill(c, SIGKILL);
    await own.waitGone(cid, 5000);
    expect(existsSync(`/proc/${c}`)).toBe(false);
    expect(zombie(b)).toBe(true);
    own.reap();
    expect(existsSync(`/proc/${b}`)).toBe(false);
  });

  it('the sweep waits only for the children that exited, not for every watched one', async () => {
    const waited: number[] = [];
    const own = new Reaper(() => ({
      waitid: libc().waitid,
      waitpid: (pid, options) => {
        waited.push(pid);
        return libc().waitpid(pid, options);
      },
    }));
    const running = Array.from({ length: 40 }, () => child('sleep 30'));
    const [a, b] = [child('exit 0'), child('exit 0')];
    for (const pid of [...running, a, b]) own.watch(pid);
    await until('both exited', () => zombie(a) && zombie(b));
    // Every helper the tests above started has been reaped by now (else its zombie, not watched here, would hide a and b).
    reaper.reap();
    own.reap();
    expect(waited.sort()).toEqual([a, b].sort());
    expect(existsSync(`/proc/${a}`) || existsSync(`/proc/${b}`)).toBe(false);
    for (const pid of running) {
      expect(readProcStat(pid)?.state).toMatch(/^[SR]$/);
      libc().kill(pid, SIGKILL);
    }
    await until('the sleeps exited', () => running.every(zombie));
    own.reap();
    expect(running.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
  });

  it('an exited child that is not watched does not keep the sweep from the watched ones', async () => {
    const own = new Reaper();
    const [stranger, a] = [child('exit 0'), child('exit 0')];
    own.watch(a);
    await until('both exited', () => zombie(stranger) && zombie(a));
    own.reap();
    expect(existsSync(`/proc/${a}`)).toBe(false);
    expect(zombie(stranger)).toBe(true);
    expect(libc().waitpid(stranger, 0).pid).toBe(stranger);
  });
});
