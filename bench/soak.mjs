#!/usr/bin/env node
// Soak: 8 clients keep about 100 pods (each with a busybox container) alive,
// creating and removing them for --seconds (default 600), sampling the
// server's memory. At the end: errors, leaks (mounts, processes, cgroups,
// state dirs) and the memory trend. A bench run, not a CI test.
// Usage: node bench/soak.mjs [--seconds N] [--pods N] [--runtime node|bun|deno]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { podConfig, repoRoot, rssKiB, startPeapod } from './lib.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    pods: { type: 'string', default: '100' },
    runtime: { type: 'string', default: 'node' },
  },
});
const until = Date.now() + Number(values.seconds) * 1000;
const target = Number(values.pods);
const server = await startPeapod(values.runtime, ['--network', 'none']);
const rt = server.client.runtime;
execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'image', 'load', join(repoRoot, 'images', 'build', 'busybox.tar'), '--socket', server.socket], { stdio: 'ignore' });

const live = [];
let created = 0;
let removed = 0;
const errors = [];
const samples = [];
const sampler = setInterval(() => samples.push({ t: Date.now(), rss: rssKiB(server.pid), live: live.length }), 10_000);

async function client(c) {
  for (let i = 0; Date.now() < until; i++) {
    try {
      if (live.length >= target) {
        const id = live.shift();
        await rt.StopPodSandbox({ podSandboxId: id });
        await rt.RemovePodSandbox({ podSandboxId: id });
        removed++;
        continue;
      }
      const cfg = podConfig(`soak-${c}-${i}`);
      const { podSandboxId } = await rt.RunPodSandbox({ config: cfg });
      const { containerId } = await rt.CreateContainer({
        podSandboxId,
        config: { metadata: { name: 'c' }, image: { image: 'busybox' }, command: ['sleep', '3600'] },
        sandboxConfig: cfg,
      });
      await rt.StartContainer({ containerId });
      live.push(podSandboxId);
      created++;
    } catch (err) {
      errors.push(String(err));
    }
  }
}

await Promise.all(Array.from({ length: 8 }, (_, c) => client(c)));
clearInterval(sampler);
for (const id of live.splice(0)) {
  await rt.RemovePodSandbox({ podSandboxId: id });
  removed++;
}
const base = server.base;
const leftMounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(base)).length;
const children = readdirSync('/proc').filter((p) => {
  try {
    return /^\d+$/.test(p) && readFileSync(`/proc/${p}/status`, 'utf8').match(/PPid:\s+(\d+)/)[1] === String(server.pid);
  } catch {
    return false;
  }
});
// The spare monitors waiting for a container (their FIFO still there) are the server's own.
const isSpare = (p) => {
  try {
    const argv = readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0');
    return argv.includes('--wait') && existsSync(argv[argv.indexOf('--wait') + 1]);
  } catch {
    return false;
  }
};
const spares = children.filter(isSpare);
const leftProcs = children.filter((p) => !isSpare(p));
const leftCgroups = existsSync('/sys/fs/cgroup/memory/peapod') ? readdirSync('/sys/fs/cgroup/memory/peapod').filter((n) => /^[0-9a-f]{64}$/.test(n)).length : 0;
const entries = (d) => (existsSync(d) ? readdirSync(d).length : 0);
const leftDirs = ['sandboxes', 'containers'].map((k) => entries(join(base, 'state', k)) + entries(join(base, 'root', k)));
await server.stop();

const first = samples.slice(0, 3);
const last = samples.slice(-3);
const avg = (xs) => xs.reduce((a, s) => a + s.rss, 0) / Math.max(1, xs.length) / 1024;
console.log(`soak: ${values.seconds} s, runtime ${values.runtime}, ${created} pods created, ${removed} removed, ${errors.length} errors`);
if (errors.length) console.log(`first errors:\n  ${errors.slice(0, 5).join('\n  ')}`);
console.log(`server RSS: ${avg(first).toFixed(1)} MiB at the start, ${avg(last).toFixed(1)} MiB at the end (samples every 10 s: ${samples.map((s) => (s.rss / 1024).toFixed(0)).join(' ')})`);
console.log(`left behind: ${leftMounts} mounts, ${leftProcs.length} child processes (besides ${spares.length} spare monitors, gone with the server: ${spares.every((p) => !existsSync(`/proc/${p}/cmdline`) || /State:\s+Z/.test(readFileSync(`/proc/${p}/status`, 'utf8')))}), ${leftCgroups} pod cgroups, ${leftDirs[0] + leftDirs[1]} record/state dirs`);
