// A CNI plugin binary being written (ETXTBSY at execve) under Node, Bun and
// Deno: test/support/cni-busy-probe.ts run as a standalone process under each
// (see support/runtimes.ts). Each runtime reports the failed spawn its own
// way (Deno only in the message); libcni's retry must see it on all three.

import { describe, expect, it } from 'vitest';
import { PROBE_RUNTIMES, probeSkipReason, runProbe } from '../support/runtimes.js';

interface ProbeResult {
  result: { ok?: unknown; error?: string };
  tookMs: number;
  releasedAfterMs: number;
}

describe('CNI plugin execution: a binary being written', () => {
  for (const rt of PROBE_RUNTIMES) {
    const skipReason = probeSkipReason(rt);
    it.skipIf(skipReason !== undefined)(`${rt.name}: is tried again, 1 s apart, as libcni does (text file busy)${skipReason ? ` — SKIPPED: ${skipReason}` : ''}`, async () => {
      const r = await runProbe<ProbeResult>(rt, 'test/support/cni-busy-probe.ts');
      expect(r.result).toEqual({ ok: { cniVersion: '1.0.0' } });
      expect(r.tookMs).toBeGreaterThanOrEqual(r.releasedAfterMs);
    }, 30_000);
  }
});
