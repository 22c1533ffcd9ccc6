// The helper spawner (src/linux/helpers.ts) under whichever runtime runs this
// file, as test/unit/helpers-runtimes.test.ts does under Node, Bun and Deno
// (see support/runtimes.ts): posix_spawn through that runtime's FFI, the
// report socket and the command connection, the exit poll, the reaper. Fake
// helpers run under the Node given in PEAPOD_TEST_NODE. Prints one JSON line.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { control } from '../../src/container/monitor.js';
import { loadLibc } from '../../src/ffi/index.js';
import { Helpers } from '../../src/linux/helpers.js';
import { Reaper } from '../../src/linux/reaper.js';
import { fakeHelper } from './fake-helper.js';

const node = process.env.PEAPOD_TEST_NODE ?? 'node';
const dir = mkdtempSync(join(tmpdir(), 'peapod-helpers-probe-'));
const reaper = new Reaper();
const helpers = new Helpers(join(dir, 'helpers.sock'), reaper);
const fake = (name: string, body: string) => fakeHelper(dir, name, body, node);
const settle = (p: Promise<unknown>) => p.then((v) => ({ ok: v }), (e: Error) => ({ error: e.message }));

async function until(test: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) if (test()) return true;
  return test();
}

const libc = await loadLibc();
reaper.start(); // as the server does
await helpers.listen();
try {
  const later: string[] = [];
  helpers.subscribe('k-ok', (m) => later.push(`${m.word} ${m.text}`));
  const ok = helpers.spawn(fake('ok', `await report('created', '42'); await new Promise((r) => setTimeout(r, 100)); await report('exited', '0');`), [], 'k-ok', { stderr: join(dir, 'ok.log') });
  const first = await settle(ok.report);
  await until(() => later.length > 0, 5000);
  const reaped = await until(() => !existsSync(`/proc/${ok.pid}`), 5000);

  const crash = await settle(helpers.spawn(fake('crash', `console.error('boom: no config'); process.exit(3);`), [], 'k-crash', { stderr: join(dir, 'crash.log') }).report);
  const killed = await settle(helpers.spawn(fake('killed', `process.kill(process.pid, 'SIGKILL');`), [], 'k-exit', { stderr: join(dir, 'killed.log'), exitReports: true }).report);
  const outFile = join(dir, 'out.txt');
  const out = helpers.spawn(fake('out', `process.stdout.write('hello'); await report('exited', '0');`), [], 'k-out', { stdout: outFile, stderr: join(dir, 'out.log'), exitReports: true });
  await out.report;
  await until(() => readFileSync(outFile, 'utf8') === 'hello', 5000);

  // The connection of a "created" report carries commands (as native/monitor.c), until released or lost.
  const chan = helpers.spawn(
    fake('chan', `const c = net.connect(sock, () => c.write(key + ' created 43\\n')); let b = ''; c.setEncoding('utf8'); c.on('data', (d) => { b += d; let i; while ((i = b.indexOf('\\n')) >= 0) { const l = b.slice(0, i); b = b.slice(i + 1); if (l === 'hang up') c.destroy(); else c.write('ok got-' + l + '\\n'); } }); c.on('close', () => process.exit(0));`),
    [],
    'k-chan',
    { stderr: join(dir, 'chan.log') },
  );
  await chan.report;
  const replies = await Promise.all([helpers.command('k-chan', 'one', 5000), helpers.command('k-chan', 'two', 5000)]);
  const lost = await settle(helpers.command('k-chan', 'hang up', 5000)!);
  const heldAfterLoss = helpers.command('k-chan', 'ping', 5000) !== undefined;

  // A command whose connection is lost is asked again on control.sock.
  const cdir = join(dir, 'ctl');
  mkdirSync(cdir);
  const retry = helpers.spawn(
    fake('retry', `net.createServer((s) => s.once('data', () => s.end('ok 1763884800123456789\\n'))).listen(${JSON.stringify(join(cdir, 'control.sock'))}, () => { const c = net.connect(sock, () => c.write(key + ' created 44\\n')); c.on('data', () => c.destroy()); }); setTimeout(() => process.exit(0), 10000);`),
    [],
    'k-retry',
    { stderr: join(dir, 'retry.log') },
  );
  await retry.report;
  const retried = await settle(control(helpers, 'k-retry', cdir, 'start', 5000));
  libc.kill(retry.pid, 9);

  console.log(JSON.stringify({ backend: libc.backend, first, later, reaped, crash, killed, stdout: readFileSync(outFile, 'utf8'), replies, lost, heldAfterLoss, retried }));
} finally {
  reaper.stop();
  await helpers.close();
  rmSync(dir, { recursive: true, force: true });
}
