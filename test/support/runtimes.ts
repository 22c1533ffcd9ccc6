// The three JavaScript runtimes, for probes that run a TypeScript module of
// the tree as a standalone process under each (test/unit/*-runtimes.test.ts):
//
//   node: node node_modules/vite-node/vite-node.mjs PROBE
//         (Node 20 cannot run .ts itself; vite-node transpiles in-process and
//         runs the module on the main thread, so unshare/setns act on the
//         thread that spawns children, as in production)
//   bun:  node_modules/.bin/bun PROBE
//   deno: node_modules/.bin/deno run -A --sloppy-imports PROBE
//         (--sloppy-imports lets Deno resolve our `./x.js` specifiers to the
//         `./x.ts` sources; without it Deno 2.9 fails with "Module not found")

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = (name: string) => path.join(ROOT, 'node_modules/.bin', name);
const viteNode = path.join(ROOT, 'node_modules/vite-node/vite-node.mjs');

export interface ProbeRuntime {
  name: 'node' | 'bun' | 'deno';
  /** The FFI backend src/ffi picks under it. */
  backend: 'koffi' | 'bun' | 'deno';
  binary: string;
  args(probe: string): string[];
}

export const PROBE_RUNTIMES: ProbeRuntime[] = [
  { name: 'node', backend: 'koffi', binary: process.execPath, args: (p) => [viteNode, p] },
  { name: 'bun', backend: 'bun', binary: bin('bun'), args: (p) => [p] },
  { name: 'deno', backend: 'deno', binary: bin('deno'), args: (p) => ['run', '-A', '--sloppy-imports', p] },
];

/** Why a probe cannot run under `rt` here (printed, the tests skipped), or undefined. */
export function probeSkipReason(rt: ProbeRuntime): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (needs CAP_SYS_ADMIN)';
  if (!existsSync(rt.binary) || (rt.name === 'node' && !existsSync(viteNode))) return `binary missing: ${rt.binary}`;
  return undefined;
}

/**
 * Runs `probe` (a path from the repo root) under `rt`, `input` written to its
 * stdin (a pipe) and closed; resolves with the JSON of its last stdout line.
 */
export async function runProbe<T>(rt: ProbeRuntime, probe: string, env: Record<string, string> = {}, input?: Buffer): Promise<T> {
  let stdout: string;
  try {
    // Input goes through cat: Node gives a child a socket pair, where a shell gives it a pipe.
    // vite-node's vite ends the process when its stdin ends, unless CI=true.
    // Under setsid (it execs, not a group leader) the probe leads a process group of its own,
    // killed whole at the time limit: the shell, cat and the runtime with it.
    const argv = input ? ['sh', '-c', 'cat | "$@"', 'sh', rt.binary, ...rt.args(probe)] : [rt.binary, ...rt.args(probe)];
    const run = execFileP('setsid', argv, { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...(input ? { CI: 'true' } : {}), ...env } });
    const limit = setTimeout(() => process.kill(-run.child.pid!, 'SIGKILL'), 45_000);
    if (input) run.child.stdin!.end(input);
    try {
      ({ stdout } = await run);
    } finally {
      clearTimeout(limit);
    }
  } catch (err) {
    const e = err as { message: string; stderr?: string; stdout?: string };
    throw new Error(`${rt.name}: probe failed: ${e.message}\nstdout: ${e.stdout ?? ''}\nstderr: ${e.stderr ?? ''}`);
  }
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${rt.name}: probe printed no JSON:\n${stdout}`);
  }
}
