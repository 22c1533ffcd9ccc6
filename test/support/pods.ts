// Driving the pod runner through the peapod CLI (as a user would) against a
// test server: run, get, exec, logs, delete.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { PodView } from '../../src/pod/status.js';
import { repoRoot, type TestServer } from './server.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export interface PodCli {
  /** `peapod <args[0]> --socket … <args[1..]>`, with `input` on stdin. */
  cli(args: string[], input?: string): Promise<CliResult>;
  /** `get pods NAME -o json`. */
  pod(name: string, namespace?: string): Promise<PodView>;
  /** `run -f -`; fails the test unless it succeeds. */
  apply(yaml: string): Promise<void>;
  /** `exec NAME -c CONTAINER -- argv`; its stdout, failing unless it exits 0. */
  exec(name: string, container: string, argv: string[]): Promise<string>;
  /** Deletes every pod (force). */
  deleteAll(): Promise<void>;
}

export function podCli(s: () => TestServer): PodCli {
  const cli = (args: string[], input?: string) =>
    new Promise<CliResult>((resolve) => {
      const child = execFile(process.execPath, [join(repoRoot, 'dist', 'cli.js'), args[0]!, '--socket', s().socket, ...args.slice(1)], (error, out, err) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err });
      });
      if (input !== undefined) child.stdin!.end(input);
    });
  const ok = async (args: string[], input?: string) => {
    const r = await cli(args, input);
    if (r.code !== 0) throw new Error(`peapod ${args.join(' ')} exited ${r.code}: ${r.err}`);
    return r.out;
  };
  return {
    cli,
    pod: async (name, namespace = 'default') => JSON.parse(await ok(['get', 'pods', name, '-n', namespace, '-o', 'json'])) as PodView,
    apply: async (yaml) => void (await ok(['run', '-f', '-'], yaml)),
    exec: (name, container, argv) => ok(['exec', name, '-c', container, '--', ...argv]),
    async deleteAll() {
      const list = await cli(['get', 'pods', '-A', '-o', 'json']);
      if (list.code !== 0) return;
      for (const p of JSON.parse(list.out).items as PodView[]) {
        await cli(['delete', p.metadata.name, '-n', p.metadata.namespace, '--force']);
      }
    },
  };
}
