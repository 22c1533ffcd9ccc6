// A container's oom_score_adj is the container's, not the server's: the
// service unit gives the server -999 and every helper inherits it. The server
// here runs at 100: raising needs no privilege, and without CAP_SYS_RESOURCE
// a process may still lower its score down to where it was when the last
// privileged write set it (oom_score_adj_min), here 0 or below. What the
// runtime cannot grant is warned about in the server's log.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podConfig } from '../support/cri-client.js';
import { preloadBusybox, sleeper } from '../support/images.js';
import { runtime, startServer, type TestServer } from '../support/server.js';

const SERVER_SCORE = 100;

describe(`oom_score_adj of containers and execs [server on ${runtime}]`, () => {
  let s: TestServer;
  let logDir: string;
  beforeAll(async () => {
    s = await startServer({}, preloadBusybox, { wrapper: ['choom', '-n', String(SERVER_SCORE), '--'] });
    logDir = mkdtempSync(join(tmpdir(), 'peapod-oom-'));
  });
  afterAll(async () => {
    await s?.cleanup();
    rmSync(logDir, { recursive: true, force: true });
  });

  async function container(name: string, oomScoreAdj: number, securityContext: Record<string, unknown> = {}) {
    const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig(name, { logDirectory: join(logDir, name) }) });
    const { containerId } = await s.runtime.CreateContainer({
      podSandboxId,
      config: sleeper('c', { logPath: 'c.log', linux: { resources: { oomScoreAdj: String(oomScoreAdj) }, securityContext } }),
    });
    await s.runtime.StartContainer({ containerId });
    const info = JSON.parse((await s.runtime.ContainerStatus({ containerId, verbose: true })).info.info!);
    return { podSandboxId, containerId, init: info.pid as number };
  }

  const score = (pid: number | string) => Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8'));
  const execScore = async (containerId: string) => {
    const r = await s.runtime.ExecSync({ containerId, cmd: ['cat', '/proc/self/oom_score_adj'], timeout: '10' });
    expect(r.exitCode).toBe(0);
    return Number(Buffer.from(r.stdout).toString());
  };

  it('runs the server at a score of its own', () => {
    expect(score(s.pid)).toBe(SERVER_SCORE);
  });

  // 0 too: the monitor runs at the server's score, so even the default must be applied.
  it.each([500, 0])("gives the init and an exec the container's score (%i), not the server's", async (want) => {
    const c = await container(`oom-${want}`, want);
    try {
      expect(score(c.init)).toBe(want);
      expect(await execScore(c.containerId)).toBe(want);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
    }
  });

  it("what the runtime cannot grant (a Guaranteed pod's score, a privileged container's capabilities) is warned about in the server's log, not the container's", async () => {
    const c = await container('oom-guaranteed', -997, { privileged: true });
    try {
      const lowered = score(c.init) === -997;
      const status = (pid: number | string) => readFileSync(`/proc/${pid}/status`, 'utf8');
      const capsOf = (pid: number | string) => /^CapEff:\s*(\S+)$/m.exec(status(pid))![1];
      // All capabilities were asked for: the container has fewer when the server lacks some.
      const capsShort = capsOf(c.init) !== capsOf(1);
      const warnings = s.output().split('\n').filter((l) => l.includes('container set-up incomplete') && l.includes(c.containerId));
      expect(warnings.length).toBe(lowered && !capsShort ? 0 : 1);
      if (!lowered) expect(warnings[0]).toContain('cannot set oom_score_adj to -997');
      if (capsShort) expect(warnings[0]).toContain('not held by the runtime, not granted');
      expect(readFileSync(join(logDir, 'oom-guaranteed', 'c.log'), 'utf8')).toBe('');
      // An exec asks for the same: its output stays the command's.
      const r = await s.runtime.ExecSync({ containerId: c.containerId, cmd: ['true'], timeout: '10' });
      expect([r.exitCode, Buffer.from(r.stderr).toString()]).toEqual([0, '']);
    } finally {
      await s.runtime.RemovePodSandbox({ podSandboxId: c.podSandboxId });
    }
  });
});
