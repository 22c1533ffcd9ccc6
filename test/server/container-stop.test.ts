import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCode, podConfig, runtimeCallWithDeadline } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { procStatus, runtime, startServer, type TestServer } from '../support/server.js';
import { sleep, until } from '../support/wait.js';

/** Ignores SIGTERM: only a SIGKILL ends it. */
const STUBBORN = ['sh', '-c', 'trap "" TERM; while true; do sleep 1; done'];
/** Ignores SIGTERM too, but logs a line for each one it gets. */
const COUNTING = ['sh', '-c', "trap 'echo TERM' TERM; while true; do sleep 0.1; done"];

// Stops that overlap, as containerd's: each call waits its own timeout (or
// until its client gives up), the stop signal goes once, a SIGKILL whenever a
// call's timeout has passed; nothing waits for another call's grace period.
describe(`StopContainer calls that overlap [server on ${runtime}]`, () => {
  let s: TestServer;
  let logDir: string;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox);
    logDir = mkdtempSync(join(tmpdir(), 'peapod-logs-'));
  });
  afterAll(async () => {
    await s?.cleanup();
    rmSync(logDir, { recursive: true, force: true });
  });

  /** A pod with one running container of `command` (its shell's TERM trap set), its log under the pod's log dir. */
  async function running(name: string, command: string[]) {
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig(name, { logDirectory: join(logDir, name) }) });
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId,
      config: { metadata: { name }, image: { image: BUSYBOX }, command, logPath: `${name}.log` },
    });
    await s.runtime.StartContainer({ containerId });
    const { pid } = JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!) as { pid: number };
    // A TERM sent before the trap would end the shell.
    const term = 1n << 14n;
    await until('the TERM trap', () => ['SigIgn', 'SigCgt'].some((k) => (BigInt('0x' + procStatus(pid)[k]) & term) !== 0n));
    return { podSandboxId, containerId, log: join(logDir, name, `${name}.log`) };
  }

  /** Starts a StopContainer without waiting for it; `done` resolves (never rejects) with its outcome and when it came. */
  function stopInBackground(containerId: string, timeout: number) {
    const t0 = Date.now();
    return s.runtime.StopContainer({ containerId, timeout: String(timeout) }).then(
      () => ({ code: 'OK', ms: Date.now() - t0 }),
      (err: unknown) => ({ code: grpcCode(err), ms: Date.now() - t0 }),
    );
  }

  const status = async (containerId: string) => (await s.runtime.ContainerStatus({ containerId })).status!;
  /** EXITED by SIGKILL. */
  const expectKilled = async (containerId: string) => expect(await status(containerId)).toMatchObject({ state: 'CONTAINER_EXITED', exitCode: 137 });
  const terms = (log: string) => readFileSync(log, 'utf8').split('\n').filter((l) => l.endsWith(' TERM')).length;

  /**
   * A StopContainer(30) of a container ignoring SIGTERM, then after 1 s
   * `interrupt`: it returns within 3 s and so does the stop, the container
   * being gone or EXITED by SIGKILL.
   */
  async function interruptedStop(name: string, interrupt: (ids: { podSandboxId: string; containerId: string }) => Promise<unknown>, removed = false) {
    const ids = await running(name, STUBBORN);
    try {
      const stop = stopInBackground(ids.containerId, 30);
      await sleep(1000);
      const t = Date.now();
      await interrupt(ids);
      expect(Date.now() - t).toBeLessThan(3000);
      // The stop returns with the exit too, not at its own timeout.
      expect(await Promise.race([stop, sleep(3000).then(() => 'still waiting')])).toMatchObject({ code: 'OK' });
      if (removed) {
        expect(grpcCode(await s.runtime.ContainerStatus({ containerId: ids.containerId }).catch((e: unknown) => e))).toBe('NOT_FOUND');
      } else {
        await expectKilled(ids.containerId);
      }
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: ids.podSandboxId });
    }
  }

  it('a StopContainer(0) during a StopContainer(30) kills at once; both return, the container EXITED by SIGKILL', () =>
    interruptedStop('shortened', ({ containerId }) => s.runtime.StopContainer({ containerId, timeout: '0' })));

  it('a StopContainer with a longer timeout during a shorter one neither extends it nor signals again', async () => {
    const { podSandboxId, containerId, log } = await running('lengthened', COUNTING);
    try {
      const first = stopInBackground(containerId, 2);
      await sleep(500);
      const second = stopInBackground(containerId, 30);
      const [a, b] = await Promise.all([first, second]);
      expect(a.code).toBe('OK');
      expect(a.ms).toBeGreaterThanOrEqual(1900);
      expect(a.ms).toBeLessThan(4000);
      // Returned with the first call's kill, 1.5 s into its own 30.
      expect(b.code).toBe('OK');
      expect(b.ms).toBeLessThan(3500);
      await expectKilled(containerId);
      expect(terms(log)).toBe(1);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
    }
  });

  it('RemoveContainer during a StopContainer(30) kills and removes at once; the stop returns', () =>
    interruptedStop('removed', ({ containerId }) => s.runtime.RemoveContainer({ containerId }), true));

  it('StopPodSandbox during a StopContainer(30) kills the container at once', () =>
    interruptedStop('pod-stopped', ({ podSandboxId }) => s.runtime.StopPodSandbox({ podSandboxId })));

  it('a StopContainer its client gives up on stops waiting and kills nothing; its signal stays sent, once', async () => {
    const { podSandboxId, containerId, log } = await running('given-up', COUNTING);
    try {
      const err = await runtimeCallWithDeadline(s.socket, 'StopContainer', { containerId, timeout: '3' }, 1000);
      expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      await until('the TERM in the log', () => terms(log) === 1);
      // Past the given-up call's own timeout: no SIGKILL came from it.
      await sleep(3000);
      expect((await status(containerId)).state).toBe('CONTAINER_RUNNING');
      // A later stop does not send the stop signal again: it waits its timeout and kills.
      const t = Date.now();
      await s.runtime.StopContainer({ containerId, timeout: '1' });
      expect(Date.now() - t).toBeGreaterThanOrEqual(900);
      await expectKilled(containerId);
      expect(terms(log)).toBe(1);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId });
    }
  });
});
