import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { ImageServiceDefinition } from './generated/runtime/v1/ImageService.js';
import type { RuntimeServiceDefinition } from './generated/runtime/v1/RuntimeService.js';
import { criProto } from './proto.js';

/** Each unary RPC as an async function taking the request and resolving to the decoded response. */
type Api<D> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, any, any, infer Res> ? (req: Req) => Promise<Res> : never;
};

export type RuntimeApi = Api<RuntimeServiceDefinition>;
export type ImageApi = Api<ImageServiceDefinition>;

function promisify(client: grpc.Client): any {
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

/** A CRI client over the unix socket, connected as crictl and the kubelet connect. */
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
