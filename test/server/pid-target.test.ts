// `pid: TARGET` (kubectl debug --target): a container joins the PID
// namespace of a running container of its own pod, as containerd lets it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execText, grpcCode, podConfig } from '../support/cri-client.js';
import { preloadBusybox, sleeper } from '../support/images.js';
import { nsOf, runtime, startServer, type TestServer } from '../support/server.js';

const own = { linux: { securityContext: { namespaceOptions: { pid: 'CONTAINER' } } } };
const targeting = (targetId: string) => ({ linux: { securityContext: { namespaceOptions: { pid: 'TARGET', targetId } } } });

describe(`pid namespace TARGET [server on ${runtime}]`, () => {
  let s: TestServer;
  let podId: string;
  let otherPodId: string;
  let n = 0;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    podId = (await s.runtime.RunPodSandbox({ config: podConfig('target', own) })).podSandboxId;
    otherPodId = (await s.runtime.RunPodSandbox({ config: podConfig('target-other', own) })).podSandboxId;
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  async function create(pod: string, extra: Record<string, unknown>, command = ['sleep', '300']) {
    const config = sleeper(`c${++n}`, { ...extra, command });
    return (await s.runtime.CreateContainer({ podSandboxId: pod, config, sandboxConfig: podConfig('target', own) })).containerId;
  }
  async function run(pod: string, extra: Record<string, unknown>, command?: string[]) {
    const containerId = await create(pod, extra, command);
    await s.runtime.StartContainer({ containerId });
    return containerId;
  }
  const info = async (id: string) => JSON.parse((await s.runtime.ContainerStatus({ containerId: id, verbose: true })).info.info!);
  const refusal = (p: Promise<unknown>) => p.then(() => new Error('accepted'), (e: unknown) => e as Error);

  it("joins the target container's PID namespace: it sees the target's processes", async () => {
    const a = await run(podId, own, ['sleep', '3600']);
    const b = await run(podId, targeting(a));
    const [pa, pb] = [(await info(a)).pid as number, await info(b)];
    expect(nsOf(pb.pid, 'pid')).toBe(nsOf(pa, 'pid'));
    expect(nsOf(pb.pid, 'pid')).not.toBe(nsOf('self', 'pid'));
    // The target's init is PID 1 there; the debugging container's exec sees it.
    const r = await execText(s.runtime, b, ['sh', '-c', "tr '\\0' ' ' </proc/1/cmdline; echo; ps -o args"]);
    expect(r.out.split('\n')[0]).toBe('sleep 3600 ');
    expect(r.out).toMatch(/^sleep 300$/m);
    // The record says what it joined.
    expect(pb.spec.security).toMatchObject({ pidMode: 'TARGET', pidTarget: { id: a, namespace: `/proc/${pa}/ns/pid` } });
  });

  it('takes a unique prefix of the target id', async () => {
    const a = await run(podId, own);
    const b = await run(podId, targeting(a.slice(0, 12)));
    expect(nsOf((await info(b)).pid, 'pid')).toBe(nsOf((await info(a)).pid, 'pid'));
  });

  it('refuses a missing target as NOT_FOUND, one of another pod, one not running and no target at all', async () => {
    const count = async () => (await s.runtime.ListContainers({ filter: { podSandboxId: podId } })).containers.length;
    const before = await count();
    const missing = await refusal(create(podId, targeting('f'.repeat(64))));
    expect(grpcCode(missing)).toBe('NOT_FOUND');
    const elsewhere = await run(otherPodId, own);
    const other = await refusal(create(podId, targeting(elsewhere)));
    expect(grpcCode(other)).toBe('INVALID_ARGUMENT');
    expect(other.message).toMatch(/is not in pod sandbox/);
    const created = await create(podId, own);
    const idle = await refusal(create(podId, targeting(created)));
    expect(grpcCode(idle)).toBe('FAILED_PRECONDITION');
    expect(idle.message).toMatch(/CREATED, not RUNNING/);
    const none = await refusal(create(podId, targeting('')));
    expect(grpcCode(none)).toBe('INVALID_ARGUMENT');
    expect(none.message).toMatch(/target_id is required/);
    // None of them left a container behind: the pod has only the one made here besides those it had.
    expect(await count()).toBe(before + 1);
  });

  it('checks the target again at start, as containerd: one stopped or removed since the create fails the start', async () => {
    for (const end of ['stop', 'remove'] as const) {
      const a = await run(podId, own);
      const b = await create(podId, targeting(a));
      await s.runtime.StopContainer({ containerId: a, timeout: '0' });
      if (end === 'remove') await s.runtime.RemoveContainer({ containerId: a });
      const refused = await refusal(s.runtime.StartContainer({ containerId: b }));
      expect(grpcCode(refused)).toBe('FAILED_PRECONDITION');
      expect(refused.message).toContain(`target container ${a} is ${end === 'stop' ? 'EXITED' : 'removed'}, not RUNNING`);
    }
  });
});
