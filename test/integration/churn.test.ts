import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { podConfig } from '../support/cri-client.js';
import { BUSYBOX, preloadBusybox } from '../support/images.js';
import { startServer } from '../support/server.js';

/** [pid, ppid, state, comm] of every process. */
function processes(): Array<{ pid: number; ppid: number; state: string; comm: string }> {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(name), ppid: Number(rest[1]), state: rest[0]!, comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch {
      // gone
    }
  }
  return out;
}

// Runs once (under Node): a thousand short-lived containers through one server.
describe('container churn', () => {
  it('leaves no zombie and no helper after 1000 short-lived containers', { timeout: 600_000 }, async () => {
    const s = await startServer({}, preloadBusybox);
    try {
      const { podSandboxId } = await s.runtime.RunPodSandbox({ config: podConfig('churn') });
      const worker = async (w: number) => {
        for (let i = 0; i < 250; i++) {
          const { containerId } = await s.runtime.CreateContainer({
            podSandboxId,
            config: { metadata: { name: `c-${w}-${i}` }, image: { image: BUSYBOX }, command: ['sh', '-c', `exit ${i % 7}`] },
          });
          await s.runtime.StartContainer({ containerId });
          for (;;) {
            const st = (await s.runtime.ContainerStatus({ containerId })).status!;
            if (st.state === 'CONTAINER_EXITED') {
              expect(st.exitCode).toBe(i % 7);
              break;
            }
            await new Promise((r) => setTimeout(r, 5));
          }
          await s.runtime.RemoveContainer({ containerId });
        }
      };
      await Promise.all([0, 1, 2, 3].map(worker));
      await new Promise((r) => setTimeout(r, 1500)); // the server's reaper runs every second
      const procs = processes();
      const serverKids = procs.filter((p) => p.ppid === s.pid);
      expect(serverKids.filter((p) => p.state === 'Z')).toEqual([]);
      // Of the monitors, only the two spares waiting for a container are left (a claimed one's FIFO is gone).
      const spare = (pid: number) => {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
        return argv.includes('--wait') && existsSync(argv[argv.indexOf('--wait') + 1]!);
      };
      expect(serverKids.map((p) => p.comm).sort()).toEqual(['pause', 'peapod-monitor', 'peapod-monitor']);
      expect(serverKids.filter((p) => p.comm === 'peapod-monitor' && !spare(p.pid))).toEqual([]);
      expect((await s.runtime.ListContainers({})).containers).toEqual([]);
      await s.runtime.RemovePodSandbox({ podSandboxId });
    } finally {
      await s.cleanup();
    }
  });
});
