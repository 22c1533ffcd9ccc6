// The exec client's stdin relay under Node, Bun and Deno:
// test/support/exec-stdin-probe.ts run as a standalone process under each
// (see support/runtimes.ts), its stdin a pipe. Bun's stdin, paused on each
// chunk and resumed once the socket took it, at times never emitted its end
// (one run in four here: sixteen runs miss it one time in a hundred), and `peapod exec -i` then waited for input forever.

import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PROBE_RUNTIMES, probeSkipReason, runProbe } from '../support/runtimes.js';

interface ProbeResult {
  ended: boolean;
  received: number;
  sha256: string;
}

describe('exec client: local input relayed to the command', () => {
  for (const rt of PROBE_RUNTIMES) {
    const skipReason = probeSkipReason(rt);
    it.skipIf(skipReason !== undefined)(`${rt.name}: every byte of a piped stdin, then its end, run after run${skipReason ? ` — SKIPPED: ${skipReason}` : ''}`, async () => {
      const input = randomBytes(3 * 1024 * 1024);
      const want = { ended: true, received: input.length, sha256: createHash('sha256').update(input).digest('hex') };
      for (let run = 0; run < 16; run++) {
        expect({ run, ...(await runProbe<ProbeResult>(rt, 'test/support/exec-stdin-probe.ts', {}, input)) }).toEqual({ run, ...want });
      }
    }, 120_000);
  }
});
