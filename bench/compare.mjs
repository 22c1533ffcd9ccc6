#!/usr/bin/env node
// peapod against containerd + runc (Debian's), same scenarios, same CRI client,
// same pause and busybox images, in one run. Prints a table with ratios.
// Usage: node bench/compare.mjs [--pods N] [--warmup N] [--churn-seconds S] [--runtime node|bun|deno] [--no-containerd] [--journaled-root] [--chart FILE.svg]
// --warmup: pods, each with a container, run and removed on each side before
// anything is measured (default 20): a node's runtime has long been running.
// --churn-seconds: how long 8 clients churn pods on each side (default 10).
// --journaled-root: each runtime's root (layers, snapshots) on its own fresh
// journaled ext4, as on a node (this VM's root file system has no journal).
// With containerd, a last phase runs both runtimes at once and alternates
// RunPodSandbox and Create+Start between them, pod by pod (see interleaved()),
// back to back and then again with each call timed once the machine is quiet.
// Needs root, a built tree (npm run build) and images/build/*.tar (node images/build.mjs);
// installs Debian's containerd and runc when they are missing.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { criClient } from '../dist/cri/client.js';
import { barChartSvg } from './chart.mjs';
import { isWorkload, killMatching, mountJournaledFs, podConfig, pssKiB, repoRoot, rssKiB, rssOfMatching, settle, startPeapod, stats, timed, treeRssKiB } from './lib.mjs';

const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '20' },
    'churn-seconds': { type: 'string', default: '10' },
    runtime: { type: 'string', default: 'node' },
    'no-containerd': { type: 'boolean', default: false },
    'journaled-root': { type: 'boolean', default: false },
    chart: { type: 'string' },
  },
});
const N = Number(values.pods);
const BUSYBOX = 'docker.io/library/busybox:latest';
const images = join(repoRoot, 'images', 'build');

/** Debian's containerd (with ctr) and runc, installed when missing, as provision.sh installs the rest. */
function ensureContainerd() {
  const missing = ['containerd', 'runc'].filter((p) => {
    try {
      return !execFileSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
    } catch {
      return true; // not known to dpkg
    }
  });
  if (missing.length === 0) return;
  console.error(`compare: installing ${missing.join(' ')} from Debian`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
}

async function startContainerd() {
  const base = mkdtempSync(join(tmpdir(), 'peapod-bench-containerd-'));
  const sock = join(base, 'containerd.sock');
  mkdirSync(join(base, 'cni'));
  // containerd's state is /run/containerd on a node: a tmpfs, as peapod's is.
  mkdirSync(join(base, 'state'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0711', 'peapod-bench-containerd-state', join(base, 'state')]);
  const unmountRoot = values['journaled-root'] ? mountJournaledFs(join(base, 'root')) : () => {};
  writeFileSync(
    join(base, 'config.toml'),
    `version = 2
root = "${base}/root"
state = "${base}/state"
[grpc]
  address = "${sock}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  # This host's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj to -998.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${base}/cni"
`,
  );
  const cgroupsBefore = containerdCgroups();
  const child = spawn('containerd', ['--config', join(base, 'config.toml'), '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const client = criClient(sock);
  for (let i = 0; ; i++) {
    try {
      await client.runtime.Version({});
      break;
    } catch {}
    if (i > 300) throw new Error('containerd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const t0 = performance.now();
  for (const tar of ['busybox.tar', 'pause.tar']) {
    execFileSync('ctr', ['--address', sock, '-n', 'k8s.io', 'images', 'import', join(images, tar)], { stdio: 'ignore' });
    if (tar === 'busybox.tar') imageLoadMs.containerd ??= performance.now() - t0;
  }
  return {
    client,
    pid: child.pid,
    base,
    memory: () => rssOfMatching(base),
    pss: () => rssOfMatching(base, pssKiB),
    runtimeMemory: () => rssOfMatching(base, rssKiB, isWorkload),
    async stop() {
      client.close();
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
      killMatching(base); // shims outlive containerd, and their containers outlive them
      await removeNewCgroups(cgroupsBefore);
      try {
        execFileSync('sh', ['-c', `grep -o ' ${base}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
      } catch {}
      try {
        execFileSync('umount', ['-l', join(base, 'state')], { stdio: 'ignore' });
      } catch {} // already gone with the mounts above
      unmountRoot();
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** containerd's parent of the cgroups of pods without a cgroup_parent, in every hierarchy that has it. */
function containerdParents() {
  return readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, 'k8s.io')).filter((d) => existsSync(d));
}

/** The cgroups containerd gives pods without a cgroup_parent (k8s.io/<id>), and their parents. */
function containerdCgroups() {
  const parents = containerdParents();
  const out = new Set(parents);
  for (const dir of parents) for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.add(join(dir, e.name));
  return out;
}

/** Removes those made since `before`, children first (their processes were just killed: a few tries while they exit). */
async function removeNewCgroups(before) {
  for (let i = 0; i < 50; i++) {
    const left = [...containerdCgroups()].filter((d) => !before.has(d)).sort((a, b) => b.length - a.length);
    for (const d of left) try { rmdirSync(d); } catch {}
    if (left.every((d) => !existsSync(d))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Wall time of importing the busybox archive (client process included), per runtime. */
const imageLoadMs = {};

async function loadPeapodImages(server) {
  const t0 = performance.now();
  execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'image', 'load', join(images, 'busybox.tar'), '--socket', server.socket], { stdio: 'ignore' });
  imageLoadMs.peapod ??= performance.now() - t0;
}

/** Every scenario's container. */
const workload = () => ({ metadata: { name: 'c' }, image: { image: BUSYBOX }, command: ['sleep', '3600'] });

/** CreateContainer then StartContainer of the workload in pod `podSandboxId`; resolves to the container's id. */
async function createAndStart(rt, podSandboxId, sandboxConfig) {
  const { containerId } = await rt.CreateContainer({ podSandboxId, config: workload(), sandboxConfig });
  await rt.StartContainer({ containerId });
  return containerId;
}

/** Whole pod lives (container, start, exec, stop, remove): a node's runtime has long been running. */
async function warmUp(rt, hostNetwork) {
  for (let i = 0; i < Number(values.warmup); i++) {
    const config = podConfig(`warm-${i}`, hostNetwork);
    const { podSandboxId } = await rt.RunPodSandbox({ config });
    const containerId = await createAndStart(rt, podSandboxId, config);
    await rt.ExecSync({ containerId, cmd: ['true'], timeout: '10' });
    await rt.StopContainer({ containerId, timeout: '0' });
    await rt.RemoveContainer({ containerId });
    await rt.StopPodSandbox({ podSandboxId });
    await rt.RemovePodSandbox({ podSandboxId });
  }
}

/** The scenarios, on one CRI endpoint. */
async function scenarios(label, target, hostNetwork) {
  const rt = target.client.runtime;
  const res = { label };
  const pods = [];
  const ctrs = [];
  // Warm-up, on both sides: lazy loading, caches, and a JIT that has seen
  // every path of a pod's life (a node's runtime has run for days; the first
  // creates after a start run cold code and say nothing of the steady state).
  await warmUp(rt, hostNetwork);
  const memBefore = target.memory();
  const pssBefore = target.pss();
  const runtimeBefore = target.runtimeMemory();
  const run = [];
  for (let i = 0; i < N; i++) {
    const cfg = podConfig(`pod-${i}`, hostNetwork);
    run.push(await timed(async () => pods.push((await rt.RunPodSandbox({ config: cfg })).podSandboxId)));
  }
  res.run = stats(run);
  const create = [];
  for (let i = 0; i < N; i++) {
    const cfg = podConfig(`pod-${i}`, hostNetwork);
    create.push(await timed(async () => ctrs.push(await createAndStart(rt, pods[i], cfg))));
  }
  res.createStart = stats(create);
  await new Promise((r) => setTimeout(r, 1000));
  res.memPerPodKiB = (target.memory() - memBefore) / N;
  res.pssPerPodKiB = (target.pss() - pssBefore) / N;
  res.runtimePerPodKiB = (target.runtimeMemory() - runtimeBefore) / N;
  res.idleKiB = memBefore;
  const exec = [];
  for (let i = 0; i < Math.min(N, 100); i++) {
    exec.push(await timed(() => rt.ExecSync({ containerId: ctrs[i % ctrs.length], cmd: ['true'], timeout: '10' })));
  }
  res.exec = stats(exec);
  const stopRemove = [];
  for (const id of ctrs) stopRemove.push(await timed(async () => {
    await rt.StopContainer({ containerId: id, timeout: '0' });
    await rt.RemoveContainer({ containerId: id });
  }));
  res.stopRemove = stats(stopRemove);
  const podStop = [];
  for (const id of pods) podStop.push(await timed(async () => {
    await rt.StopPodSandbox({ podSandboxId: id });
    await rt.RemovePodSandbox({ podSandboxId: id });
  }));
  res.podStopRemove = stats(podStop);
  // For a set time rather than a set count: a few seconds' worth of pods
  // swings by tens of percent with the VM's moment.
  const clients = 8;
  const deadline = performance.now() + Number(values['churn-seconds']) * 1000;
  let churned = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const cfg = podConfig(`churn-${c}-${i}`, hostNetwork);
      const { podSandboxId } = await rt.RunPodSandbox({ config: cfg });
      await createAndStart(rt, podSandboxId, cfg);
      await rt.StopPodSandbox({ podSandboxId });
      await rt.RemovePodSandbox({ podSandboxId });
      churned++;
    }
  }));
  res.churn = churned / ((performance.now() - t0) / 1000);
  return res;
}

/**
 * RunPodSandbox and Create+Start on both runtimes at once, one pod each in
 * turn (the order swapped every other pod): this VM's speed drifts by tens of
 * percent over the minutes between the phases above, and alternating cancels
 * that drift out of the ratio. Both have run the warm-up first. With `quiet`,
 * each call is timed once the machine has settled (lib.mjs settle()): back to
 * back, each side's call also pays for the tail of the other side's.
 */
async function interleaved(targets, quiet) {
  const pods = targets.map(() => []);
  const run = targets.map(() => []);
  const createStart = targets.map(() => []);
  for (const t of targets) await warmUp(t.client.runtime, true);
  const order = (i) => (i % 2 ? [...targets.keys()].reverse() : [...targets.keys()]);
  for (let i = 0; i < N; i++) {
    for (const k of order(i)) {
      const cfg = podConfig(`alt-${i}`, true);
      if (quiet) await settle();
      run[k].push(await timed(async () => pods[k].push((await targets[k].client.runtime.RunPodSandbox({ config: cfg })).podSandboxId)));
    }
  }
  for (let i = 0; i < N; i++) {
    for (const k of order(i)) {
      if (quiet) await settle();
      createStart[k].push(await timed(() => createAndStart(targets[k].client.runtime, pods[k][i], podConfig(`alt-${i}`, true))));
    }
  }
  for (const [k, t] of targets.entries()) {
    for (const id of pods[k]) {
      await t.client.runtime.StopPodSandbox({ podSandboxId: id });
      await t.client.runtime.RemovePodSandbox({ podSandboxId: id });
    }
  }
  return targets.map((_, k) => ({ run: stats(run[k]), createStart: stats(createStart[k]) }));
}

/** peapod as both phases run it: no CNI, state on a tmpfs as containerd's, busybox loaded. */
async function startPeapodSide() {
  const server = await startPeapod(values.runtime, ['--network', 'none'], { stateTmpfs: true, journaledRoot: values['journaled-root'] });
  try {
    await loadPeapodImages(server);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

if (!values['no-containerd']) ensureContainerd();
const rows = [];
const peapod = await startPeapodSide();
peapod.memory = () => treeRssKiB(peapod.pid);
peapod.pss = () => treeRssKiB(peapod.pid, pssKiB);
peapod.runtimeMemory = () => treeRssKiB(peapod.pid, rssKiB, isWorkload);
try {
  rows.push(await scenarios(`peapod (${values.runtime}), host network`, peapod, true));
  rows.push(await scenarios(`peapod (${values.runtime}), pod netns`, peapod, false));
} finally {
  await peapod.stop();
}
if (!values['no-containerd']) {
  const ctrd = await startContainerd();
  try {
    rows.push(await scenarios('containerd 1.6 + runc, host network', ctrd, true));
  } finally {
    await ctrd.stop();
  }
}
let alternated;
let settled;
if (!values['no-containerd']) {
  const sides = [await startPeapodSide()];
  try {
    sides.push(await startContainerd());
    alternated = await interleaved(sides, false);
    settled = await interleaved(sides, true);
  } finally {
    for (const s of sides.reverse()) await s.stop();
  }
}

const f = (x) => (x === undefined ? '-' : x.toFixed(2));
console.log(`\nCRI bench, ${N} pods, one busybox container each (ms unless said); roots on ${values['journaled-root'] ? 'a fresh journaled ext4 each' : 'the root file system'}`);
const header = ['scenario', ...rows.map((r) => r.label)];
const line = (name, get) => [name, ...rows.map((r) => f(get(r)))];
const table = [
  line('RunPodSandbox p50', (r) => r.run.p50),
  line('RunPodSandbox p99', (r) => r.run.p99),
  line('Create+Start p50', (r) => r.createStart.p50),
  line('Create+Start p99', (r) => r.createStart.p99),
  line('ExecSync true p50', (r) => r.exec.p50),
  line('ExecSync true p99', (r) => r.exec.p99),
  line('Stop+Remove ctr p50', (r) => r.stopRemove.p50),
  line('Stop+Remove pod p50', (r) => r.podStopRemove.p50),
  line('churn pods/s', (r) => r.churn),
  line('RSS added/pod MiB', (r) => r.memPerPodKiB / 1024),
  line('PSS added/pod MiB', (r) => r.pssPerPodKiB / 1024),
  line('runtime RSS/pod MiB', (r) => r.runtimePerPodKiB / 1024),
  line('idle RSS MiB', (r) => r.idleKiB / 1024),
];
console.log([header, ...table].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(22) : c.padStart(14))).join(' ')).join('\n'));
console.log(`\nimage load of busybox.tar (ms, CLI process included): peapod ${f(imageLoadMs.peapod)}, containerd (ctr import) ${f(imageLoadMs.containerd)}`);
const ctrd = rows.find((r) => r.label.startsWith('containerd'));
if (ctrd) {
  const mine = rows[0];
  console.log('\nratios peapod/containerd (host network, lower is better):');
  for (const [name, get] of [
    ['RunPodSandbox p50', (r) => r.run.p50],
    ['Create+Start p50', (r) => r.createStart.p50],
    ['ExecSync p50', (r) => r.exec.p50],
    ['Stop+Remove ctr p50', (r) => r.stopRemove.p50],
    ['RSS added/pod', (r) => r.memPerPodKiB],
    ['PSS added/pod', (r) => r.pssPerPodKiB],
    ['runtime RSS/pod', (r) => r.runtimePerPodKiB],
  ]) {
    console.log(`  ${name.padEnd(22)} ${(get(mine) / get(ctrd)).toFixed(3)}`);
  }
  console.log(`  ${'churn (higher better)'.padEnd(22)} ${(mine.churn / ctrd.churn).toFixed(2)}x`);
}
for (const [result, how] of [[alternated, 'back to back'], [settled, 'each call once the machine is quiet']]) {
  if (!result) continue;
  const [p, c] = result;
  console.log(`\nboth runtimes up, one pod each in turn, ${how} (host network; p50 ms peapod / containerd = ratio):`);
  console.log(`  ${'RunPodSandbox p50'.padEnd(22)} ${f(p.run.p50)} / ${f(c.run.p50)} = ${(p.run.p50 / c.run.p50).toFixed(3)}`);
  console.log(`  ${'Create+Start p50'.padEnd(22)} ${f(p.createStart.p50)} / ${f(c.createStart.p50)} = ${(p.createStart.p50 / c.createStart.p50).toFixed(3)}`);
}

if (values.chart) {
  const metric = (name, unit, get) => ({ name, unit, values: rows.map(get) });
  const svg = barChartSvg(`peapod vs containerd, ${N} pods (lower is better)`, rows.map((r) => r.label), [
    metric('RunPodSandbox p50', 'ms', (r) => r.run.p50),
    metric('Create+Start p50', 'ms', (r) => r.createStart.p50),
    metric('ExecSync p50', 'ms', (r) => r.exec.p50),
    metric('Stop+Remove pod p50', 'ms', (r) => r.podStopRemove.p50),
    metric('PSS added per pod', 'MiB', (r) => r.pssPerPodKiB / 1024),
    metric('RSS added per pod', 'MiB', (r) => r.memPerPodKiB / 1024),
    metric('runtime RSS per pod (workload excluded)', 'MiB', (r) => r.runtimePerPodKiB / 1024),
  ]);
  writeFileSync(values.chart, svg);
  console.log(`chart written to ${values.chart}`);
}
