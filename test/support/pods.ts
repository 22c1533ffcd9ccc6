// Driving the pod runner against a test server: through the peapod CLI where
// a test checks what a user sees, and over gRPC (peapod.v1.Peapod and CRI
// ExecSync) for the set-up, polls and inspections around it, since each CLI
// process costs about half a CPU second.

import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { peapodProto } from '../../src/cri/proto.js';
import type { PodView } from '../../src/pod/status.js';
import { execText } from './cri-client.js';
import { preloadBusybox } from './images.js';
import { peapodCommand, startServer, type TestServer } from './server.js';

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
  /** What `get pods NAME -o json` prints, asked over gRPC (GetPod). */
  pod(name: string, namespace?: string): Promise<PodView>;
  /** What `run -f -` does, over gRPC (ApplyPods); fails the test unless it succeeds. */
  apply(yaml: string): Promise<void>;
  /** argv run in the pod's container by CRI ExecSync; its stdout, failing unless it exits 0. */
  exec(name: string, container: string, argv: string[]): Promise<string>;
  /** Deletes every pod (force), over gRPC. */
  deleteAll(): Promise<void>;
}

export function podCli(s: () => TestServer): PodCli {
  const cli = (args: string[], input?: string) =>
    new Promise<CliResult>((resolve) => {
      const child = execFile(peapodCommand[0], [...peapodCommand.slice(1), args[0]!, '--socket', s().socket, ...args.slice(1)], (error, out, err) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err });
      });
      if (input !== undefined) child.stdin!.end(input);
    });
  const pod = async (name: string, namespace = 'default') => JSON.parse((await peapod<{ podJson: string }>(s().socket, 'GetPod', { namespace, name })).podJson) as PodView;
  return {
    cli,
    pod,
    apply: async (yaml) => void (await peapod(s().socket, 'ApplyPods', { manifest: yaml })),
    async exec(name, container, argv) {
      const v = await pod(name);
      const c = [...v.status.containerStatuses, ...v.status.initContainerStatuses].find((x) => x.name === container);
      if (!c?.containerID) throw new Error(`container ${container} of pod ${name} has no instance`);
      const r = await execText(s().runtime, c.containerID.replace(/^peapod:\/\//, ''), argv, 30);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${name}/${container} exited ${r.code}: ${r.err}`);
      return r.out;
    },
    async deleteAll() {
      const { pods } = await peapod<{ pods: Array<{ name: string; namespace: string }> }>(s().socket, 'ListPods', { namespace: '' });
      for (const p of pods) await peapod(s().socket, 'DeletePod', { namespace: p.namespace, name: p.name, gracePeriodSeconds: '0', force: true }).catch(() => undefined);
    },
  };
}

/** One peapod.v1.Peapod call from this process, on a client of its own. */
async function peapod<T = unknown>(socket: string, method: string, req: object): Promise<T> {
  const Peapod = peapodProto().peapod.v1.Peapod;
  const client = new Peapod(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Function>;
  try {
    return await new Promise<T>((resolve, reject) => client[method]!.call(client, req, (err: grpc.ServiceError | null, r?: T) => (err ? reject(err) : resolve(r!))));
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
