import * as grpc from '@grpc/grpc-js';
import type { RuntimeApi } from '../../src/cri/client.js';
import { criProto } from '../../src/cri/proto.js';

export { criClient, type ImageApi, type RuntimeApi } from '../../src/cri/client.js';

/** The pod config crictl's docs use for `crictl runp` (pod-config.json), made unique per call. */
export function podConfig(name: string, extra: Record<string, unknown> = {}) {
  return {
    metadata: { name, namespace: 'default', attempt: 1, uid: `uid-${name}` },
    hostname: name,
    logDirectory: '/tmp',
    linux: {},
    labels: { app: name },
    annotations: { 'peapod.test/created-by': 'vitest' },
    ...extra,
  };
}

export function grpcCode(err: unknown): string {
  return grpc.status[(err as grpc.ServiceError).code] ?? String(err);
}

/** Every response of a server-streaming call, in order, once it ends; its error if it fails. */
export function collectStream<T>(call: grpc.ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    call.on('data', (m: T) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
}

/** ExecSync of `cmd` in container `id`, its output as text. */
export async function execText(rt: RuntimeApi, id: string, cmd: string[], timeout = 10): Promise<{ out: string; err: string; code: number }> {
  const r = await rt.ExecSync({ containerId: id, cmd, timeout: String(timeout) });
  return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
}

/**
 * One RuntimeService call through grpc-js with a deadline `ms` away (the
 * project's own client takes none); resolves with its error, null on success.
 */
export function runtimeCallWithDeadline(socket: string, method: string, req: unknown, ms: number): Promise<grpc.ServiceError | null> {
  const Service = criProto().runtime.v1.RuntimeService;
  const client = new Service(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Record<
    string,
    (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void
  > &
    grpc.Client;
  return new Promise((resolve) =>
    client[method]!(req, { deadline: Date.now() + ms }, (err) => {
      client.close();
      resolve(err);
    }),
  );
}
