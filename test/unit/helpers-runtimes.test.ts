// The helper spawner under Node, Bun and Deno: test/support/helpers-probe.ts
// run as a standalone process under each (see support/runtimes.ts). The
// Node-only test/integration/helpers.test.ts has every case; these are the
// ones that depend on the runtime: posix_spawn through its FFI, the report
// socket and the command connection, the exit poll and the reaper.

import { beforeAll, describe, expect, it } from 'vitest';
import { PROBE_RUNTIMES, probeSkipReason, runProbe } from '../support/runtimes.js';

interface Settled {
  ok?: { word: string; text: string };
  error?: string;
}
interface ProbeResult {
  backend: string;
  first: Settled;
  later: string[];
  reaped: boolean;
  crash: Settled;
  killed: Settled;
  stdout: string;
  replies: string[];
  lost: Settled;
  heldAfterLoss: boolean;
  retried: { ok?: string; error?: string };
}

for (const rt of PROBE_RUNTIMES) {
  const skipReason = probeSkipReason(rt);
  if (skipReason !== undefined) {
    console.warn(`[helpers-runtimes] SKIPPING ${rt.name}: ${skipReason}`);
    describe.skip(`${rt.name} helper spawner — SKIPPED: ${skipReason}`, () => {
      it('skipped', () => {});
    });
    continue;
  }

  describe(`${rt.name} (${rt.backend}) helper spawner`, () => {
    let r: ProbeResult;
    beforeAll(async () => {
      r = await runProbe<ProbeResult>(rt, 'test/support/helpers-probe.ts', { PEAPOD_TEST_NODE: process.execPath });
    }, 60_000);

    it(`${rt.name}: the first report resolves the spawn, a later one reaches the subscriber, the helper is reaped`, () => {
      expect(r.backend).toBe(rt.backend);
      expect(r.first).toEqual({ ok: { word: 'created', text: '42' } });
      expect(r.later).toEqual(['exited 0']);
      expect(r.reaped).toBe(true);
    });

    it(`${rt.name}: a helper dying without a report fails with its status and last stderr line`, () => {
      expect(r.crash).toEqual({ error: 'crash exited with status 3: boom: no config' });
    });

    it(`${rt.name}: with exitReports a SIGKILL is the report (137), and stdout goes to the file`, () => {
      expect(r.killed).toEqual({ ok: { word: 'exited', text: '137' } });
      expect(r.stdout).toBe('hello');
    });

    it(`${rt.name}: a "created" connection carries commands in order; a lost one fails its command and is let go`, () => {
      expect(r.replies).toEqual(['ok got-one', 'ok got-two']);
      expect(r.lost).toEqual({ error: 'the helper closed the connection' });
      expect(r.heldAfterLoss).toBe(false);
    });

    it(`${rt.name}: a start whose connection is lost is asked again on control.sock`, () => {
      expect(r.retried).toEqual({ ok: '1763884800123456789' });
    });
  });
}
