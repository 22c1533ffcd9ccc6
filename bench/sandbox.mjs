#!/usr/bin/env node
// RunPodSandbox / StopPodSandbox / RemovePodSandbox latency over N pods
// (default 200), sequential, then pods per second with 8 concurrent clients.
// Usage: node bench/sandbox.mjs [--runtime node|bun|deno] [--pods N] [--state-tmpfs]
import { parseArgs } from 'node:util';
import { fmt, podConfig, rssKiB, startPeapod, stats } from './lib.mjs';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string', default: 'node' },
    pods: { type: 'string', default: '200' },
    'state-tmpfs': { type: 'boolean', default: false },
  },
});
const n = Number(values.pods);
const server = await startPeapod(values.runtime, ['--network', 'none'], { stateTmpfs: values['state-tmpfs'] });
const rt = server.client.runtime;

async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

try {
  // Warm-up: the first calls pay for lazy loading in the server.
  for (let i = 0; i < 5; i++) {
    const { podSandboxId } = await rt.RunPodSandbox({ config: podConfig(`warm-${i}`) });
    await rt.RemovePodSandbox({ podSandboxId });
  }
  const run = [];
  const stop = [];
  const remove = [];
  const ids = [];
  for (let i = 0; i < n; i++) {
    let id;
    run.push(await timed(async () => (id = (await rt.RunPodSandbox({ config: podConfig(`pod-${i}`) })).podSandboxId)));
    ids.push(id);
  }
  const rssWithPods = rssKiB(server.pid);
  for (const id of ids) stop.push(await timed(() => rt.StopPodSandbox({ podSandboxId: id })));
  for (const id of ids) remove.push(await timed(() => rt.RemovePodSandbox({ podSandboxId: id })));

  const clients = 8;
  const perClient = Math.ceil(n / clients);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        const { podSandboxId } = await rt.RunPodSandbox({ config: podConfig(`churn-${c}-${i}`) });
        await rt.StopPodSandbox({ podSandboxId });
        await rt.RemovePodSandbox({ podSandboxId });
      }
    }),
  );
  const churn = (clients * perClient) / ((performance.now() - t0) / 1000);

  console.log(`peapod sandbox bench: runtime=${values.runtime} pods=${n} state=${values['state-tmpfs'] ? 'tmpfs' : 'disk'} (ms)`);
  console.log('                      p50      p99      min      max');
  for (const [name, s] of [['RunPodSandbox', run], ['StopPodSandbox', stop], ['RemovePodSandbox', remove]]) {
    const st = stats(s);
    console.log(`${name.padEnd(18)}${fmt(st.p50)} ${fmt(st.p99)} ${fmt(st.min)} ${fmt(st.max)}`);
  }
  console.log(`pods/s (run+stop+remove, ${clients} clients): ${churn.toFixed(1)}`);
  console.log(`server RSS with ${n} pods: ${(rssWithPods / 1024).toFixed(1)} MiB`);
} finally {
  await server.stop();
}
