// The List RPCs' streaming twins (KEP-5825, CRIListStreaming) against their
// unary List: the same items under the same filters, one item per response.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criProto } from '../../src/cri/proto.js';
import { collectStream, grpcCode, podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

type Client = grpc.Client & Record<string, (req: object) => grpc.ClientReadableStream<Record<string, unknown[]>>>;

const collect = (client: Client, method: string, req: object) => collectStream(client[method]!(req));

describe(`List streaming RPCs [server on ${runtime}]`, () => {
  let s: TestServer;
  let runtimeClient: Client;
  let imageClient: Client;
  let web: string;
  let db: string;
  let running: string;
  let created: string;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    const proto = criProto().runtime.v1;
    runtimeClient = new proto.RuntimeService(`unix:${s.socket}`, grpc.credentials.createInsecure()) as unknown as Client;
    imageClient = new proto.ImageService(`unix:${s.socket}`, grpc.credentials.createInsecure()) as unknown as Client;
    web = (await s.runtime.RunPodSandbox({ config: podConfig('stream-web', { labels: { tier: 'web' } }) })).podSandboxId;
    db = (await s.runtime.RunPodSandbox({ config: podConfig('stream-db', { labels: { tier: 'db' } }) })).podSandboxId;
    const create = async (podSandboxId: string, name: string) =>
      (
        await s.runtime.CreateContainer({
          podSandboxId,
          config: { metadata: { name }, image: { image: BUSYBOX }, command: ['sleep', '3600'], labels: { name } },
        })
      ).containerId;
    running = await create(web, 'server');
    await s.runtime.StartContainer({ containerId: running });
    created = await create(db, 'waiting');
  });
  afterAll(async () => {
    runtimeClient?.close();
    imageClient?.close();
    await s?.cleanup();
  });

  /** The stream's items (each response holding exactly one) and the List's, by id. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each RPC's own item type
  async function both<T = any>(client: Client, stream: string, field: string, list: () => Promise<T[]>, req: object, id: (item: T) => string) {
    const responses = await collect(client, stream, req);
    expect(responses.map((r) => r[field]!.length)).toEqual(responses.map(() => 1));
    const streamed = responses.map((r) => r[field]![0] as T);
    return { streamed: streamed.map(id).sort(), listed: (await list()).map(id).sort(), items: streamed };
  }

  it('StreamPodSandboxes sends ListPodSandbox\'s pods, one per response, under each filter', async () => {
    for (const filter of [undefined, { labelSelector: { tier: 'web' } }, { id: db.slice(0, 12) }, { state: { state: 'SANDBOX_READY' as const } }]) {
      const r = await both(runtimeClient, 'StreamPodSandboxes', 'podSandboxes', async () => (await s.runtime.ListPodSandbox({ filter })).items, { filter }, (p: { id: string }) => p.id);
      expect(r.streamed).toEqual(r.listed);
    }
    const all = await both(runtimeClient, 'StreamPodSandboxes', 'podSandboxes', async () => [], {}, (p: { id: string }) => p.id);
    expect(all.streamed).toEqual([web, db].sort());
    const webOnly = await collect(runtimeClient, 'StreamPodSandboxes', { filter: { labelSelector: { tier: 'web' } } });
    expect(webOnly.map((r) => (r.podSandboxes![0] as { id: string; state: string; metadata: { name: string } }))).toMatchObject([
      { id: web, state: 'SANDBOX_READY', metadata: { name: 'stream-web' } },
    ]);
  });

  it('StreamContainers sends ListContainers\'s containers, one per response, under each filter', async () => {
    for (const filter of [undefined, { podSandboxId: db }, { state: { state: 'CONTAINER_RUNNING' as const } }, { labelSelector: { name: 'waiting' } }]) {
      const r = await both(runtimeClient, 'StreamContainers', 'containers', async () => (await s.runtime.ListContainers({ filter })).containers, { filter }, (c: { id: string }) => c.id);
      expect(r.streamed).toEqual(r.listed);
    }
    const [one] = await collect(runtimeClient, 'StreamContainers', { filter: { state: { state: 'CONTAINER_CREATED' } } });
    expect(one!.containers).toMatchObject([{ id: created, podSandboxId: db, state: 'CONTAINER_CREATED', metadata: { name: 'waiting' } }]);
  });

  it('StreamContainerStats and StreamPodSandboxStats send the running containers\' and ready pods\' figures', async () => {
    const c = await both(runtimeClient, 'StreamContainerStats', 'containerStats', async () => (await s.runtime.ListContainerStats({})).stats, {}, (x) => x.attributes!.id);
    expect(c.streamed).toEqual([running]);
    expect(c.listed).toEqual([running]);
    expect(BigInt((c.items[0] as { memory: { workingSetBytes: { value: string } } }).memory.workingSetBytes.value)).toBeGreaterThan(0n);
    const p = await both(runtimeClient, 'StreamPodSandboxStats', 'podSandboxStats', async () => (await s.runtime.ListPodSandboxStats({})).stats, {}, (x) => x.attributes!.id);
    expect(p.streamed).toEqual([web, db].sort());
    expect(p.listed).toEqual(p.streamed);
    const webOnly = await both(runtimeClient, 'StreamPodSandboxStats', 'podSandboxStats', async () => (await s.runtime.ListPodSandboxStats({ filter: { labelSelector: { tier: 'web' } } })).stats, { filter: { labelSelector: { tier: 'web' } } }, (x) => x.attributes!.id);
    expect(webOnly.streamed).toEqual([web]);
    expect(webOnly.listed).toEqual([web]);
  });

  it('StreamImages sends ListImages\'s images, one per response', async () => {
    const r = await both(imageClient, 'StreamImages', 'images', async () => (await s.image.ListImages({})).images, {}, (i: { id: string }) => i.id);
    expect(r.streamed.length).toBeGreaterThan(0);
    expect(r.streamed).toEqual(r.listed);
    const named = await both(imageClient, 'StreamImages', 'images', async () => (await s.image.ListImages({ filter: { image: { image: BUSYBOX } } })).images, { filter: { image: { image: BUSYBOX } } }, (i: { id: string }) => i.id);
    expect(named.streamed).toHaveLength(1);
    expect(named.streamed).toEqual(named.listed);
  });

  it('UpdatePodSandboxResources, as containerd without NRI: NOT_FOUND for an unknown pod, INVALID_ARGUMENT for bad figures, else OK', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'OK', grpcCode);
    await expect(code(s.runtime.UpdatePodSandboxResources({ podSandboxId: 'f'.repeat(64), resources: { cpuShares: '512' } }))).resolves.toBe('NOT_FOUND');
    await expect(code(s.runtime.UpdatePodSandboxResources({ podSandboxId: web, resources: { cpusetCpus: 'one' } }))).resolves.toBe('INVALID_ARGUMENT');
    await expect(code(s.runtime.UpdatePodSandboxResources({ podSandboxId: web, overhead: { memoryLimitInBytes: '-5' } }))).resolves.toBe('INVALID_ARGUMENT');
    await expect(code(s.runtime.UpdatePodSandboxResources({ podSandboxId: web, resources: { cpuShares: '512', memoryLimitInBytes: String(256 << 20) } }))).resolves.toBe('OK');
  });
});
