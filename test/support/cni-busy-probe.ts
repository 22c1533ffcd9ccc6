// CNI plugin execution (src/network/cni-exec.ts) under whichever runtime runs
// this file, as test/unit/cni-runtimes.test.ts runs it under Node, Bun and
// Deno: a plugin binary still open for writing (a DaemonSet copying it in)
// fails execve with ETXTBSY, which each runtime reports its own way; the
// call is tried again until the writer closes it. Prints one JSON line.

import { chmodSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execPlugin } from '../../src/network/cni-exec.js';

const dir = mkdtempSync(join(tmpdir(), 'peapod-cni-busy-'));
try {
  const plugin = join(dir, 'busy-plugin');
  writeFileSync(plugin, '#!/bin/sh\ncat >/dev/null\necho \'{"cniVersion":"1.0.0"}\'\n');
  chmodSync(plugin, 0o755);
  const fd = openSync(plugin, 'r+');
  const releasedAfterMs = 1300;
  const released = new Promise<void>((r) => setTimeout(() => r(closeSync(fd)), releasedAfterMs));
  const started = Date.now();
  let result: unknown;
  try {
    result = { ok: await execPlugin({ path: plugin, cniEnv: { CNI_COMMAND: 'ADD' }, stdin: '{}', timeoutMs: 5000 }) };
  } catch (err) {
    result = { error: (err as Error).message };
  }
  const tookMs = Date.now() - started;
  await released;
  console.log(JSON.stringify({ result, tookMs, releasedAfterMs }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
