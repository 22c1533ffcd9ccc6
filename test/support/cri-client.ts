import * as grpc from '@grpc/grpc-js';
import type { RuntimeApi } from '../../src/cri/client.js';

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

/** ExecSync of `cmd` in container `id`, its output as text. */
export async function execText(rt: RuntimeApi, id: string, cmd: string[], timeout = 10): Promise<{ out: string; err: string; code: number }> {
  const r = await rt.ExecSync({ containerId: id, cmd, timeout: String(timeout) });
  return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
}
