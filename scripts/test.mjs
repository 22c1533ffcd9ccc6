#!/usr/bin/env node
// The whole test suite: unit and native/kernel tests once, then the
// server-backed tests (test/server) once per JavaScript runtime present,
// with the server under that runtime. Prints one closing summary line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const vitest = bin('vitest');
const extra = process.argv.slice(2);

const runtimes = ['node'];
for (const rt of ['bun', 'deno']) {
  if (existsSync(bin(rt))) runtimes.push(rt);
  else console.log(`peapod tests: ${rt} is not installed (npm install adds it); skipping the ${rt} server run`);
}

const tmp = mkdtempSync(join(tmpdir(), 'peapod-vitest-'));
const results = [];

function run(label, args, env) {
  const out = join(tmp, `${label}.json`);
  console.log(`\n=== ${label} ===`);
  const res = spawnSync(vitest, ['run', ...args, '--reporter=default', '--reporter=json', `--outputFile=${out}`, ...extra], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures = [];
  if (existsSync(out)) {
    const json = JSON.parse(readFileSync(out, 'utf8'));
    passed = json.numPassedTests;
    failed = json.numFailedTests + (json.numRuntimeErrorTestSuites ?? 0);
    skipped = json.numPendingTests + json.numTodoTests;
    failures.push(...failuresOf(json));
  }
  if (res.status !== 0 && failed === 0) failed = 1; // a crash or a file that failed to load
  results.push({ label, passed, failed, skipped, failures });
}

// Only the summary is sure to be seen (CI keeps the tail of the output), so
// it names each failure with the first line of its message.
function failuresOf(json) {
  const list = [];
  for (const file of json.testResults ?? []) {
    const rel = file.name.startsWith(root) ? file.name.slice(root.length + 1) : file.name;
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) list.push(`${rel}: ${firstLine(file.message)}`);
    for (const t of file.assertionResults ?? []) {
      if (t.status === 'failed') list.push(`${rel} > ${t.fullName}: ${firstLine(t.failureMessages?.[0])}`);
    }
  }
  return list;
}

function firstLine(text) {
  return String(text ?? '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300) ?? '';
}

run('unit, native, kernel and fuzz tests', ['test/unit', 'test/integration', 'test/fuzz'], { PEAPOD_TEST_RUNTIME: 'node' });
// Three files at once: a server test waits on pods (probe periods, back-offs, grace
// periods) much of its time, so a third fits on 2 cores (about 5 → 3.5 minutes a runtime).
for (const rt of runtimes) run(`server on ${rt}`, ['test/server', '--maxWorkers=3'], { PEAPOD_TEST_RUNTIME: rt });
rmSync(tmp, { recursive: true, force: true });

console.log('\n=== summary ===');
for (const r of results) {
  console.log(`${r.label}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
  for (const f of r.failures) console.log(`  FAILED ${f}`);
}
console.log(`runtimes: ${runtimes.join(', ')}`);
const total = results.reduce((a, r) => ({ p: a.p + r.passed, f: a.f + r.failed, s: a.s + r.skipped }), { p: 0, f: 0, s: 0 });
console.log(`total: ${total.p} passed, ${total.f} failed, ${total.s} skipped`);
process.exit(total.f === 0 ? 0 : 1);
