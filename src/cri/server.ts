import * as grpc from '@grpc/grpc-js';
import { promises as fsp } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname } from 'node:path';
import { detectBackend } from '../ffi/index.js';
import type { Logger } from '../log.js';
import { filterFrames } from './h2-filter.js';
import { serviceHandlers, type Implementation } from './handlers.js';
import { criProto, peapodProto } from './proto.js';

export interface CriServices {
  runtime: Implementation;
  image: Implementation;
  /** peapod.v1.Peapod (proto/peapod.proto): the CLI's own service; methods left out answer UNIMPLEMENTED. */
  peapod?: Implementation;
}

/** Resolves true when something accepts connections on the unix socket. */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** How long a stopping server lets its calls run before it closes their connections. */
export const SHUTDOWN_GRACE_MS = 2000;

export interface CriServer {
  /** Stops accepting, lets calls under way finish, closes every connection. */
  close(): Promise<void>;
}

/**
 * Refuses a socket path another server listens on, or one that holds
 * anything but a socket (a file there is not ours to delete); a missing
 * path or a stale socket is fine.
 */
export async function checkSocketPath(socket: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(socket);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`${socket} exists and is not a socket; remove it or choose another --socket`);
  if (await socketIsLive(socket)) {
    throw new Error(`another server is already listening on ${socket}; stop it or choose another --socket`);
  }
}

/**
 * Serves CRI RuntimeService and ImageService, and peapod's own service beside
 * them, on a unix socket (mode 0660).
 * A stale socket file is replaced; a live one, or anything else at the path,
 * is refused (checkSocketPath).
 * The server accepts connections itself and hands them to gRPC read through
 * a frame filter (h2-filter.ts): an :authority HTTP/2 servers refuse (a
 * socket path, as older grpc-go clients send) made valid, and under Deno (the
 * FFI backend tells the runtime) GOAWAY frames dropped.
 */
export async function serveCri(socket: string, services: CriServices, log: Logger): Promise<CriServer> {
  await fsp.mkdir(dirname(socket), { recursive: true, mode: 0o750 });
  await checkSocketPath(socket);
  await fsp.rm(socket, { force: true });

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const v1 = criProto().runtime.v1;
  server.addService(v1.RuntimeService.service, serviceHandlers(v1.RuntimeService.service, services.runtime, log));
  server.addService(v1.ImageService.service, serviceHandlers(v1.ImageService.service, services.image, log));
  const own = peapodProto().peapod.v1.Peapod.service;
  server.addService(own, serviceHandlers(own, services.peapod ?? {}, log));
  const connections = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const dropGoaway = detectBackend() === 'deno';
  const listener = createServer((conn) => connections.injectConnection(filterFrames(conn, { from: 'client', dropGoaway, fixAuthority: true })));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    // The socket is born 0660 whatever the umask, never open to all for a moment.
    // Every runtime binds within listen(), so the umask is back before anything
    // else runs (helpers spawned meanwhile would inherit it).
    const umask = process.umask(0o117);
    try {
      listener.listen(socket, () => {
        listener.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  await fsp.chmod(socket, 0o660);
  return {
    async close() {
      // The listener's callback waits for its connections, which the gRPC shutdown closes.
      const unlistened = new Promise<void>((resolve) => listener.close(() => resolve()));
      // Calls under way may finish; a stream that never ends (a kubelet following
      // GetContainerEvents) would hold the graceful shutdown for ever: cut after a grace.
      // (Under Bun and Deno tryShutdown reports done while connections stay open: the listener says when they are gone.)
      const cut = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await unlistened;
      clearTimeout(cut);
    },
  };
}
