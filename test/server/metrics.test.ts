import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peapodProto } from '../../src/cri/proto.js';
import { Metrics, parseListenAddress, splitMethodPath } from '../../src/metrics.js';
import { podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { repoRoot, runtime, startServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format: every sample line, checking the syntax of each. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const l of (m![3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m![1]!, labels, value: Number(m![4]) });
  }
  return out;
}

const pick = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

describe(`metrics [server on ${runtime}]`, () => {
  let s: TestServer;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    s = await startServer({}, preloadBusybox, { args: ['--metrics-address', `127.0.0.1:${port}`] });
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };

  it('counts RPCs by service, method and code, with a duration histogram', async () => {
    const before = await scrape();
    const count = (samples: Sample[], method: string, code: string) =>
      pick(samples, 'peapod_rpc_requests_total', { service: 'runtime.v1.RuntimeService', method, code })[0]?.value ?? 0;
    for (let i = 0; i < 3; i++) await s.runtime.Version({});
    for (let i = 0; i < 2; i++) await s.runtime.ContainerStatus({ containerId: 'f'.repeat(64) }).catch(() => {});
    await s.image.ImageStatus({ image: { image: BUSYBOX } });
    const after = await scrape();
    expect(count(after, 'Version', 'OK') - count(before, 'Version', 'OK')).toBe(3);
    expect(count(after, 'ContainerStatus', 'NOT_FOUND') - count(before, 'ContainerStatus', 'NOT_FOUND')).toBe(2);
    expect(pick(after, 'peapod_rpc_requests_total', { service: 'runtime.v1.ImageService', method: 'ImageStatus', code: 'OK' })[0]!.value).toBe(1);

    const buckets = pick(after, 'peapod_rpc_duration_seconds_bucket', { service: 'runtime.v1.RuntimeService', method: 'Version' });
    expect(buckets.length).toBeGreaterThan(5);
    expect(buckets.at(-1)!.labels.le).toBe('+Inf');
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    const n = pick(after, 'peapod_rpc_duration_seconds_count', { method: 'Version' })[0]!.value;
    expect(buckets.at(-1)!.value).toBe(n);
    expect(n).toBe(count(after, 'Version', 'OK'));
    expect(pick(after, 'peapod_rpc_duration_seconds_sum', { method: 'Version' })[0]!.value).toBeGreaterThan(0);
  });

  it('counts unimplemented calls, and a load the client cancelled as CANCELLED', async () => {
    const count = (samples: Sample[], service: string, method: string, code: string) =>
      pick(samples, 'peapod_rpc_requests_total', { service, method, code })[0]?.value ?? 0;
    const before = await scrape();
    await s.runtime.CheckpointContainer({ containerId: 'x' }).catch(() => {});
    const Peapod = peapodProto().peapod.v1.Peapod;
    const client = new Peapod(`unix:${s.socket}`, grpc.credentials.createInsecure());
    try {
      const ended = new Promise<grpc.ServiceError | null>((resolve) => {
        const call = client.LoadImages((err) => resolve(err));
        // Half of busybox's archive, then the client gives up.
        call.write({ data: readFileSync(join(repoRoot, 'images', 'build', 'busybox.tar')).subarray(0, 600_000) }, () => setTimeout(() => call.cancel(), 200));
      });
      expect((await ended)?.code).toBe(grpc.status.CANCELLED);
    } finally {
      client.close();
    }
    const peapod = 'peapod.v1.Peapod';
    const after = await waitFor('the cancelled load counted', async () => {
      const m = await scrape();
      return count(m, peapod, 'LoadImages', 'CANCELLED') > count(before, peapod, 'LoadImages', 'CANCELLED') ? m : undefined;
    });
    expect(count(after, peapod, 'LoadImages', 'CANCELLED') - count(before, peapod, 'LoadImages', 'CANCELLED')).toBe(1);
    expect(count(after, peapod, 'LoadImages', 'INVALID_ARGUMENT')).toBe(count(before, peapod, 'LoadImages', 'INVALID_ARGUMENT'));
    const svc = 'runtime.v1.RuntimeService';
    expect(count(after, svc, 'CheckpointContainer', 'UNIMPLEMENTED') - count(before, svc, 'CheckpointContainer', 'UNIMPLEMENTED')).toBe(1);
  });

  it('reports pods, containers by state, image bytes and the resident memory', async () => {
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('metrics') });
    try {
      const run = async (name: string, command: string[]) => {
        const { containerId } = await s.runtime.CreateContainer({
          podSandboxId,
          config: { metadata: { name }, image: { image: BUSYBOX }, command },
        });
        return containerId;
      };
      const a = await run('a', ['sleep', '300']);
      await s.runtime.StartContainer({ containerId: a });
      await run('b', ['true']);
      const m = await scrape();
      expect(pick(m, 'peapod_pods')[0]!.value).toBe(1);
      expect(pick(m, 'peapod_containers', { state: 'RUNNING' })[0]!.value).toBe(1);
      expect(pick(m, 'peapod_containers', { state: 'CREATED' })[0]!.value).toBe(1);
      expect(pick(m, 'peapod_containers', { state: 'EXITED' })[0]!.value).toBe(0);
      const images = (await s.image.ListImages({})).images;
      expect(pick(m, 'peapod_image_bytes')[0]!.value).toBe(images.reduce((sum, i) => sum + Number(i.size), 0));
      const rss = pick(m, 'process_resident_memory_bytes')[0]!.value;
      expect(rss).toBeGreaterThan(10 * 1024 * 1024);
      expect(rss).toBeLessThan(4 * 1024 ** 3);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
    }
    expect(pick(await scrape(), 'peapod_pods')[0]!.value).toBe(0);
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  });
});

describe('metrics rendering', () => {
  it('escapes label values and keeps per-method histograms apart', () => {
    const m = new Metrics();
    m.rpc('/svc.v1.S/A', 'OK', 0.002);
    m.rpc('/svc.v1.S/A', 'OK', 3);
    m.rpc('/svc.v1.S/B"x', 'INTERNAL', 0.5);
    const samples = parse(m.render({ pods: 2, containers: { RUNNING: 1 }, imageBytes: 7 }));
    expect(pick(samples, 'peapod_rpc_requests_total', { method: 'A', code: 'OK' })[0]!.value).toBe(2);
    expect(pick(samples, 'peapod_rpc_requests_total', { method: 'B\\"x' })[0]!.value).toBe(1);
    expect(pick(samples, 'peapod_rpc_duration_seconds_bucket', { method: 'A', le: '0.005' })[0]!.value).toBe(1);
    expect(pick(samples, 'peapod_rpc_duration_seconds_bucket', { method: 'A', le: '5' })[0]!.value).toBe(2);
    expect(pick(samples, 'peapod_pods')[0]!.value).toBe(2);
  });

  it('parses listen addresses', () => {
    expect(parseListenAddress('127.0.0.1:9090')).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(parseListenAddress('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseListenAddress(':9090')).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(() => parseListenAddress('nonsense')).toThrow(/HOST:PORT/);
    for (const bad of ['127.0.0.1:', '127.0.0.1:0', '::1', '127.0.0.1:1e3', '127.0.0.1:70000']) expect(() => parseListenAddress(bad), bad).toThrow(/HOST:PORT/);
    expect(splitMethodPath('/runtime.v1.RuntimeService/Version')).toEqual(['runtime.v1.RuntimeService', 'Version']);
  });
});
