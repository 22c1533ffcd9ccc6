// Driving the pod runner through the peapod CLI (as a user would) against a
// test server: run, get, exec, logs, delete.

import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { peapodProto } from '../../src/cri/proto.js';
import type { PodView } from '../../src/pod/status.js';
import { preloadBusybox } from './images.js';
import { repoRoot, startServer, type TestServer } from './server.js';

/** A pod manifest around `spec` (lines indented under `spec:`), with a short grace period. */
export const podManifest = (name: string, spec: string, grace = 1) =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  terminationGracePeriodSeconds: ${grace}\n${spec}`;

/** The preloaded test image, never pulled (for a container entry in podManifest). */
export const LOCAL_BUSYBOX = 'image: busybox\n      imagePullPolicy: IfNotPresent';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export interface PodCli {
  /** `peapod <args[0]> --socket … <args[1..]>`, with `input` on stdin. */
  cli(args: string[], input?: string): Promise<CliResult>;
  /** What `get pods NAME -o json` prints, asked over gRPC (see getPod). */
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
    pod: (name, namespace = 'default') => getPod(s().socket, name, namespace),
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

/**
 * The GetPod call behind `get pods NAME -o json`, made from this process: tests
 * poll a pod's status many times, and each CLI process costs about half a CPU
 * second. The CLI's own output is checked where a test asks for it.
 */
async function getPod(socket: string, name: string, namespace: string): Promise<PodView> {
  const Peapod = peapodProto().peapod.v1.Peapod;
  const client = new Peapod(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<{ podJson: string }>((resolve, reject) =>
      client.GetPod({ namespace, name }, (err: grpc.ServiceError | null, r?: { podJson: string }) => (err ? reject(err) : resolve(r!))),
    );
    return JSON.parse(res.podJson) as PodView;
  } finally {
    client.close();
  }
}

/**
 * A server for a suite of pod-runner tests: started before them with busybox
 * loaded and the pod logs in a temp dir of its own (`base()`); after them
 * every pod is deleted and the server and the dir go.
 */
export function podServer(prefix: string, env: Record<string, string> = {}): PodCli & { server(): TestServer; base(): string } {
  let s: TestServer | undefined;
  let base = '';
  const k = podCli(() => s!);
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), prefix));
    s = await startServer(env, preloadBusybox, { args: ['--pod-log-dir', join(base, 'logs')] });
  });
  afterAll(async () => {
    if (s) {
      await k.deleteAll().catch(() => undefined);
      await s.cleanup();
    }
    if (base) rmSync(base, { recursive: true, force: true });
  });
  return { ...k, server: () => s!, base: () => base };
}
