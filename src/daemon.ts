import type * as grpc from '@grpc/grpc-js';
import { promises as fsp } from 'node:fs';
import type { ServerConfig } from './config.js';
import { runtimeInfoHandlers } from './cri/runtime.js';
import { sandboxHandlers } from './cri/sandbox.js';
import { serveCri } from './cri/server.js';
import { loadLibc } from './ffi/index.js';
import type { Logger } from './log.js';
import { HostNamespaces } from './linux/namespaces.js';
import { Reaper } from './linux/reaper.js';
import { networkStatus } from './network/status.js';
import { SandboxManager } from './sandbox/manager.js';

export interface Daemon {
  sandboxes: SandboxManager;
  close(): Promise<void>;
}

/** Builds every subsystem from its state on disk, then opens the socket. */
export async function startDaemon(config: ServerConfig, log: Logger): Promise<Daemon> {
  const libc = await loadLibc();
  await fsp.mkdir(config.root, { recursive: true, mode: 0o700 });
  await fsp.mkdir(config.state, { recursive: true, mode: 0o700 });
  const hostNs = HostNamespaces.open();
  const reaper = new Reaper();
  reaper.start();
  const sandboxes = new SandboxManager({ ...config, log, hostNs, reaper });
  await sandboxes.load();

  const runtime = {
    ...runtimeInfoHandlers(networkStatus, () => ({ ...config, ffi: libc.backend })),
    ...sandboxHandlers(sandboxes),
  };
  let server: grpc.Server;
  try {
    server = await serveCri(config.socket, { runtime, image: {} }, log);
  } catch (err) {
    reaper.stop();
    throw err;
  }
  log.info('peapod serving', { socket: config.socket, root: config.root, state: config.state, ffi: libc.backend });

  return {
    sandboxes,
    async close() {
      // Pods outlive the server: only the socket and timers go.
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      reaper.stop();
      await fsp.rm(config.socket, { force: true });
    },
  };
}
