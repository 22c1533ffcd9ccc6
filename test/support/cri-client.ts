import * as grpc from '@grpc/grpc-js';
import { criProto } from '../../src/cri/proto.js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { RuntimeServiceDefinition } from '../../src/cri/generated/runtime/v1/RuntimeService.js';
import type { ImageServiceDefinition } from '../../src/cri/generated/runtime/v1/ImageService.js';

/** Each unary RPC as an async function taking the request and resolving to the decoded response. */
type Api<D> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, any, any, infer Res> ? (req: Req) => Promise<Res> : never;
};

export type RuntimeApi = Api<RuntimeServiceDefinition>;
export type ImageApi = Api<ImageServiceDefinition>;

function promisify<C extends grpc.Client>(client: C): any {
  return new Proxy(client, {
    get(target, prop: string) {
      const fn = (target as any)[prop];
      if (typeof fn !== 'function' || !/^[A-Z]/.test(prop)) return fn;
      return (req: unknown) =>
        new Promise((resolve, reject) =>
          fn.call(target, req, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))),
        );
    },
  });
}

/** A CRI client over the unix socket, as crictl and the kubelet connect. */
export function criClient(socket: string): { runtime: RuntimeApi; image: ImageApi; close(): void } {
  const v1 = criProto().runtime.v1;
  const runtime = new v1.RuntimeService(`unix:${socket}`, grpc.credentials.createInsecure());
  const image = new v1.ImageService(`unix:${socket}`, grpc.credentials.createInsecure());
  return {
    runtime: promisify(runtime),
    image: promisify(image),
    close() {
      runtime.close();
      image.close();
    },
  };
}

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
