import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { connect as http2Connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { detectBackend } from '../ffi/index.js';
import type { PeapodDefinition } from './generated/peapod/v1/Peapod.js';
import { filterFrames } from './h2-filter.js';
import type { ImageServiceDefinition } from './generated/runtime/v1/ImageService.js';
import type { RuntimeServiceDefinition } from './generated/runtime/v1/RuntimeService.js';
import { criProto, peapodProto } from './proto.js';

/** Each unary RPC as an async function taking the request and resolving to the decoded response. */
type Api<D> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, any, any, infer Res> ? (req: Req) => Promise<Res> : never;
};

export type RuntimeApi = Api<RuntimeServiceDefinition>;
export type ImageApi = Api<ImageServiceDefinition>;
export type PeapodApi = Api<PeapodDefinition>;

/** An error as grpc-js gives one: `code`, `details`, and "CODE NAME: details" as the message. */
function statusError(code: number, details: string): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
}

/**
 * Unary calls over one HTTP/2 connection to the unix socket, framed by hand
 * (a 5-byte prefix, grpc-status in the trailers): grpc-js's client costs two
 * to three times the CPU per call, and the CLI and the benches make many
 * short calls. Reconnects after the server went away; streaming calls stay
 * with grpc-js. Under Deno it reads the server through the GOAWAY filter
 * (h2-filter.ts): a server shutting down would otherwise crash it.
 */
class UnaryTransport {
  private session: ClientHttp2Session | undefined;
  private active = 0;

  constructor(private readonly socket: string) {}

  private connect(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const filter = detectBackend() === 'deno';
    const session = http2Connect('http://localhost', {
      createConnection: () => (filter ? filterFrames(netConnect(this.socket), { from: 'server', dropGoaway: true, fixAuthority: false }) : netConnect(this.socket)),
    });
    session.on('error', () => {}); // each call sees its stream fail
    session.unref();
    this.session = session;
    return session;
  }

  call(def: grpc.MethodDefinition<unknown, unknown>, request: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let session: ClientHttp2Session;
      try {
        session = this.connect();
      } catch (err) {
        reject(statusError(grpc.status.UNAVAILABLE, (err as Error).message));
        return;
      }
      // A call in flight keeps the process alive, as grpc-js does; an idle connection does not.
      if (this.active++ === 0) session.ref();
      let settled = false;
      const done = () => {
        if (settled) return false; // 'error' and 'end' can both come
        settled = true;
        if (--this.active === 0 && !session.destroyed) session.unref();
        return true;
      };
      const body = def.requestSerialize(request);
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      const stream = session.request({
        [h2.HTTP2_HEADER_METHOD]: 'POST',
        [h2.HTTP2_HEADER_PATH]: def.path,
        [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      let headers: Record<string, unknown> = {};
      let trailers: Record<string, unknown> = {};
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('error', (err) => {
        // A connection that failed: its own error ("connect ENOENT …"), not the stream's "canceled".
        const cause = (err as Error & { cause?: unknown }).cause;
        if (done()) reject(statusError(grpc.status.UNAVAILABLE, cause instanceof Error ? cause.message : err.message));
      });
      stream.on('end', () => {
        if (!done()) return;
        const status = trailers['grpc-status'] ?? headers['grpc-status'];
        // No status at all: the connection went down mid-call (grpc-js says the same).
        if (status === undefined) {
          reject(statusError(grpc.status.UNAVAILABLE, 'Connection dropped'));
          return;
        }
        const code = Number(status);
        if (code !== grpc.status.OK) {
          const raw = String(trailers['grpc-message'] ?? headers['grpc-message'] ?? '');
          let details = raw;
          try {
            details = decodeURIComponent(raw);
          } catch {
            // not percent-encoded after all
          }
          reject(statusError(code, details));
          return;
        }
        const all = Buffer.concat(chunks);
        if (all.length < 5 || all[0] !== 0 || all.readUInt32BE(1) !== all.length - 5) {
          reject(statusError(grpc.status.INTERNAL, `malformed response to ${def.path}`));
          return;
        }
        try {
          resolve(def.responseDeserialize(all.subarray(5)));
        } catch (err) {
          reject(statusError(grpc.status.INTERNAL, `undecodable response to ${def.path}: ${(err as Error).message}`));
        }
      });
      stream.end(frame);
    });
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}

function promisify(client: grpc.Client, service: grpc.ServiceDefinition, unary: UnaryTransport): any {
  return new Proxy(client, {
    get(target, prop: string) {
      const def = service[prop];
      if (def && !def.requestStream && !def.responseStream) return (req: unknown) => unary.call(def, req);
      const fn = (target as any)[prop];
      if (typeof fn !== 'function' || !/^[A-Z]/.test(prop)) return fn;
      return (req: unknown) =>
        new Promise((resolve, reject) =>
          fn.call(target, req, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))),
        );
    },
  });
}

/** A generated grpc-js client class, with its service's definition. */
type ServiceClass = (new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client) & { service: grpc.ServiceDefinition };

/** A service's client on the socket: unary calls over `unary`, streaming ones through grpc-js. */
function serviceClient(Service: ServiceClass, socket: string, unary: UnaryTransport): { api: any; close(): void } {
  const client = new Service(`unix:${socket}`, grpc.credentials.createInsecure());
  return { api: promisify(client, Service.service, unary), close: () => client.close() };
}

/** A client of peapod's own service (`peapod.v1.Peapod`) on the CRI socket: the pod CLI's. */
export function peapodClient(socket: string): { peapod: PeapodApi; close(): void } {
  const unary = new UnaryTransport(socket);
  const peapod = serviceClient(peapodProto().peapod.v1.Peapod, socket, unary);
  return {
    peapod: peapod.api,
    close() {
      unary.close();
      peapod.close();
    },
  };
}

/** A CRI client over the unix socket, connected as crictl and the kubelet connect. */
export function criClient(socket: string): { runtime: RuntimeApi; image: ImageApi; close(): void } {
  const v1 = criProto().runtime.v1;
  const unary = new UnaryTransport(socket);
  const runtime = serviceClient(v1.RuntimeService, socket, unary);
  const image = serviceClient(v1.ImageService, socket, unary);
  return {
    runtime: runtime.api,
    image: image.api,
    close() {
      unary.close();
      runtime.close();
      image.close();
    },
  };
}
