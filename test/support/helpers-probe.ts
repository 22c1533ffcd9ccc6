// The helper spawner (src/linux/helpers.ts) under whichever runtime runs this
// file, as test/unit/helpers-runtimes.test.ts does under Node, Bun and Deno
// (see support/runtimes.ts): posix_spawn through that runtime's FFI, the
// report socket, the exit poll, the reaper. Fake helpers run under the Node
// given in PEAPOD_TEST_NODE. Prints one JSON line.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  console.log(JSON.stringify({ backend: libc.backend, first, later, reaped, crash, killed, stdout: readFileSync(outFile, 'utf8') }));
} finally {
  reaper.stop();
  await helpers.close();
  rmSync(dir, { recursive: true, force: true });
}
