import * as grpc from '@grpc/grpc-js';

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
